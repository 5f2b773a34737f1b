"""Backbone: lift -> depth x block -> final norm, `(batch, d_in) -> (batch, width)`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.blocks import check_unit_options, unit_class
from mlplab.nn.layers import make_norm
from mlplab.nn.options import check_block_options
from mlplab.nn.registry import BLOCKS
from mlplab.nn.units import FrozenLinear


class Backbone(nn.Module):
    """Lift the input to the stream width, apply `depth` blocks, normalise.

    Residual families: `lift` is a learned unit (or a `FrozenLinear` random projection),
    then `depth` blocks at width `width`, then a final norm. The `plain` family has no
    residual stream: its first layer maps `d_in -> width` itself, so `depth` counts hidden
    layers. The unit (with its options) is used by the lift and by every block's projections;
    `block_options` (the block's own keyword arguments, e.g. `n_tokens`) reach every block.
    Shapes: `(..., d_in) -> (..., width)`, also `(batch, tokens, d_in) -> (batch, tokens, width)`.
    """

    def __init__(
        self,
        d_in: int,
        *,
        block: str = "standard",
        width: int = 256,
        depth: int = 3,
        ratio: float | None = None,
        activation: str | None = None,
        norm: str = "layernorm",
        dropout: float = 0.0,
        lift: str = "learned",
        unit: str = "linear",
        unit_options: dict[str, Any] | None = None,
        block_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        block_cls = BLOCKS.get(block, field="model.block")
        check_unit_options(unit, unit_options or {})
        check_block_options(block_cls, block_options or {})
        options = dict(ratio=ratio, unit=unit, activation=activation, norm=norm,
                       dropout=dropout, unit_options=unit_options, **(block_options or {}))
        self.width = width
        if block_cls.residual:
            if lift == "frozen":
                self.lift: nn.Module = FrozenLinear(d_in, width)
            else:
                self.lift = unit_class(unit)(d_in, width, **(unit_options or {}))
            self.blocks = nn.Sequential(*(block_cls(width, **options) for _ in range(depth)))
            self.norm = make_norm(norm, width)
        else:
            if lift == "frozen":
                raise SpecError(f"model.lift: 'frozen' needs a residual block, not {block!r}")
            self.lift = block_cls(width, d_in=d_in, **options)
            self.blocks = nn.Sequential(*(block_cls(width, **options) for _ in range(depth - 1)))
            self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.blocks(self.lift(x)))
