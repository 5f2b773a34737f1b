"""Units: drop-ins for `nn.Linear`, `(..., d_in) -> (..., d_out)`.

Every unit has the signature `Unit(d_in, d_out, *, bias=True, **unit_options)`. Blocks build
their projections from a unit class, so a new unit works inside every block.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mlplab.nn.bf16_linear import linear
from mlplab.nn.registry import register_unit


@register_unit("linear")
class LinearUnit(nn.Linear):
    """A plain affine map: `(..., d_in) -> (..., d_out)`."""

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True) -> None:
        super().__init__(d_in, d_out, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)  # bf16 autocast: the faster weight gradient


class FrozenLinear(nn.Module):
    """A random projection fixed at initialisation: `(..., d_in) -> (..., d_out)`.

    The weight is a buffer, so it gets no gradient, no optimizer state, and is still saved
    and loaded with the model's state dict. Init matches `nn.Linear`'s variance scale.
    """

    weight: Tensor

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        w = torch.empty(d_out, d_in)
        nn.init.normal_(w, std=1.0 / math.sqrt(d_in))
        self.register_buffer("weight", w)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"d_in={self.weight.shape[1]}, d_out={self.weight.shape[0]}, frozen"
