"""The RBF unit: Gaussian radial bases on every input, one matmul over them (FastKAN)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from mlplab.nn import options as opt
from mlplab.nn.layers import make_activation
from mlplab.nn.registry import register_unit
from mlplab.nn.splines import data_knots, least_squares_map, refit

RBF_INIT_STD = 0.1


class _Gaussians(torch.autograd.Function):
    """`exp(c (x_i - m_j)^2)` for `x (n, d)`, centres `m (k,)` or per input `(d, k)` and `c` a
    float or per input `(d, 1)` -> `(n, d, k)`, with a closed-form backward that needs only
    the offsets and the output."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, centers: Tensor, c: float | Tensor) -> Tensor:
        offset = x.unsqueeze(-1) - centers
        phi = torch.mul(offset, offset).mul_(c).exp_()
        ctx.save_for_backward(offset, phi)
        ctx.c, ctx.x_dtype, ctx.centers_dim = c, x.dtype, centers.dim()
        return phi

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        offset, phi = ctx.saved_tensors
        slope = (grad * phi).mul_(offset).mul_(2 * ctx.c)  # d out / d x_i, per centre
        grad_x = slope.sum(-1).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        grad_centers = None
        if ctx.needs_input_grad[1]:
            grad_centers = -slope.sum(tuple(range(slope.dim() - ctx.centers_dim)))
        return grad_x, grad_centers, None


