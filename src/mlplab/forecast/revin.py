"""RevIN: reversible instance normalisation (Kim et al., 2022), as TSMixer uses it.

`normalize` standardises each window by its own per-channel mean and standard deviation over
time, then applies a learned affine map; `denormalize` undoes both on the model's output,
using the statistics of the first `n_out` channels (the targets).
Shapes: `(batch, time, C) -> (batch, time, C)`; outputs `(batch, h, n_out)`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RevIN(nn.Module):
    """Instance normalisation with a learned per-channel affine, undone after the head."""

    def __init__(self, channels: int, *, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def normalize(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """`x (batch, time, C)` -> normalised `x` and its `(mean, std)`, each `(batch, 1, C)`."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        z = (x - mean) / std
        if self.affine:
            z = z * self.weight + self.bias
        return z, (mean, std)

    def denormalize(self, z: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        """Undo `normalize` on `z (batch, h, n_out)` with the first `n_out` channels' stats."""
        mean, std = stats
        n = z.shape[-1]
        if self.affine:
            z = (z - self.bias[:n]) / (self.weight[:n] + self.eps * self.eps)
        return z * std[..., :n] + mean[..., :n]
