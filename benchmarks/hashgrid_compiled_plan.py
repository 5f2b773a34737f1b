"""A 2-D linear hash grid whose index math and gathers are one inductor kernel: a measurement.

`CompiledPlanGrid` is `GridEncoding` with the same tables and the same numbers (to float
rounding), but its forward is a `torch.compile`d function that computes, per point and level,
the four corners' rows and weights, gathers them (`table[idx]`) and sums them, in one
generated C++ loop instead of ~25 eager passes over memory; it saves the corners' int32 rows
and weights, and the backward builds the scatter's int64 rows and weighted gradients in a
second compiled function and scatters them with one eager `scatter_add_` of complex64 words
(inductor's own scatter uses atomic adds). Used by `benchmarks/hashgrid_phases.py` to show how
far PyTorch's own compiler takes the encoding's share of the step; not used by mlplab
(compiling takes seconds per process and per batch shape, longer than a whole 40 dB fit).
"""

from __future__ import annotations

from typing import Any

import torch
from hashgrid_fused_plan import buffers, corner_rows
from torch import Tensor

from mlplab.nn.hashgrid import GridEncoding


def corner_plan(
    x: Tensor, table: Tensor, res: Tensor, top: Tensor, mult: Tensor, masks: Tensor, offsets: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """`(B, 2)` coordinates -> out `(B, L, F)`, rows `(4, B, L)` int32, weights `(4, B, L)`:
    the corners of `hashgrid_fused_plan.corner_rows`, gathered and summed for one fused
    kernel, their rows and weights kept for the backward."""
    out, rows, weights = 0, [], []
    for idx, w in corner_rows(x, res, top, mult, masks, offsets):
        out = out + w.unsqueeze(-1) * table[idx.long()]
        rows.append(idx)
        weights.append(w)
    return out, torch.stack(rows), torch.stack(weights)


def scatter_inputs(rows: Tensor, weights: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """rows, weights `(4, B, L)`, grad `(B, L, F)` -> int64 rows `(4 B L,)`, `(4, B, L, F)`."""
    return rows.long().view(-1), weights.unsqueeze(-1) * grad


compiled_plan = torch.compile(corner_plan)
compiled_scatter_inputs = torch.compile(scatter_inputs)


class CompiledPlanLookup(torch.autograd.Function):
    """`table (rows, F)`, `x (B, 2)` -> `(B, L * F)`; gradient for the table only."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, x: Tensor, enc: GridEncoding) -> Tensor:
        out, rows, weights = compiled_plan(x, table, *buffers(enc))
        ctx.save_for_backward(rows, weights)
        ctx.table_shape = table.shape
        return out.view(x.shape[0], -1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        rows, weights = ctx.saved_tensors
        f = ctx.table_shape[1]
        flat, src = compiled_scatter_inputs(rows, weights, grad.view(grad.shape[0], -1, f))
        grad_table = torch.zeros(ctx.table_shape, dtype=src.dtype)
        grad_table.view(torch.complex64).view(-1).scatter_add_(
            0, flat, src.view(torch.complex64).view(-1)
        )
        return grad_table, None, None


class CompiledPlanGrid(GridEncoding):
    """`GridEncoding` (2-D, linear kernel, 2 fp32 features) with the compiled forward above:
    `(batch, 2) -> (batch, levels * 2)`."""

    def __init__(self, d_in: int, **options: Any) -> None:
        super().__init__(d_in, **options)
        if d_in != 2 or self.kernel != "linear" or self.features != 2:
            raise ValueError("CompiledPlanGrid covers 2-D coordinates, kernel='linear', 2 features")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return CompiledPlanLookup.apply(self.table, x.float(), self)
