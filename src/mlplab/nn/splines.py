"""B-spline maths for the KAN unit: knot vectors, all bases at once, least-squares refits.

A unit with `d` inputs keeps one knot vector per input, `knots (d, grid + 2*order + 1)`
(`order` extra knots on each side of the `grid` intervals), giving `grid + order` basis
functions of degree `order` per input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def uniform_knots(d: int, grid: int, order: int, low: float | Tensor, high: float | Tensor,
                  *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Evenly spaced knots over `[low, high]` (scalars, or `(d,)` per input):
    `(d, grid + 2*order + 1)`."""
    low_t = torch.as_tensor(low, dtype=torch.float64).reshape(-1, 1).cpu()
    high_t = torch.as_tensor(high, dtype=torch.float64).reshape(-1, 1).cpu()
    steps = torch.arange(-order, grid + order + 1, dtype=torch.float64)
    knots = low_t + steps * (high_t - low_t) / grid
    return knots.expand(d, -1).to(dtype).contiguous()


def data_knots(x: Tensor, grid: int, order: int, *, eps: float, margin: float = 0.01) -> Tensor:
    """Knots from the data `x (n, d)`: `grid + 1` quantile points per input mixed with a uniform
    grid over the data's range (`eps` of uniform, as efficient-kan does), then `order` uniformly
    spaced knots beyond each end. Both end points lie `margin * max(range, 1)` beyond the data,
    so inputs just outside the sample (test rows) still fall inside the grid, where the spline
    was fitted, not on its unconstrained outer bases. `eps > 0` keeps the knots strictly
    increasing even for constant or tied columns. Returns `(d, grid + 2*order + 1)`.
    """
    x_sorted = torch.sort(x.detach(), dim=0).values
    n = x_sorted.shape[0]
    idx = torch.linspace(0, n - 1, grid + 1, device=x.device).round().long()
    pad = margin * (x_sorted[-1] - x_sorted[0]).clamp_min(1.0)  # (d,)
    adaptive = x_sorted[idx]  # (grid + 1, d)
    adaptive[0], adaptive[-1] = adaptive[0] - pad, adaptive[-1] + pad
    step = (adaptive[-1] - adaptive[0]) / grid  # (d,)
    ramp = torch.arange(grid + 1, device=x.device, dtype=x.dtype).unsqueeze(1)
    uniform = ramp * step + adaptive[0]
    inner = eps * uniform + (1 - eps) * adaptive
    left = inner[:1] - step * torch.arange(order, 0, -1, device=x.device, dtype=x.dtype)[:, None]
    right = inner[-1:] + step * torch.arange(1, order + 1, device=x.device, dtype=x.dtype)[:, None]
    return torch.cat([left, inner, right]).T.contiguous()


def _uniform(knots: Tensor, rtol: float = 1e-5) -> tuple[Tensor, Tensor] | None:
    """`(t_0 (d,), 1 / h (d,))` when every input's knots are evenly spaced (step `h`, within
    `rtol`), else None. Not under `torch.export` (a data-dependent branch): the general path."""
    if torch.compiler.is_exporting():
        return None
    steps = knots[:, 1:] - knots[:, :-1]
    h = (knots[:, -1] - knots[:, 0]) / steps.shape[1]
    if not bool((h > 0).all()) or not bool(((steps - h[:, None]).abs() <= rtol * h[:, None]).all()):
        return None
    return knots[:, 0], 1.0 / h


