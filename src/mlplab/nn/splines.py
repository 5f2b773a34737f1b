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


def _bases(x: Tensor, knots: Tensor, order: int, *, slope: bool) -> tuple[Tensor, Tensor | None]:
    """Degree-`order` bases `(n, d, C)` of `x (n, d)` and, with `slope`, their derivatives
    `dB_j/dx = order * (B'_j / (t_{j+order} - t_j) - B'_{j+1} / (t_{j+order+1} - t_{j+1}))`
    from the degree `order - 1` bases `B'`."""
    dtype = torch.promote_types(x.dtype, knots.dtype)
    x = x.unsqueeze(-1)
    above = x >= knots  # (n, d, L)
    b = torch.logical_xor(above[..., :-1], above[..., 1:]).to(dtype)  # 1 on [t_j, t_{j+1})
    del above  # temporaries are freed as soon as possible: this runs at the memory peak
    derivative = None
    for k in range(1, order + 1):
        m = b.shape[-1]
        t = knots[:, :m]
        inv = 1.0 / (knots[:, k:k + m] - t)
        if slope and k == order:
            q = b * (k * inv)
            derivative = q[..., :-1] - q[..., 1:]
            del q
        p = torch.addcmul(-t * inv, x, inv).mul_(b)  # w_j b_j, w_j = (x - t_j) / (t_{j+k} - t_j)
        b = p[..., :-1] + b.sub_(p)[..., 1:]  # w_j b_j + (1 - w_{j+1}) b_{j+1}
        del p
    return b, derivative


class _Basis(torch.autograd.Function):
    """`basis` with a closed-form backward: it saves only the bases' derivatives `(n, d, C)`,
    not every intermediate of the recursion, and contracts them with the incoming gradient
    as a batched dot product (no `(n, d, C)` temporary)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, knots: Tensor, order: int) -> Tensor:
        bases, derivative = _bases(x, knots, order, slope=True)
        ctx.save_for_backward(derivative)
        ctx.x_dtype = x.dtype
        return bases

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (derivative,) = ctx.saved_tensors
        n, d, c = derivative.shape
        dot = torch.bmm(grad.reshape(n * d, 1, c).to(derivative.dtype),
                        derivative.reshape(n * d, c, 1))
        return dot.reshape(n, d).to(ctx.x_dtype), None, None


def basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """All B-spline bases of every input at once: `x (n, d)`, `knots (d, L)` -> `(n, d, L-1-order)`.

    Cox-de Boor recursion on the whole `(n, d, ·)` tensor, one degree at a time (the right-hand
    weight is `1 - w_{j+1}`, so a degree costs four elementwise passes). Inputs outside
    `[knots[:, 0], knots[:, -1])` get all-zero bases. Differentiable in `x` (not in the knots).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _Basis.apply(x, knots, order)
    return _bases(x, knots, order, slope=False)[0]


def refit_matrix(x: Tensor, old_knots: Tensor, new_knots: Tensor, order: int) -> Tensor:
    """Per input, the least-squares map from coefficients on `old_knots` to coefficients on
    `new_knots` that best reproduce the old spline at the sample points `x (n, d)`:
    `(d, C_new, C_old)`. A linear map, so it refits every output's coefficients at once.
    """
    x = x.detach().double()
    a_new = basis(x, new_knots.double(), order).transpose(0, 1)  # (d, n, C_new)
    a_old = basis(x, old_knots.double(), order).transpose(0, 1)  # (d, n, C_old)
    driver = "gelsd" if x.device.type == "cpu" else None
    return torch.linalg.lstsq(a_new, a_old, driver=driver).solution


def refit(coef: Tensor, matrix: Tensor) -> Tensor:
    """Apply `refit_matrix` to coefficients `(d_out, d, C_old)` -> `(d_out, d, C_new)`."""
    return torch.einsum("inm,oim->oin", matrix, coef.double()).to(coef.dtype)
