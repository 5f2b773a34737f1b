"""A linear hash grid whose forward and backward are each one inductor kernel: a measurement.

`FusedPlanGrid` is `GridEncoding` with the same tables and the same numbers (to float
rounding). Its forward is a `torch.compile`d function that, per point and level, computes the
corners' rows and weights, loads each row of 2 fp32 features as one int64 word, splits it and
sums the weighted corners, all in one generated loop over `(batch, levels)`; it saves nothing
but the coordinates. Its backward is a second compiled function that recomputes the rows and
weights and adds `w * grad` into a zero table, one loop per corner and feature (inductor has
no complex64 type, so the scatter is of scalars: 8 per point and level where the eager lookup
adds 4 complex64 words), compiled single-threaded (`cpp.threads=1`: a parallel scatter uses
atomic adds, slower and not reproducible). Unlike `hashgrid_compiled_plan.py` there are no
saved `(corners, batch * levels)` arrays to fault in. Used by `benchmarks/hashgrid_phases.py`;
not used by mlplab.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from mlplab.nn.hashgrid import GridEncoding


def corner_rows(
    x: Tensor, res: Tensor, top: Tensor, mult: Tensor, masks: Tensor, offsets: Tensor
) -> Iterator[tuple[Tensor, Tensor]]:
    """`x (B, d)` -> per corner, rows `(B, L)` int32 and weights `(B, L)`: the rule of
    `GridEncoding.taps` / `lookup_indices`, written for one fused loop."""
    d = x.shape[1]
    pos = x.clamp(-1.0, 1.0).add(1.0).mul(0.5).unsqueeze(-1) * res  # (B, d, L)
    cell = torch.minimum(pos.floor(), top.float())
    base = cell.int()
    frac = pos - cell
    lo, hi = (base * mult) & masks, (base * mult + mult) & masks
    dense = masks == -1  # dense levels add the axes' shares, hashed ones xor them
    for corner in range(2**d):
        idx, w = lo[:, 0] + offsets, 1.0 - frac[:, 0]
        if corner & 1:
            idx, w = hi[:, 0] + offsets, frac[:, 0]
        for axis in range(1, d):
            upper = (corner >> axis) & 1
            share = (hi if upper else lo)[:, axis]
            idx = torch.where(dense, idx + share, idx ^ share)
            w = w * (frac[:, axis] if upper else 1.0 - frac[:, axis])
        yield idx, w


def lookup_plan(
    x: Tensor, table: Tensor, res: Tensor, top: Tensor, mult: Tensor, masks: Tensor, offsets: Tensor
) -> Tensor:
    """`x (B, d)`, `table (rows, 2)` fp32 -> `(B, L, 2)`; a row is one int64 word (little-endian:
    feature 0 in the low half)."""
    words = table.view(torch.int64).view(-1)
    low: Tensor | float = 0.0
    high: Tensor | float = 0.0
    for idx, w in corner_rows(x, res, top, mult, masks, offsets):
        word = words[idx.long()]
        low = low + w * (word & 0xFFFFFFFF).to(torch.int32).view(torch.float32)
        high = high + w * (word >> 32).to(torch.int32).view(torch.float32)
    return torch.stack([low, high], -1)  # type: ignore[list-item]


def scatter_plan(
    x: Tensor,
    grad: Tensor,
    rows: int,
    res: Tensor,
    top: Tensor,
    mult: Tensor,
    masks: Tensor,
    offsets: Tensor,
) -> Tensor:
    """`x (B, d)`, `grad (B, L, F)` -> the table's gradient `(rows, F)`."""
    f = grad.shape[-1]
    out = torch.zeros(rows * f, dtype=grad.dtype, device=grad.device)
    for idx, w in corner_rows(x, res, top, mult, masks, offsets):
        flat = idx.long() * f
        for feature in range(f):
            out.index_put_((flat + feature,), w * grad[..., feature], accumulate=True)
    return out.view(rows, f)


compiled_lookup = torch.compile(lookup_plan)
compiled_scatter = torch.compile(scatter_plan, options={"cpp.threads": 1})


def buffers(enc: GridEncoding) -> tuple[Tensor, ...]:
    return enc.level_buffers()


class FusedPlanLookup(torch.autograd.Function):
    """`table (rows, 2)`, `x (B, d)` -> `(B, L * 2)`; gradient for the table only."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, x: Tensor, enc: GridEncoding) -> Tensor:
        torch._dynamo.maybe_mark_dynamic(x, 0)
        ctx.save_for_backward(x)
        ctx.enc, ctx.rows = enc, table.shape[0]
        return compiled_lookup(x, table, *buffers(enc)).view(x.shape[0], -1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        grad = grad.contiguous().view(x.shape[0], ctx.enc.levels, 2)
        torch._dynamo.maybe_mark_dynamic(grad, 0)
        return compiled_scatter(x, grad, ctx.rows, *buffers(ctx.enc)), None, None


class FusedPlanGrid(GridEncoding):
    """`GridEncoding` (linear kernel, 2 fp32 features) with the fused kernels above:
    `(batch, d_in) -> (batch, levels * 2)`."""

    def __init__(self, d_in: int, **options: Any) -> None:
        super().__init__(d_in, **options)
        if self.kernel != "linear" or self.features != 2:
            raise ValueError("FusedPlanGrid covers kernel='linear' with 2 features")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return FusedPlanLookup.apply(self.table, x.float().contiguous(), self)
