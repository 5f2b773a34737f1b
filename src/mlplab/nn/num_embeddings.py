"""Embeddings for numeric features (rtdl-num-embeddings ideas): PLR and PLE.

Both map `(batch, n_features) -> (batch, n_features * d_embedding)`, one `d_embedding`-wide
vector per feature, concatenated.

- `PeriodicEmbedding` (PLR): `ReLU(Linear([cos(2π c x), sin(2π c x)]))` with trainable
  frequencies `c` initialised from N(0, sigma²) truncated at 3 sigma; one linear per feature,
  or one shared linear (`lite`).
- `PiecewiseLinearEmbedding` (PLE): the piecewise-linear encoding of `x` over fixed bin
  edges (computed on the training rows, see `mlplab.data.bins`), then a per-feature linear
  map; a per-feature linear term of the raw value is added, and the PLE weights start at zero
  so the embedding starts as a plain linear embedding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PerFeatureLinear(nn.Module):
    """A separate linear map per feature: `(batch, n, d_in) -> (batch, n, d_out)`."""

    def __init__(self, n: int, d_in: int, d_out: int, *, bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d_out).uniform_(-bound, bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        y = torch.einsum("bni,nio->bno", x, self.weight)
        return y + self.bias if self.bias is not None else y


class PeriodicEmbedding(nn.Module):
    """PLR: periodic features with trainable frequencies, a linear map, ReLU.

    Shapes: `(batch, n_features) -> (batch, n_features * d_embedding)`.
    """

    def __init__(self, n_features: int, d_embedding: int = 24, *, n_frequencies: int = 48,
                 sigma: float = 0.01, lite: bool = False) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(n_features, n_frequencies), 0.0, sigma,
                                  -3 * sigma, 3 * sigma))
        self.linear: nn.Module = (nn.Linear(2 * n_frequencies, d_embedding) if lite else
                                  PerFeatureLinear(n_features, 2 * n_frequencies, d_embedding))
        self.d_embedding = d_embedding
        self.d_out = n_features * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        angle = 2 * math.pi * self.frequencies * x.unsqueeze(-1)
        periodic = torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)
        return torch.relu(self.linear(periodic)).flatten(-2)


class PiecewiseLinearEncoding(nn.Module):
    """Fixed piecewise-linear encoding over per-feature bin edges (no parameters).

    For edges `e_0 < ... < e_m` component `j` is `(x - e_j) / (e_{j+1} - e_j)` clipped to
    [0, 1], except that the first bin is not clipped below and the last not above (so values
    outside the training range extrapolate). Features with fewer bins are zero-padded.
    Shapes: `(batch, n_features) -> (batch, n_features, max_bins)`.
    """

    scale: Tensor
    shift: Tensor
    low: Tensor
    high: Tensor

    def __init__(self, bins: list[list[float]]) -> None:
        super().__init__()
        if not bins or any(len(edges) < 2 for edges in bins):
            raise ValueError("every feature needs at least 2 bin edges")
        n, m = len(bins), max(len(edges) - 1 for edges in bins)
        scale, shift = torch.zeros(n, m), torch.zeros(n, m)
        low, high = torch.zeros(n, m), torch.zeros(n, m)
        for i, edges in enumerate(bins):
            e = torch.tensor(edges, dtype=torch.float64)
            if not bool((e.diff() > 0).all()):
                raise ValueError(f"bin edges of feature {i} must be strictly increasing")
            width = e.diff()
            nb = len(width)
            scale[i, :nb] = (1.0 / width).float()
            shift[i, :nb] = (-e[:-1] / width).float()
            high[i, :nb] = 1.0
            low[i, 0] = -math.inf
            high[i, nb - 1] = math.inf
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.max_bins = m

    def forward(self, x: Tensor) -> Tensor:
        t = x.unsqueeze(-1) * self.scale + self.shift
        return torch.minimum(torch.maximum(t, self.low), self.high)


class PiecewiseLinearEmbedding(nn.Module):
    """PLE: `linear(x) + PerFeatureLinear(encoding(x))`, zero-initialised PLE part.

    Shapes: `(batch, n_features) -> (batch, n_features * d_embedding)`.
    """

    def __init__(self, bins: list[list[float]], d_embedding: int = 16) -> None:
        super().__init__()
        n = len(bins)
        self.encoding = PiecewiseLinearEncoding(bins)
        bound = 1.0 / math.sqrt(d_embedding)
        self.linear_weight = nn.Parameter(torch.empty(n, d_embedding).uniform_(-bound, bound))
        self.linear_bias = nn.Parameter(torch.empty(n, d_embedding).uniform_(-bound, bound))
        self.ple = PerFeatureLinear(n, self.encoding.max_bins, d_embedding, bias=False)
        nn.init.zeros_(self.ple.weight)
        self.d_embedding = d_embedding
        self.d_out = n * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        linear = x.unsqueeze(-1) * self.linear_weight + self.linear_bias
        return (linear + self.ple(self.encoding(x))).flatten(-2)
