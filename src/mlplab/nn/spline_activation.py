"""`bspline`: a learnable B-spline activation, the control of "KAN or MLP: a fairer comparison".

Yu et al. replace an MLP's fixed activation with a learnable B-spline and find that this
alone gives the MLP KAN's edge on symbolic formulas. Here `model.activation = "bspline"`
does that for every block: each activation module holds one spline shared by the channels
of its layer (an activation is built without its width), so an MLP gains `GRID + ORDER`
parameters per activation.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.nn.registry import ACTIVATIONS
from mlplab.nn.splines import basis, uniform_knots  # basis: the reference, for the fit

GRID = 8
ORDER = 3
RANGE = (-3.0, 3.0)


def support() -> tuple[float, float]:
    """Where the spline can be nonzero: `RANGE` widened by `ORDER` grid steps on each side."""
    step = (RANGE[1] - RANGE[0]) / GRID
    return RANGE[0] - ORDER * step, RANGE[1] + ORDER * step


@functools.cache
def _silu_coefficients() -> tuple[float, ...]:
    """Least-squares coefficients of the spline closest to SiLU on `RANGE` (the start point)."""
    knots = uniform_knots(1, GRID, ORDER, *RANGE, dtype=torch.float64)
    x = torch.linspace(RANGE[0], RANGE[1], 512, dtype=torch.float64).unsqueeze(1)
    design = basis(x, knots, ORDER).squeeze(1)  # (512, GRID + ORDER)
    solution = torch.linalg.lstsq(design, F.silu(x), driver="gelsd").solution
    return tuple(solution.squeeze(1).tolist())


@ACTIVATIONS.register("bspline")
class BSplineActivation(nn.Module):
    """`sigma(x) = sum_c coef_c B_c(x)`, cubic B-splines (`ORDER` 3) on `GRID` intervals over
    `RANGE`, applied elementwise: `(..., d) -> (..., d)`.

    Starts as the least-squares spline of SiLU (within 2e-3 on `RANGE`); like a KAN's spline
    it is free beyond `RANGE` and zero outside `support()` (+-5.25), which the norm
    before it in every block keeps rare.
    """

    knots: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("knots", uniform_knots(1, GRID, ORDER, *RANGE))
        self.coef = nn.Parameter(torch.tensor(_silu_coefficients(), dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        """The uniform cubic B-spline in closed form: per element, its knot interval `i` and
        offset `t` in it, then the four cubic pieces times the four coefficients that act
        there (no `(n, grid + order)` basis tensor; equal to `basis(x) @ coef`)."""
        step = (RANGE[1] - RANGE[0]) / GRID
        dtype = torch.promote_types(x.dtype, self.coef.dtype)
        u = (x.to(dtype) - self.knots[0, 0]) / step
        cell = torch.floor(u)
        t = u - cell
        inside = (cell >= 0) & (cell < GRID + 2 * ORDER)
        idx = cell.clamp(0, GRID + 2 * ORDER - 1).long()
        coef = F.pad(self.coef.to(dtype), (ORDER, ORDER))  # zeros where fewer bases reach
        s = 1.0 - t
        t2 = t * t
        pieces = (s * s * s, (3.0 * t - 6.0) * t2 + 4.0, ((-3.0 * t + 3.0) * t + 3.0) * t + 1.0,
                  t2 * t)
        out = sum(coef[idx + j] * piece for j, piece in enumerate(pieces)) / 6.0
        return torch.where(inside, out, torch.zeros_like(out)).to(x.dtype)