def _local(x: Tensor, knots: Tensor, order: int, *,
           slope: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """The `order + 1` bases that can be nonzero at each `x (n, d)`: the interval `j (n, d)`
    with `t_j <= x < t_{j+1}` (clamped to the knot vector), the values `(order + 1, n, d)` of
    the bases `j - order .. j` (zero where `x` lies outside the knots) and, with `slope`, their
    derivatives in `x`.

    de Boor's triangle on `(n, d)` tensors (the NURBS Book's `BasisFuns`, vectorised): with
    `left_r = x - t_{j+1-r}` and `right_r = t_{j+r} - x`, each degree costs a few passes over
    `n * d` elements instead of over all `n * d * (grid + 2*order)` of the Cox-de Boor
    recursion. On evenly spaced knots (the initial grid, `extend_grid` without data) `j` is a
    floor and `left`/`right` are offsets in units of the step, with no knot lookups.
    """
    dtype = torch.promote_types(x.dtype, knots.dtype)
    x, knots = x.to(dtype), knots.to(dtype)
    intervals = knots.shape[1] - 1
    even = _uniform(knots)
    if even is not None:
        u = (x - even[0]).mul_(even[1])  # position in steps from t_0
        cell = torch.floor(u)
        f = u.sub_(cell)  # offset in the interval, [0, 1)
        inside = ((cell >= 0) & (cell < intervals)).to(dtype)
        j = cell.clamp_(0, intervals - 1).long()
        # index 0 is never read; left_1 = f
        left = [f, f] + [f + (r - 1) for r in range(2, order + 1)]
        right = [f] + [r - f for r in range(1, order + 1)]
    else:
        # knots at or below x, per input (`knots` rows are sorted)
        count = torch.searchsorted(knots, x.T.contiguous(), right=True).T
        inside = ((count >= 1) & (count <= intervals)).to(dtype)
        j = count.sub_(1).clamp_(0, intervals - 1)
        # `order` more knots beyond each end (the end steps repeated) so that the triangle's
        # terms for bases beyond the knot vector (discarded) stay finite
        ramp = torch.arange(1, order + 1, dtype=dtype, device=x.device)
        padded = torch.cat([knots[:, :1] - (knots[:, 1:2] - knots[:, :1]) * ramp.flip(0), knots,
                            knots[:, -1:] + (knots[:, -1:] - knots[:, -2:-1]) * ramp], dim=1)
        at = j + (order + padded.shape[1] * torch.arange(knots.shape[0], device=x.device))
        left = [x] + [x - padded.take(at + (1 - r)) for r in range(1, order + 1)]
        right = [x] + [padded.take(at + r).sub_(x) for r in range(1, order + 1)]
    values, spans = [inside], []  # degree 0: 1 on the interval
    for degree in range(1, order + 1):
        saved: Tensor | None = None
        new = []
        for r in range(degree):
            if even is not None:
                temp = values[r] * (1.0 / degree)
            else:
                temp = values[r] / (right[r + 1] + left[degree - r])
            if slope and degree == order:
                spans.append(temp)  # B^{order-1} / (knot span): the derivative's terms
            term = right[r + 1] * temp
            new.append(term if saved is None else term.add_(saved))
            saved = left[degree - r] * temp
        new.append(saved)
        values = new
    derivative = None
    if slope:
        derivative = torch.stack([-spans[0]] + [spans[r - 1] - spans[r] for r in range(1, order)]
                                 + [spans[-1]])
        derivative.mul_(order * even[1] if even is not None else order)
    return torch.stack(values), derivative, j


def _window(j: Tensor, order: int) -> Tensor:
    """Where the local bases of interval `j (n, d)` go in a basis axis padded by `order` on
    both sides: `(order + 1, n, d)` indices `j .. j + order` (basis `c` is at `c + order`)."""
    return j.unsqueeze(0) + torch.arange(order + 1, device=j.device).view(-1, 1, 1)


def _dense(values: Tensor, j: Tensor, order: int, n_bases: int) -> Tensor:
    """Local `values (order + 1, n, d)` of interval `j` placed into `(n, d, n_bases)`: scattered
    into a padded axis (no clamping; bases beyond the knot vector land in the padding, which is
    cut off), then copied to a contiguous tensor for the matmul."""
    out = values.new_zeros(*j.shape, n_bases + 2 * order)
    out.permute(2, 0, 1).scatter_(0, _window(j, order), values)
    return out[..., order:order + n_bases].contiguous()


class _Basis(torch.autograd.Function):
    """`basis` with a closed-form backward: it saves the interval `(n, d)` and the local
    bases' derivatives `(order + 1, n, d)`, and gathers the incoming gradient there (zero
    padded, so bases beyond the knot vector get no gradient)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, knots: Tensor, order: int) -> Tensor:
        values, derivative, j = _local(x, knots, order, slope=True)
        ctx.save_for_backward(j.int(), derivative)
        ctx.order, ctx.x_dtype = order, x.dtype
        return _dense(values, j, order, knots.shape[1] - 1 - order)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        j, derivative = ctx.saved_tensors
        order = ctx.order
        padded = F.pad(grad.to(derivative.dtype), (order, order))
        local = padded.permute(2, 0, 1).gather(0, _window(j.long(), order))
        return local.mul_(derivative).sum(0).to(ctx.x_dtype), None, None


def basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """All B-spline bases of every input at once: `x (n, d)`, `knots (d, L)` -> `(n, d, L-1-order)`.

    Only the `order + 1` bases that can be nonzero at each element are computed (`_local`)
    and scattered into the dense tensor that the KAN unit contracts in one matmul. Inputs
    outside `[knots[:, 0], knots[:, -1])` get all-zero bases. Differentiable in `x` (not in
    the knots).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _Basis.apply(x, knots, order)
    values, _, j = _local(x, knots, order, slope=False)
    return _dense(values, j, order, knots.shape[1] - 1 - order)


def refit_matrix(x: Tensor, old_knots: Tensor, new_knots: Tensor, order: int) -> Tensor:
    """Per input, the least-squares map from coefficients on `old_knots` to coefficients on
    `new_knots` that best reproduce the old spline at the sample points `x (n, d)`:
    `(d, C_new, C_old)`. A linear map, so it refits every output's coefficients at once.
    """
    x = x.detach().double()
    a_new = basis(x, new_knots.double(), order).transpose(0, 1)  # (d, n, C_new)
    a_old = basis(x, old_knots.double(), order).transpose(0, 1)  # (d, n, C_old)
    return least_squares_map(a_new, a_old)


def least_squares_map(a_new: Tensor, a_old: Tensor) -> Tensor:
    """Per input, the `M (C_new, C_old)` minimising `|a_new M - a_old|` for the design
    matrices `a_new (d, n, C_new)` and `a_old (d, n, C_old)` of the same `n` sample points
    (minimum norm where `a_new` is rank deficient): `(d, C_new, C_old)`, float64."""
    driver = "gelsd" if a_new.device.type == "cpu" else None
    return torch.linalg.lstsq(a_new.double(), a_old.double(), driver=driver).solution


def refit(coef: Tensor, matrix: Tensor) -> Tensor:
    """Apply `refit_matrix` to coefficients `(d_out, d, C_old)` -> `(d_out, d, C_new)`."""
    return torch.einsum("inm,oim->oin", matrix, coef.double()).to(coef.dtype)
