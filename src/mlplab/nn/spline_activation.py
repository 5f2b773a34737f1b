"""`bspline`: a learnable B-spline activation, the control of "KAN or MLP: a fairer comparison".

Yu et al. replace an MLP's fixed activation with a learnable B-spline and find that this
alone gives the MLP KAN's edge on symbolic formulas. Here `model.activation = "bspline"`
does that for every block: each activation module holds one spline shared by the channels
of its layer, so an MLP gains `GRID + ORDER` parameters per activation.
`model.activation = "bspline-channel"` gives every channel its own spline, as the paper's
control does: `width * (GRID + ORDER)` parameters per activation (the block passes the width).
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

    One spline shared by every channel (`coef (GRID + ORDER,)`), or with `channels = d` one
    per channel of the last dimension (`coef (d, GRID + ORDER)`). Starts as the least-squares
    spline of SiLU (within 2e-3 on `RANGE`); like a KAN's spline it is free beyond `RANGE` and
    zero outside `support()` (+-5.25), which the norm before it in every block keeps rare.
    """

    knots: Tensor
    needs_width = False  # `make_activation` passes the layer's width when True

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.register_buffer("knots", uniform_knots(1, GRID, ORDER, *RANGE))
        coef = torch.tensor(_silu_coefficients(), dtype=torch.float32)
        if channels is not None:
            if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
                raise ValueError(f"channels: expected a positive integer, got {channels!r}")
            coef = coef.expand(channels, -1).clone()
        self.channels = channels
        self.coef = nn.Parameter(coef)

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
        if self.channels is not None:  # per channel: index the flattened (channels, cells) table
            if x.shape[-1] != self.channels:
                raise ValueError(f"BSplineActivation: expected {self.channels} channels in the "
                                 f"last dimension, got {x.shape[-1]}")
            width = coef.shape[-1]
            idx = idx + torch.arange(self.channels, device=idx.device) * width
            coef = coef.reshape(-1)
        s = 1.0 - t
        t2 = t * t
        pieces = (s * s * s, (3.0 * t - 6.0) * t2 + 4.0, ((-3.0 * t + 3.0) * t + 3.0) * t + 1.0,
                  t2 * t)
        out = sum(coef[idx + j] * piece for j, piece in enumerate(pieces)) / 6.0
        return torch.where(inside, out, torch.zeros_like(out)).to(x.dtype)

    def extra_repr(self) -> str:
        return "shared" if self.channels is None else f"channels={self.channels}"


@ACTIVATIONS.register("bspline-channel")
class ChannelBSplineActivation(BSplineActivation):
    """`BSplineActivation` with one spline per channel: built with the layer's width
    (`make_activation(name, width)`), `(..., width) -> (..., width)`."""

    needs_width = True

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
