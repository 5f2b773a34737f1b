"""The RBF unit: Gaussian radial bases on every input, one matmul over them (FastKAN)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from mlplab.nn import options as opt
from mlplab.nn.layers import make_activation
from mlplab.nn.registry import register_unit

RBF_INIT_STD = 0.1


class _Gaussians(torch.autograd.Function):
    """`exp(c (x_i - m_j)^2)` for `x (n, d)`, centres `m (k,)` -> `(n, d, k)`, with a
    closed-form backward that needs only the offsets and the output."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, centers: Tensor, c: float) -> Tensor:
        offset = x.unsqueeze(-1) - centers
        phi = torch.mul(offset, offset).mul_(c).exp_()
        ctx.save_for_backward(offset, phi)
        ctx.c, ctx.x_dtype = c, x.dtype
        return phi

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        offset, phi = ctx.saved_tensors
        slope = (grad * phi).mul_(offset).mul_(2 * ctx.c)  # d out / d x_i, per centre
        grad_x = slope.sum(-1).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        grad_centers = -slope.sum((0, 1)) if ctx.needs_input_grad[1] else None
        return grad_x, grad_centers, None


@register_unit("rbf")
class RBFUnit(nn.Module):
    """`y = b + U base(x) + W vec(exp(-((x_i - c_j) / h)^2))`: `(..., d_in) -> (..., d_out)`.

    Options: `n_centers` (8) centres `c` evenly spaced over `grid_range` ([-2, 2], shared by
    every input, FastKAN's choice), fixed or `learnable_centers`; `width` the Gaussians' `h`
    (default: the centre spacing); `base` the base branch's activation ("silu", "none" drops
    the branch). `W` has `d_in * n_centers` columns, so the basis is contracted in one matmul.
    """

    nonlinear = True

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, n_centers: int = 8,
                 grid_range: tuple[float, float] | list[float] = (-2.0, 2.0),
                 width: float | None = None, learnable_centers: bool = False,
                 base: str | None = "silu") -> None:
        super().__init__()
        self.check_options(dict(bias=bias, n_centers=n_centers, grid_range=grid_range,
                                width=width, learnable_centers=learnable_centers, base=base))
        self.d_in, self.d_out, self.n_centers = d_in, d_out, n_centers
        low, high = float(grid_range[0]), float(grid_range[1])
        centers = torch.linspace(low, high, n_centers)
        if learnable_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)
        h = width if width is not None else (high - low) / max(n_centers - 1, 1)
        self.neg_inv_h2 = -1.0 / (h * h)
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

    def basis(self, x: Tensor) -> Tensor:
        """Gaussian bases `(n, d_in) -> (n, d_in, n_centers)`."""
        if torch.is_grad_enabled() and (x.requires_grad or self.centers.requires_grad):
            return _Gaussians.apply(x, self.centers, self.neg_inv_h2)
        d = x.unsqueeze(-1) - self.centers
        return d.mul_(d).mul_(self.neg_inv_h2).exp_()

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.d_in)
        bases = self.basis(x).reshape(x.shape[0], -1)
        if self.base is None:
            out = F.linear(bases, self.rbf_weight, self.bias)
        else:
            out = torch.addmm(self.base(self.base_act(x)), bases, self.rbf_weight.t())
        return out.reshape(*lead, self.d_out)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, n_centers={self.n_centers}, "
                f"learnable_centers={isinstance(self.centers, nn.Parameter)}")
