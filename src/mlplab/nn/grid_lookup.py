"""The grid encodings' lookup: a weighted sum of table rows; its backward, `scatter_add_`.

`GridLookup.apply(table (rows, F), idx (C, n), w (C, n)) -> (n, F)`,
`out[i] = sum_c w[c, i] * table[idx[c, i]]`, one corner at a time. A row is moved as one
scalar ("word") where a dtype of its width exists: the gather is an `index_select` of `n`
words per corner (int32 / int64 / complex128 for rows of 4 / 8 / 16 bytes: a bitwise copy),
and the backward a `scatter_add_` of `n` words per corner into a zero table where an addition
of that width is exact per feature (F = 1, or F = 2 as complex64 / complex128 over fp32 /
fp64: complex addition is element-wise). Other shapes use per-feature scalar indices
(`idx * F + f`): same numbers, more index traffic. The weights are spread over the features
once (`(C, n) -> (C, n, F)`) so the corner sum and the backward's products run over
contiguous rows. The weights' gradient (coordinates that require grad) is computed only when
asked for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

COPY_WORDS = {4: torch.int32, 8: torch.int64, 16: torch.complex128}  # by row width in bytes
ADD_WORDS = {torch.float32: torch.complex64, torch.float64: torch.complex128}  # 2 features


def scalar_index(idx: Tensor, f: int) -> Tensor:
    """`(m,)` row indices -> `(m * F,)` indices of their features in the flattened table."""
    return (idx.long().unsqueeze(-1) * f + torch.arange(f, device=idx.device)).view(-1)


def gather_rows(table: Tensor, idx: Tensor) -> Tensor:
    """`table (rows, F)` contiguous, `idx (m,)` -> `(m, F)`. A traced graph (`torch.export`,
    then ONNX) gets the per-feature indices: views that reinterpret the dtype have no ONNX
    lowering."""
    f = table.shape[1]
    word = None if torch.compiler.is_compiling() else COPY_WORDS.get(f * table.element_size())
    if word is None:
        return table.view(-1).index_select(0, scalar_index(idx, f)).view(-1, f)
    return table.view(word).view(-1).index_select(0, idx).view(table.dtype).view(-1, f)


def add_rows(out: Tensor, idx: Tensor, src: Tensor) -> None:
    """Sum `src (m, F)` contiguous into the rows `idx (m,)` of `out (rows, F)`, in place.
    A 1-D `scatter_add_` (int64 indices): on the CPU ~40% faster than `index_add_` on the
    same words, the int32 -> int64 copy included."""
    f = out.shape[1]
    word = src.dtype if f == 1 else ADD_WORDS.get(src.dtype) if f == 2 else None
    if word is None:
        out.view(-1).scatter_add_(0, scalar_index(idx, f), src.reshape(-1))
    else:
        out.view(word).view(-1).scatter_add_(0, idx.long(),
                                             src.reshape(-1, f).view(word).view(-1))


def spread(w: Tensor, f: int) -> Tensor:
    """`(C, n) -> (C, n, F)` contiguous: each weight repeated over the features."""
    if f == 1:
        return w.unsqueeze(-1)
    if f == 2 and w.dtype in ADD_WORDS:
        return torch.view_as_real(torch.complex(w, w))  # interleaves (w, w): one fast pass
    return w.unsqueeze(-1).expand(*w.shape, f).contiguous()


class GridLookup(torch.autograd.Function):
    """`table (rows, F)`, `idx (C, n)` int32/int64, `w (C, n)` -> `(n, F)`.

    One corner at a time (a loop over the 2^d or 4^d corners, never over levels): each
    corner's `(n, F)` rows are gathered, weighted and summed, and in the backward scattered, so
    the temporaries stay one corner large (cache-resident) instead of `(C, n, F)`.
    """

    @staticmethod
    def forward(ctx: Any, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        table = table.contiguous()
        wf = spread(w.to(table.dtype), table.shape[1])  # (C, n, F)
        out = gather_rows(table, idx[0]).mul_(wf[0])
        for corner in range(1, idx.shape[0]):
            out.addcmul_(gather_rows(table, idx[corner]), wf[corner])
        ctx.save_for_backward(idx, wf, table if ctx.needs_input_grad[2] else None)
        ctx.table_shape, ctx.w_dtype = table.shape, w.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        idx, wf, table = ctx.saved_tensors
        grad = grad.to(wf.dtype).contiguous()  # (n, F)
        grad_table = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_table = torch.zeros(ctx.table_shape, dtype=wf.dtype, device=wf.device)
            for corner in range(idx.shape[0]):
                add_rows(grad_table, idx[corner], wf[corner] * grad)
        if ctx.needs_input_grad[2]:  # d out / d w[c] = the corner's row
            grad_w = torch.stack(
                [(gather_rows(table, idx[corner]) * grad).sum(-1) for corner in range(idx.shape[0])]
            ).to(ctx.w_dtype)
        return grad_table, None, grad_w
