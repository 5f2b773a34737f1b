"""Resampling dead transcoder latents: an epoch hook of the one trainer.

Every `every` epochs during the first `until` share of training, the latents that fire on
no training row are given a new direction: a training row is drawn with probability
proportional to its squared reconstruction error; the latent's encoder row points along that
row's standardised input (at the mean norm of the live encoder rows) and its decoder column
along the row's error (at `scale` x the mean norm of the live decoder columns), encoder bias
zero, so it fires on inputs like the worst-reconstructed ones and starts by reducing their
error. The optimizer is reset afterwards (a simplification of "Towards Monosemanticity",
Bricken et al. 2023). Draws come from a generator seeded by the epoch: deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mlplab.train.hooks import Hook

if TYPE_CHECKING:
    from mlplab.train.trainer import Trainer


class ResampleDead(Hook):
    """Resample the dead latents of the trainer's `Transcoder` (see the module docstring);
    `resampled` counts the latents given a new direction."""

    def __init__(self, *, every: int = 10, until: float = 0.5, scale: float = 0.2,
                 seed: int = 0) -> None:
        self.every, self.until, self.scale, self.seed = every, until, scale, seed
        self.resampled = 0

    def on_epoch_end(self, trainer: Trainer) -> None:
        epoch = trainer.state.epoch
        if epoch % self.every or epoch > self.until * trainer.spec.epochs:
            return
        tc, split = trainer.model, trainer.data.train
        was_training = tc.training
        tc.eval()
        with torch.no_grad():
            z = tc.encode(split.x)
            dead = ((z > 0).sum(0) == 0).nonzero().flatten()
            if len(dead):
                error = split.y - tc(split.x)
                weight = error.pow(2).sum(1)
                gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                rows = torch.multinomial(weight / weight.sum(), len(dead), replacement=True,
                                         generator=gen)
                x_hat = (split.x[rows] - tc.x_mean) / tc.x_scale
                alive = torch.ones(tc.latents, dtype=torch.bool)
                alive[dead] = False
                enc_norm = tc.encoder.weight[alive].norm(dim=1).mean() if alive.any() else 1.0
                dec_norm = tc.decoder.weight[:, alive].norm(dim=0).mean() if alive.any() else 1.0
                directions = error[rows] / error[rows].norm(dim=1, keepdim=True).clamp_min(1e-12)
                tc.encoder.weight[dead] = (x_hat / x_hat.norm(dim=1, keepdim=True)
                                           .clamp_min(1e-12)) * enc_norm
                tc.encoder.bias[dead] = 0.0
                tc.decoder.weight[:, dead] = (directions * dec_norm * self.scale).T
        tc.train(was_training)
        if len(dead):
            self.resampled += len(dead)
            trainer.reset_optimizer()
