"""B-spline maths for the KAN unit: knot vectors, all bases at once, least-squares refits.

A unit with `d` inputs keeps one knot vector per input, `knots (d, grid + 2*order + 1)`
(`order` extra knots on each side of the `grid` intervals), giving `grid + order` basis
functions of degree `order` per input.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
    spaced knots beyond each end. `eps > 0` keeps the knots strictly increasing even for constant
    or tied columns. Returns `(d, grid + 2*order + 1)`.
    """
    x_sorted = torch.sort(x.detach(), dim=0).values
    n = x_sorted.shape[0]
    idx = torch.linspace(0, n - 1, grid + 1, device=x.device).round().long()
    adaptive = x_sorted[idx]  # (grid + 1, d)
    step = (x_sorted[-1] - x_sorted[0] + 2 * margin) / grid  # (d,)
    ramp = torch.arange(grid + 1, device=x.device, dtype=x.dtype).unsqueeze(1)
    uniform = ramp * step + x_sorted[0] - margin
    inner = eps * uniform + (1 - eps) * adaptive
    left = inner[:1] - step * torch.arange(order, 0, -1, device=x.device, dtype=x.dtype)[:, None]
    right = inner[-1:] + step * torch.arange(1, order + 1, device=x.device, dtype=x.dtype)[:, None]
    return torch.cat([left, inner, right]).T.contiguous()


def basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """All B-spline bases of every input at once: `x (n, d)`, `knots (d, L)` -> `(n, d, L-1-order)`.

    Cox-de Boor recursion on the whole `(n, d, ·)` tensor, one degree at a time, using
    `1 - w_{j+1}` for the right-hand weight so each degree costs five elementwise ops. Inputs
    outside `[knots[:, 0], knots[:, -1])` get all-zero bases.
    """
    x = x.unsqueeze(-1)
    above = (x >= knots).to(x.dtype)  # (n, d, L)
    b = above[..., :-1] - above[..., 1:]  # indicator of [t_j, t_{j+1})
    for k in range(1, order + 1):
        m = b.shape[-1]
        inv = 1.0 / (knots[:, k:k + m] - knots[:, :m])
        w = (x - knots[:, :m]) * inv
        p = w * b
        b = p[..., :-1] + (b - p)[..., 1:]
    return b


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
