"""Coordinate encodings for neural fields: `(batch, d_coord) -> (batch, d_out)`.

Coordinates are expected in `[-1, 1]`. `coords` passes them through (the plain coordinate MLP,
which is blurry: spectral bias); `fourier` is Tancik et al.'s Gaussian Fourier feature map
`[cos(2 pi B x), sin(2 pi B x)]`, `B ~ N(0, sigma^2)`; `posenc` the log-spaced positional
encoding `cos/sin(2 pi sigma^(j/m) x_k)`, j = 0..m-1; `siren` SIREN's first layer
`sin(omega_0 (W x + b))` with `W ~ U(-1/d, 1/d)` (hidden layers are the `siren` unit,
`mlplab.nn.siren`). Grid encodings (hash, dense, RBF grids) are in `mlplab.nn.hashgrid`.
Every encoding has `d_out` and takes the spec's seed through torch's global generator.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.nn import options as opt
from mlplab.nn.registry import register_adapter


def _check_coords(x: Tensor, d_in: int) -> None:
    if x.ndim != 2 or x.shape[1] != d_in:
        raise ValueError(f"expected coordinates (batch, {d_in}), got {tuple(x.shape)}")


@register_adapter("coords")
class CoordinateInput(nn.Module):
    """No encoding: `(batch, d_in) -> (batch, d_in)`."""

    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.d_in = self.d_out = d_in

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        return x


@register_adapter("fourier")
class FourierFeatures(nn.Module):
    """Gaussian Fourier features: `(batch, d_in) -> (batch, 2 * n_frequencies)`.

    `B (n_frequencies, d_in) ~ N(0, sigma^2)` is a buffer (fixed, saved with the model) unless
    `learnable`; the output is `[cos(2 pi x B^T), sin(2 pi x B^T)]`. `sigma` sets the
    bandwidth: too small is blurry, too large is noisy; `scale = "fresh"` picks it
    (`mlplab.fields.fresh`). With coordinates in [-1, 1], sigma here is half the value a
    [0, 1]-coordinate paper reports for the same image.
    """

    scale_option = "sigma"

    def __init__(self, d_in: int, *, n_frequencies: int = 256, sigma: float = 10.0,
                 learnable: bool = False) -> None:
        super().__init__()
        self.check_options(dict(n_frequencies=n_frequencies, sigma=sigma, learnable=learnable))
        self.d_in, self.sigma = d_in, float(sigma)
        freqs = torch.randn(n_frequencies, d_in) * sigma
        if learnable:
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)
        self.d_out = 2 * n_frequencies

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_frequencies", low=1)
        opt.check_float(options, "sigma", low=0.0)
        opt.check_bool(options, "learnable")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        proj = (2 * math.pi) * (x.to(self.freqs.dtype) @ self.freqs.t())
        return torch.cat([proj.cos(), proj.sin()], dim=-1)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_frequencies={self.freqs.shape[0]}, sigma={self.sigma:g}"


@register_adapter("posenc")
class PositionalEncoding(nn.Module):
    """Log-spaced positional encoding: `(batch, d_in) -> (batch, 2 * d_in * n_frequencies)`
    (`+ d_in` with `include_input`).

    Frequencies `sigma^(j / n_frequencies)`, j = 0..n-1 (Tancik et al.'s "positional
    encoding" baseline), each axis on its own: `[cos(2 pi f_j x_k), sin(2 pi f_j x_k)]`.
    """

    scale_option = "sigma"

    def __init__(self, d_in: int, *, n_frequencies: int = 64, sigma: float = 10.0,
                 include_input: bool = False) -> None:
        super().__init__()
        self.check_options(dict(n_frequencies=n_frequencies, sigma=sigma,
                                include_input=include_input))
        self.d_in, self.sigma, self.include_input = d_in, float(sigma), include_input
        exps = torch.arange(n_frequencies, dtype=torch.float32) / n_frequencies
        self.register_buffer("freqs", float(sigma) ** exps, persistent=False)
        self.d_out = 2 * d_in * n_frequencies + (d_in if include_input else 0)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_frequencies", low=1)
        opt.check_float(options, "sigma", low=0.0, open_low=True)
        opt.check_bool(options, "include_input")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        proj = (2 * math.pi) * (x.float().unsqueeze(-1) * self.freqs).flatten(1)
        parts = [proj.cos(), proj.sin()]
        return torch.cat([x.float(), *parts] if self.include_input else parts, dim=-1)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, n_frequencies={self.freqs.numel()}, sigma={self.sigma:g}, "
                f"include_input={self.include_input}")


@register_adapter("siren")
class SirenInput(nn.Module):
    """SIREN's first layer: `sin(omega_0 (W x + b))`, `(batch, d_in) -> (batch, n_features)`.

    `W ~ U(-1/d_in, 1/d_in)` (SIREN's first-layer rule), bias as `nn.Linear`; `omega_0`
    (30) scales the input frequencies, `scale = "fresh"` picks it. Follow it with `siren`
    units (`model.unit = "siren"`, `model.block = "plain"`, `model.norm = "none"`).
    """

    scale_option = "omega_0"

    def __init__(self, d_in: int, *, n_features: int = 256, omega_0: float = 30.0) -> None:
        super().__init__()
        self.check_options(dict(n_features=n_features, omega_0=omega_0))
        self.d_in, self.omega_0 = d_in, float(omega_0)
        self.linear = nn.Linear(d_in, n_features)
        with torch.no_grad():
            self.linear.weight.uniform_(-1.0 / d_in, 1.0 / d_in)
        self.d_out = n_features

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_features", low=1)
        opt.check_float(options, "omega_0", low=0.0, open_low=True)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        return torch.sin(self.omega_0 * self.linear(x.to(self.linear.weight.dtype)))

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_features={self.d_out}, omega_0={self.omega_0:g}"
