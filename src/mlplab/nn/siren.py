"""The SIREN unit: `sin(omega_0 (W x + b))` with SIREN's initialisation.

Hidden layers draw `W ~ U(-sqrt(6/d_in)/omega_0, sqrt(6/d_in)/omega_0)`, so that the
pre-activations `omega_0 W x` stay arcsine-distributed through depth (Sitzmann et al., 2020);
`first = True` gives the first-layer rule `U(-1/d_in, 1/d_in)` (`mlplab.nn.encodings.SirenInput`
is that first layer as an adapter). The `sine` activation is `sin(x)` for other units.

SIREN layers compute in fp32 under `train.precision = "bf16"` (autocast off inside them, and
no bf16 master weights for a model holding one): `sin(omega_0 z)` multiplies bf16's rounding
of `z` by `omega_0`, and the camera fit lost 3.2 dB in bf16 (26.86 vs 30.10 dB).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.nn import options as opt
from mlplab.nn.registry import ACTIVATIONS, register_unit

FP32_REASON = "sin(omega_0 z) multiplies bf16's rounding of z by omega_0"


def siren_layer(linear: nn.Linear, omega_0: float, x: Tensor) -> Tensor:
    """`sin(omega_0 (W x + b))` in the layer's own dtype (fp32), whatever autocast is on."""
    with torch.autocast(x.device.type, enabled=False):
        return torch.sin(omega_0 * nn.functional.linear(x.to(linear.weight.dtype),
                                                        linear.weight, linear.bias))


@register_unit("siren")
class SirenUnit(nn.Linear):
    """`sin(omega_0 (W x + b))`: `(..., d_in) -> (..., d_out)`; a nonlinear unit (blocks put
    no second activation after it)."""

    nonlinear = True
    fp32_reason = FP32_REASON  # master_weights: the model keeps fp32 parameters

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, omega_0: float = 30.0,
                 first: bool = False) -> None:
        self.check_options(dict(bias=bias, omega_0=omega_0, first=first))
        super().__init__(d_in, d_out, bias=bias)
        self.omega_0, self.first = float(omega_0), first
        bound = 1.0 / d_in if first else math.sqrt(6.0 / d_in) / self.omega_0
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_float(options, "omega_0", low=0.0, open_low=True)
        opt.check_bool(options, "first")

    def forward(self, x: Tensor) -> Tensor:
        return siren_layer(self, self.omega_0, x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, omega_0={self.omega_0:g}, first={self.first}"


@ACTIVATIONS.register("sine")
class Sine(nn.Module):
    """`sin(x)`, elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)
