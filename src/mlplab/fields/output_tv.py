"""Total variation of a field's output: a training penalty that makes sparse fits interpolate.

A model trained on every second pixel is free between its samples; natural images are
piecewise smooth, so penalising how much the *output* changes over one sample spacing at
random coordinates fills the gaps the way the image would (the prior of TV inpainting),
where a penalty on the encoding's tables (`smoothness`) only reaches their vertices.

Each training step draws `points` coordinates `x` uniformly in the domain (from a generator
seeded by the run's seed and the step: a resumed run draws the same ones) and evaluates the
model at `x` and at `x + h_k e_k` for every axis `k`, `h_k` the signal's sample spacing along
it (`2 / (n_k - 1)` in [-1, 1] coordinates). The penalty is
`weight * mean_k,x,c sqrt((f_c(x + h_k e_k) - f_c(x))^2 + eps^2)`: anisotropic TV, smoothed
at `eps` so its gradient is finite at zero.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

EPS = 1e-3


class OutputTotalVariation:
    """`inputs(step) -> (points * (d + 1), d)` coordinates; `penalty(out) -> scalar` from the
    model's outputs there, `(points * (d + 1), C)` or ensemble `(points * (d + 1), k, C)`."""

    def __init__(self, weight: float, points: int, shape: tuple[int, ...], seed: int) -> None:
        self.weight, self.points, self.seed = float(weight), int(points), int(seed)
        # coordinate columns run x then y (the grid's last axis first), as `Signal.coords`
        sizes = list(reversed(shape))
        self.spacing = torch.tensor([2.0 / max(n - 1, 1) for n in sizes])
        self.d = len(sizes)

    def generator(self, step: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, step, 0x7F]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state) & (2**63 - 1))

    def inputs(self, step: int) -> Tensor:
        """The step's coordinates: `points` draws `x`, then `x + h_k e_k` for each axis."""
        u = torch.rand(self.points, self.d, generator=self.generator(step))
        x = u * (2.0 - self.spacing) - 1.0  # x + h_k stays inside [-1, 1]
        return torch.cat([x, *(x + step_k for step_k in torch.diag(self.spacing))])

    def penalty(self, out: Tensor) -> Tensor:
        out = out.float()
        base, *shifted = out.split(self.points)
        diffs = torch.stack([s - base for s in shifted])
        return self.weight * (diffs.square() + EPS ** 2).sqrt().mean()
