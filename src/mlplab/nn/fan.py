"""The FAN unit: Fourier Analysis Networks' layer, periodic and ordinary features side by side."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mlplab.nn import options as opt
from mlplab.nn.layers import make_activation
from mlplab.nn.registry import register_unit


@register_unit("fan")
class FANUnit(nn.Module):
    """`cos(W_p x + b_p) ‖ sin(W_p x + b_p) ‖ act(W_g x + b_g)`: `(..., d_in) -> (..., d_out)`.

    As FAN's `FANLayer`: `d_p = floor(p_ratio * d_out)` periodic projections each give a
    cosine and a sine, the other `d_out - 2 d_p` outputs are `act(W_g x + b_g)`, so the width
    is exactly `d_out` (`0 < p_ratio < 0.5`, default 0.25; `activation` "gelu"). `W_p` and
    `W_g` are one matmul. `gated`: FAN's gated layer, a learnable scalar `g = sigmoid(a)`
    (starting at 1/2) scales the periodic part by `g` and the other part by `1 - g`.
    """

    nonlinear = True

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, p_ratio: float = 0.25,
                 activation: str = "gelu", gated: bool = False) -> None:
        super().__init__()
        self.check_options(dict(bias=bias, p_ratio=p_ratio, activation=activation, gated=gated))
        self.d_in, self.d_out = d_in, d_out
        self.d_p = int(d_out * p_ratio)
        self.d_g = d_out - 2 * self.d_p
        self.proj = nn.Linear(d_in, self.d_p + self.d_g, bias=bias)
        self.act = make_activation(activation)
        self.gate = nn.Parameter(torch.zeros(1)) if gated else None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_float(options, "p_ratio", low=0.0, high=0.5, open_low=True, open_high=True)
        if opt.check_activation(options, "activation") is None:
            raise opt.UnitOptionError("activation", "expected an activation name, got 'none' "
                                                    "(use 'identity' for none)")
        opt.check_bool(options, "gated")

    def forward(self, x: Tensor) -> Tensor:
        p, g = self.proj(x).split([self.d_p, self.d_g], dim=-1)
        cos, sin, g = torch.cos(p), torch.sin(p), self.act(g)
        if self.gate is not None:
            gate = torch.sigmoid(self.gate)
            cos, sin, g = gate * cos, gate * sin, (1 - gate) * g
        return torch.cat([cos, sin, g], dim=-1)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, periodic={self.d_p}, "
                f"gated={self.gate is not None}")
