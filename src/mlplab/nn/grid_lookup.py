"""The grid encodings' lookup: a weighted sum of table rows, its backward one `index_add_`.

`GridLookup.apply(table (rows, F), idx (C, n), w (C, n)) -> (n, F)`,
`out[i] = sum_c w[c, i] * table[idx[c, i]]`. A row is moved as one scalar ("word") where a dtype
of its width exists: the gather is one `index_select` of `C * n` words (int32 / int64 /
complex128 for rows of 4 / 8 / 16 bytes: a bitwise copy), and the backward one `index_add_` of
`C * n` words into a zero table where an addition of that width is exact per feature (F = 1, or
F = 2 as complex64 / complex128 over fp32 / fp64: complex addition is element-wise). Other
shapes use per-feature scalar indices (`idx * F + f`): same numbers, more index traffic. The
weights are spread over the features once (`(C, n) -> (C, n, F)`) so the corner sum and the
backward's products run over contiguous rows. The weights' gradient (coordinates that require
grad) is computed only when asked for.
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
    """`table (rows, F)` contiguous, `idx (m,)` -> `(m, F)`."""
    f = table.shape[1]
    word = COPY_WORDS.get(f * table.element_size())
    if word is None:
        return table.view(-1).index_select(0, scalar_index(idx, f)).view(-1, f)
    return table.view(word).view(-1).index_select(0, idx).view(table.dtype).view(-1, f)


def scatter_rows(shape: torch.Size, idx: Tensor, src: Tensor) -> Tensor:
    """`src (m, F)` contiguous summed into the rows `idx (m,)` of a zero table `shape`."""
    f = shape[1]
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    word = src.dtype if f == 1 else ADD_WORDS.get(src.dtype) if f == 2 else None
    if word is None:
        out.view(-1).index_add_(0, scalar_index(idx, f), src.reshape(-1))
    else:
        out.view(word).view(-1).index_add_(0, idx, src.reshape(-1, f).view(word).view(-1))
    return out


def spread(w: Tensor, f: int) -> Tensor:
    """`(C, n) -> (C, n, F)` contiguous: each weight repeated over the features."""
    if f == 1:
        return w.unsqueeze(-1)
    if f == 2 and w.dtype in ADD_WORDS:
        return torch.view_as_real(torch.complex(w, w))  # interleaves (w, w): one fast pass
    return w.unsqueeze(-1).expand(*w.shape, f).contiguous()


class GridLookup(torch.autograd.Function):
    """`table (rows, F)`, `idx (C, n)` int32/int64, `w (C, n)` -> `(n, F)`."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        c, n = idx.shape
        f = table.shape[1]
        table = table.contiguous()
        rows = gather_rows(table, idx.reshape(-1)).view(c, n, f)
        wf = spread(w.to(table.dtype), f)
        out = rows[0] * wf[0]
        for corner in range(1, c):  # over the 2^d (or 4^d) corners, never over levels
            out.addcmul_(rows[corner], wf[corner])
        ctx.save_for_backward(idx, wf, rows if ctx.needs_input_grad[2] else None)
        ctx.table_shape, ctx.w_dtype = table.shape, w.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        idx, wf, rows = ctx.saved_tensors
        grad = grad.to(wf.dtype).contiguous()  # (n, F)
        grad_table = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_table = scatter_rows(ctx.table_shape, idx.reshape(-1), wf * grad)
        if ctx.needs_input_grad[2]:
            grad_w = (rows * grad).sum(-1).to(ctx.w_dtype)
        return grad_table, None, grad_w