@register_unit("rbf")
class RBFUnit(nn.Module):
    """`y = b + U base(x) + W vec(exp(-((x_i - c_j) / h)^2))`: `(..., d_in) -> (..., d_out)`.

    Options: `n_centers` (8) centres `c` evenly spaced over `grid_range` ([-2, 2], shared by
    every input, FastKAN's choice), fixed or `learnable_centers`; `width` the Gaussians' `h`
    (default: the centre spacing); `base` the base branch's activation ("silu", "none" drops
    the branch); `grid_eps` the evenly spaced share of `update_grid`'s centres (1: evenly over
    the data's range, 0: at its quantiles). `W` has `d_in * n_centers` columns, so the basis is
    contracted in one matmul. After `update_grid` every input has its own centres `(d_in,
    n_centers)` and width `widths (d_in, 1)` (saved with the weights).
    """

    nonlinear = True
    widths: Tensor | None

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, n_centers: int = 8,
                 grid_range: tuple[float, float] | list[float] = (-2.0, 2.0),
                 width: float | None = None, learnable_centers: bool = False,
                 base: str | None = "silu", grid_eps: float = 1.0) -> None:
        super().__init__()
        self.check_options(dict(bias=bias, n_centers=n_centers, grid_range=grid_range,
                                width=width, learnable_centers=learnable_centers, base=base,
                                grid_eps=grid_eps))
        self.d_in, self.d_out, self.n_centers = d_in, d_out, n_centers
        self.grid_eps = float(grid_eps)
        low, high = float(grid_range[0]), float(grid_range[1])
        centers = torch.linspace(low, high, n_centers)
        if learnable_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)
        h = width if width is not None else (high - low) / max(n_centers - 1, 1)
        self.width = h
        self.register_buffer("widths", None)  # per input, once `update_grid` placed the centres
        base = opt.check_activation({"base": base}, "base")
        self.base_act = make_activation(base) if base else None
        self.base = nn.Linear(d_in, d_out, bias=bias) if base else None
        self.rbf_weight = nn.Parameter(torch.empty(d_out, d_in * n_centers))
        self.bias = nn.Parameter(torch.empty(d_out)) if bias and not base else None
        with torch.no_grad():
            nn.init.trunc_normal_(self.rbf_weight, std=RBF_INIT_STD, a=-2 * RBF_INIT_STD,
                                  b=2 * RBF_INIT_STD)
            if self.bias is not None:
                self.bias.uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in))

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_centers", low=1)
        opt.check_range(options, "grid_range")
        if options["width"] is not None:
            opt.check_float(options, "width", low=0.0, open_low=True)
        opt.check_bool(options, "learnable_centers")
        opt.check_activation(options, "base")
        opt.check_float(options, "grid_eps", low=0.0, high=1.0, open_low=True)

    def _neg_inv_h2(self) -> float | Tensor:
        """`-1 / h^2`: a float, or per input `(d_in, 1)` after `update_grid`."""
        if self.widths is None:
            return -1.0 / (self.width * self.width)
        return -self.widths.square().reciprocal()

    def basis(self, x: Tensor) -> Tensor:
        """Gaussian bases `(n, d_in) -> (n, d_in, n_centers)`."""
        c = self._neg_inv_h2()
        if torch.is_grad_enabled() and (x.requires_grad or self.centers.requires_grad):
            return _Gaussians.apply(x, self.centers, c)
        d = x.unsqueeze(-1) - self.centers
        return d.mul_(d).mul_(c).exp_()

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.d_in)
        bases = self.basis(x).reshape(x.shape[0], -1)
        if self.base is None:
            out = F.linear(bases, self.rbf_weight, self.bias)
        else:
            out = torch.addmm(self.base(self.base_act(x)), bases, self.rbf_weight.t())
        return out.reshape(*lead, self.d_out)

    # -- grid -------------------------------------------------------------------------------

    @torch.no_grad()
    def update_grid(self, x: Tensor, *, margin: float = 0.01) -> None:
        """Move every input's centres to the data `x (..., d_in)`: `n_centers` points over its
        range (reaching `margin * max(range, 1)` beyond it), `grid_eps` evenly spaced and the
        rest at its quantiles, as KAN's `update_grid` places knots; each input's width keeps
        its ratio to the mean centre spacing. The Gaussian weights are refitted by least
        squares so that the unit's function is kept on `x` (closely, not exactly: the old
        Gaussians are not in the new span)."""
        x = x.detach().reshape(-1, self.d_in).float()
        sample = x.double()
        old = self._plain_basis(sample, self.centers, self._neg_inv_h2())
        spacing = self._spacing(self.centers.detach())
        if self.n_centers == 1:
            centers = ((x.min(0).values + x.max(0).values) / 2).unsqueeze(1)
        else:
            centers = data_knots(x, self.n_centers - 1, 0, eps=self.grid_eps, margin=margin)
        widths = self.width_now().expand(self.d_in, 1) * (self._spacing(centers) / spacing)
        new = self._plain_basis(sample, centers, -widths.double().square().reciprocal())
        matrix = least_squares_map(new.transpose(0, 1), old.transpose(0, 1))  # (d, k, k)
        weight = self.rbf_weight.detach().view(self.d_out, self.d_in, self.n_centers)
        self.rbf_weight.copy_(refit(weight, matrix).reshape(self.d_out, -1))
        centers = centers.to(self.centers)
        if isinstance(self.centers, nn.Parameter):
            self.centers = nn.Parameter(centers, self.centers.requires_grad)
        else:
            self.centers = centers
        self.widths = widths.to(self.rbf_weight.dtype)

    def width_now(self) -> Tensor:
        """The Gaussians' `h`: `(d_in, 1)` after `update_grid`, else `(1, 1)` (shared)."""
        if self.widths is not None:
            return self.widths
        return self.rbf_weight.new_full((1, 1), self.width)

    def _spacing(self, centers: Tensor) -> Tensor:
        """Mean centre spacing per input `(d_in or 1, 1)` (1 with a single centre)."""
        c = centers.reshape(-1, self.n_centers).float()
        if self.n_centers == 1:
            return torch.ones_like(c)
        return (c[:, -1:] - c[:, :1]) / (self.n_centers - 1)

    @staticmethod
    def _plain_basis(x: Tensor, centers: Tensor, c: float | Tensor) -> Tensor:
        d = x.unsqueeze(-1) - (centers.to(x.dtype))
        c = c.to(x.dtype) if isinstance(c, Tensor) else c
        return d.mul_(d).mul_(c).exp_()

    def adopt_shapes(self, shapes: Mapping[str, tuple[int, ...]], prefix: str = "") -> None:
        """Take the centre layout of a state dict about to be loaded (`{name: shape}`): weights
        saved after `update_grid` (per-input centres and `widths`) load into a unit built from
        the spec, and weights saved before it load into an updated unit. The values come from
        the state dict."""
        shape = shapes.get(prefix + "centers")
        if shape is None or tuple(shape) == tuple(self.centers.shape):
            return
        centers = self.centers.new_zeros(tuple(shape))
        if isinstance(self.centers, nn.Parameter):
            self.centers = nn.Parameter(centers, self.centers.requires_grad)
        else:
            self.centers = centers
        widths = shapes.get(prefix + "widths")
        self.widths = None if widths is None else self.rbf_weight.new_zeros(tuple(widths))

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, n_centers={self.n_centers}, "
                f"learnable_centers={isinstance(self.centers, nn.Parameter)}")
