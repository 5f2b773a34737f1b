"""The KAN unit: a learnable B-spline on every edge plus a SiLU base branch (Liu et al.).

Computed the efficient-kan way: the bases of all inputs as one `(n, d_in, grid + order)` tensor,
flattened and contracted with the spline coefficients in one matmul, so there is no per-edge
loop and no `(n, d_in, d_out)` intermediate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.nn import options as opt
from mlplab.nn.layers import make_activation
from mlplab.nn.registry import register_unit
from mlplab.nn.splines import basis, data_knots, refit, refit_matrix, uniform_knots

SPLINE_INIT_STD = 0.1


@register_unit("kan")
class KANUnit(nn.Module):
    """`y_o = b_o + sum_i [u_oi base(x_i) + s_oi sum_c c_oic B_c(x_i)]`: `(..., d_in) -> (..., d_out)`.

    Options: `grid` intervals (5) of B-splines of degree `order` (3) over `grid_range`
    ([-1, 1], one knot vector per input, outside it only the base branch acts); `base` the
    base branch's activation ("silu", "none" drops the branch); `spline_scale` a learnable
    per-edge scale `s`; `grid_eps` the uniform share of `update_grid`'s knots; `l1` and
    `entropy` weights of `regularization_loss`, added to the training loss when nonzero.
    """

    nonlinear = True
    knots: Tensor

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, grid: int = 5,
                 order: int = 3, grid_range: tuple[float, float] | list[float] = (-1.0, 1.0),
                 base: str | None = "silu", spline_scale: bool = True, grid_eps: float = 0.02,
                 l1: float = 0.0, entropy: float = 0.0) -> None:
        super().__init__()
        self.check_options(dict(bias=bias, grid=grid, order=order, grid_range=grid_range,
                                base=base, spline_scale=spline_scale, grid_eps=grid_eps,
                                l1=l1, entropy=entropy))
        self.d_in, self.d_out, self.grid, self.order = d_in, d_out, grid, order
        self.grid_eps, self.l1, self.entropy = float(grid_eps), float(l1), float(entropy)
        base = opt.check_activation({"base": base}, "base")
        self.register_buffer("knots", uniform_knots(d_in, grid, order, *grid_range))
        self.base_act = make_activation(base) if base else None
        self.base_weight = nn.Parameter(torch.empty(d_out, d_in)) if base else None
        self.spline_weight = nn.Parameter(torch.empty(d_out, d_in, grid + order))
        self.spline_scaler = nn.Parameter(torch.empty(d_out, d_in)) if spline_scale else None
        self.bias = nn.Parameter(torch.empty(d_out)) if bias else None
        self.reset_parameters()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "grid", low=1)
        opt.check_int(options, "order", low=1)
        opt.check_range(options, "grid_range")
        opt.check_activation(options, "base")
        opt.check_bool(options, "spline_scale")
        opt.check_float(options, "grid_eps", low=0.0, high=1.0, open_low=True)
        opt.check_float(options, "l1", low=0.0)
        opt.check_float(options, "entropy", low=0.0)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.d_in)
        with torch.no_grad():
            if self.base_weight is not None:
                self.base_weight.uniform_(-bound, bound)
            std = SPLINE_INIT_STD if self.spline_scaler is not None else SPLINE_INIT_STD * bound
            nn.init.trunc_normal_(self.spline_weight, std=std, a=-2 * std, b=2 * std)
            if self.spline_scaler is not None:
                self.spline_scaler.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def scaled_spline_weight(self) -> Tensor:
        """The effective coefficients `s_oi * c_oic`: `(d_out, d_in, grid + order)`."""
        if self.spline_scaler is None:
            return self.spline_weight
        return self.spline_weight * self.spline_scaler.unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.d_in)
        bases = basis(x, self.knots, self.order).reshape(x.shape[0], -1)
        weight = self.scaled_spline_weight().reshape(self.d_out, -1)
        if self.base_weight is None:
            out = F.linear(bases, weight, self.bias)
        else:
            out = torch.addmm(F.linear(self.base_act(x), self.base_weight, self.bias),
                              bases, weight.t())
        return out.reshape(*lead, self.d_out)

    # -- grids --------------------------------------------------------------------------

    @torch.no_grad()
    def update_grid(self, x: Tensor, *, margin: float = 0.01) -> None:
        """Move the knots to the data `x (..., d_in)` (quantiles mixed with a uniform grid over
        its range, `grid_eps`; the grid reaches `margin * max(range, 1)` beyond the data) and
        refit the coefficients by least squares so that the spline on the old grid is kept on
        `x`."""
        x = x.detach().reshape(-1, self.d_in)
        knots = data_knots(x.float(), self.grid, self.order, eps=self.grid_eps, margin=margin)
        self._refit(x, knots.to(self.knots))

    @torch.no_grad()
    def extend_grid(self, new_grid: int, x: Tensor | None = None, *,
                    margin: float = 0.01) -> None:
        """Change the number of grid intervals to `new_grid` (coarse -> fine), refitting the
        coefficients by least squares. Without `x` the new knots are uniform over each input's
        current grid range (a uniform grid refined by an integer factor keeps the function
        exactly); with `x (..., d_in)` they are placed from the data as in `update_grid`
        (`margin` as there)."""
        opt.check_int({"grid": new_grid}, "grid", low=1)
        if x is None:
            low, high = self.knots[:, self.order], self.knots[:, self.order + self.grid]
            knots = uniform_knots(self.d_in, new_grid, self.order, low, high,
                                  dtype=self.knots.dtype)
            ramp = torch.linspace(0.0, 1.0, 8 * (new_grid + self.order) + 1,
                                  dtype=self.knots.dtype, device=self.knots.device)
            sample = low + ramp.unsqueeze(1) * (high - low)
        else:
            sample = x.detach().reshape(-1, self.d_in)
            knots = data_knots(sample.float(), new_grid, self.order, eps=self.grid_eps,
                               margin=margin)
        self._refit(sample.to(self.knots), knots.to(self.knots), grid=new_grid)

    def _refit(self, sample: Tensor, knots: Tensor, grid: int | None = None) -> None:
        coef = refit(self.spline_weight.detach(),
                     refit_matrix(sample, self.knots, knots, self.order))
        if coef.shape == self.spline_weight.shape:
            self.spline_weight.copy_(coef)
        else:
            # contiguous: einsum's result may not be, and L-BFGS views each gradient flat
            self.spline_weight = nn.Parameter(coef.contiguous(), self.spline_weight.requires_grad)
        self.knots = knots
        self.grid = grid if grid is not None else self.grid

    def adopt_shapes(self, shapes: Mapping[str, tuple[int, ...]], prefix: str = "") -> None:
        """Take the grid size of a state dict about to be loaded (`{name: shape}`, this unit's
        names under `prefix`): weights saved after `extend_grid` load into a unit built at the
        spec's grid. The values come from the state dict (knots included)."""
        shape = tuple(shapes.get(prefix + "spline_weight", ()))
        if len(shape) != 3 or shape[:2] != (self.d_out, self.d_in):
            return
        grid = shape[2] - self.order
        if grid >= 1 and grid != self.grid:
            self.spline_weight = nn.Parameter(self.spline_weight.new_zeros(shape),
                                              self.spline_weight.requires_grad)
            self.knots = self.knots.new_zeros(self.d_in, grid + 2 * self.order + 1)
            self.grid = grid

    # -- regularisation -----------------------------------------------------------------

    def regularization_loss(self, l1: float = 1.0, entropy: float = 1.0) -> Tensor:
        """KAN's sparsity penalty, efficient-kan's weight form: with `a_oi` the mean absolute
        effective coefficient of edge (o, i), `l1 * sum(a) + entropy * H(a / sum(a))`."""
        a = self.scaled_spline_weight().abs().mean(-1)
        total = a.sum()
        p = a / total.clamp_min(1e-12)
        return l1 * total - entropy * (p * p.clamp_min(1e-12).log()).sum()

    def aux_loss(self) -> Tensor | None:
        if self.l1 == 0.0 and self.entropy == 0.0:
            return None
        return self.regularization_loss(self.l1, self.entropy)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, grid={self.grid}, order={self.order}, "
                f"base={self.base_act is not None}, bias={self.bias is not None}")
