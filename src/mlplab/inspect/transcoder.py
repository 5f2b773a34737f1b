"""Transcoders: a wide sparse MLP trained to do one block's job, whose latents can be read.

`Transcoder(d_in, d_out, expansion, k)`: `z = TopK(ReLU(W_enc x̂ + b_enc))` with
`expansion * d_in` latents of which at most `k` are nonzero per row (L0 <= k) — or, with
`l1 > 0`, ReLU latents under an L1 penalty (L0 is then whatever the penalty leaves) — and
`y = W_dec z + b_dec (+ W_skip x̂)`, `x̂` the input standardised by fixed statistics of the
training inputs; the skip starts at the least-squares linear fit, the latents model the rest. It is fit to a block's map from its input (the residual stream) to its
branch output (`block(x) - x`; the whole output for a `plain` layer) on the block's inputs
over the training rows, through the one trainer (`mlplab.train.trainer.Trainer`, with the
`Reconstruction` task below), early-stopped on the validation rows.

Reported (`TranscoderResult`): held-out L0, fraction of variance unexplained
(`fvu = Σ‖y - ŷ‖² / Σ‖y - ȳ‖²`; variance explained `1 - fvu`), the task's metrics with the
block replaced by `x + transcoder(x)`, dead latents (active on no training row), and the
top-activating held-out rows of the most used latents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.data.dataset import Split
from mlplab.errors import SpecError
from mlplab.inspect.capture import BlockSite, Recorder, batches, pick_block, run_model
from mlplab.spec import TrainSpec
from mlplab.tasks import Task

MAX_ROWS = 20000


class Transcoder(nn.Module):
    """`(batch, d_in) -> (batch, d_out)` through `expansion * d_in` sparse latents: TopK
    (at most `k` active per row), or with `l1 > 0` ReLU latents under an L1 penalty
    `l1 * Σ_j |z_j| ‖W_dec[:, j]‖` (an auxiliary loss, `mlplab.nn.aux_loss`) instead."""

    def __init__(self, d_in: int, d_out: int, *, expansion: int = 8, k: int = 32,
                 skip: bool = True, l1: float = 0.0) -> None:
        super().__init__()
        latents = expansion * d_in
        if not 1 <= k <= latents:
            raise SpecError(f"transcoder k: expected 1..{latents} (expansion x width), got {k}")
        if l1 < 0:
            raise SpecError(f"transcoder l1: expected a coefficient >= 0, got {l1}")
        self.k, self.l1 = k, float(l1)
        self._aux: Tensor | None = None
        self.encoder = nn.Linear(d_in, latents)
        self.decoder = nn.Linear(latents, d_out)
        self.skip = nn.Linear(d_in, d_out, bias=False) if skip else None
        self.register_buffer("x_mean", torch.zeros(d_in))
        self.register_buffer("x_scale", torch.ones(()))
        with torch.no_grad():  # unit-norm encoder rows; latents start silent (decoder at 0)
            w = torch.randn(latents, d_in)
            self.encoder.weight.copy_(w / w.norm(dim=1, keepdim=True))
            self.encoder.bias.zero_()
            self.decoder.weight.zero_()
            if self.skip is not None:
                self.skip.weight.zero_()

    @property
    def latents(self) -> int:
        return self.encoder.out_features

    def fit_input_stats(self, x: Tensor, y: Tensor) -> None:
        """Centre and scale inputs by the training rows; start the decoder bias at ȳ and the
        skip connection at the least-squares linear map (the latents then learn the rest)."""
        with torch.no_grad():
            self.x_mean.copy_(x.mean(0))
            self.x_scale.copy_((x - x.mean(0)).pow(2).sum(1).mean().sqrt().clamp_min(1e-8)
                               / math.sqrt(x.shape[1]))
            self.decoder.bias.copy_(y.mean(0))
            if self.skip is not None:
                xs = ((x - self.x_mean) / self.x_scale).double()
                fit = torch.linalg.lstsq(xs, (y - y.mean(0)).double(), driver="gelsd")
                self.skip.weight.copy_(fit.solution.T.float())

    def encode(self, x: Tensor) -> Tensor:
        """Latent activations `(batch, latents)`, at most `k` nonzero per row."""
        pre = self.encoder((x - self.x_mean) / self.x_scale)
        if self.l1 > 0:
            return F.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))

    def aux_loss(self) -> Tensor | None:
        return self._aux

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        z = self.encode(x)
        self._aux = (self.l1 * (z * self.decoder.weight.norm(dim=0)).sum(-1).mean()
                     if self.l1 > 0 and self.training else None)
        y = self.decoder(z)
        if self.skip is not None:
            y = y + self.skip((x - self.x_mean) / self.x_scale)
        return y


class Reconstruction(Task):
    """Regress a `(batch, d)` target: loss = MSE / the training target's variance per row (so
    1 = predicting the mean); metrics `fvu` (the default monitor) and `mse`."""

    monitor = "fvu"

    def __init__(self, d: int, variance: float) -> None:
        self.d_out = d
        self.variance = max(variance, 1e-12)
        self.higher_is_better = {"fvu": False, "mse": False, "loss": False}

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        return (out - y).pow(2).sum(-1).mean() / self.variance

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        out, y = out.double(), y.double()
        sq = (out - y).pow(2).sum()
        return {"loss": float(sq / len(y) / self.variance), "mse": float(sq / y.numel()),
                "fvu": float(sq / (y - y.mean(0)).pow(2).sum().clamp_min(1e-300))}


@dataclass
class _Splits:
    train: Split
    val: Split
    test: Split


def block_io(model: nn.Module, site: BlockSite, split: Any, rows: int = MAX_ROWS
             ) -> tuple[Tensor, Tensor]:
    """The block's inputs `(n, d)` and targets `(n, d)` (branch outputs) on a split."""
    with Recorder([site], ("inputs", "outputs")) as rec:
        run_model(model, batches(split, rows=rows))
    x, out = rec.get("inputs", site.number), rec.get("outputs", site.number)
    if x.ndim != 2:
        raise SpecError(f"transcoder: {site.label} sees {tuple(x.shape[1:])}-shaped rows; "
                        "transcoders need a flat (batch, d) stream (no ensemble)")
    return x, (out - x if x.shape == out.shape else out)


@dataclass
class TranscoderResult:
    block: int
    expansion: int
    k: int
    latents: int
    l0: float
    fvu: float
    fvu_train: float
    dead: int
    task_metrics: dict[str, float]
    intact_metrics: dict[str, float]
    epochs: int
    train_seconds: float
    transcoder: Transcoder = field(repr=False)
    top_latents: list[int] = field(default_factory=list)
    top_examples: list[list[int]] = field(default_factory=list)  # held-out row indices
    l1: float = 0.0  # > 0: L1-penalised latents instead of TopK

    @property
    def sparsity(self) -> str:
        return f"L1 {self.l1:g}" if self.l1 > 0 else f"TopK k = {self.k}"

    @property
    def variance_explained(self) -> float:
        return 1.0 - self.fvu

    def row(self) -> dict[str, Any]:
        return {"block": self.block, "expansion": self.expansion, "sparsity": self.sparsity,
                "latents": self.latents, "L0": self.l0, "variance_explained": 1 - self.fvu,
                "fvu": self.fvu, "fvu_train": self.fvu_train, "dead": self.dead,
                "dead_frac": self.dead / self.latents, "epochs": self.epochs}


def _replaced(site: BlockSite, tc: Transcoder):
    def hook(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> Tensor:
        x = args[0]
        y = tc(x)
        return x + y if x.shape == out.shape else y
    return hook


def train_transcoder(model: nn.Module, task: Any, data: Any, *, block: int,
                     expansion: int = 8, k: int = 32, skip: bool = True, l1: float = 0.0,
                     resample: bool = False, epochs: int = 300,
                     lr: float = 1e-3, batch_size: int = 256, patience: int | None = 40,
                     seed: int = 0, top_latents: int = 8, top_examples: int = 8
                     ) -> TranscoderResult:
    """Fit a transcoder to block `block` (1-based) of `model` on `data` (a `Dataset`: its
    train, val and test splits) and report how well it replaces the block (see module doc).
    `resample`: give dead latents new directions during the first half of training
    (`mlplab.inspect.resample.ResampleDead`)."""
    from mlplab.inspect.resample import ResampleDead
    from mlplab.train.trainer import Trainer

    site = pick_block(model, block)
    io = {name: block_io(model, site, getattr(data, name)) for name in ("train", "val", "test")}
    x, y = io["train"]
    torch.manual_seed(seed)
    tc = Transcoder(x.shape[1], y.shape[1], expansion=expansion, k=k, skip=skip, l1=l1)
    tc.fit_input_stats(x, y)
    variance = float((y - y.mean(0)).pow(2).sum(1).mean())
    splits = _Splits(*(Split(a, None, b) for a, b in (io["train"], io["val"], io["test"])))
    spec = TrainSpec(lr=lr, weight_decay=0.0, batch_size=batch_size, epochs=epochs,
                     patience=patience, warmup_epochs=min(5.0, epochs / 10), grad_clip=None,
                     device="cpu", precision="fp32")  # where the captures are
    hooks = [ResampleDead(seed=seed)] if resample else []
    trainer = Trainer(tc, Reconstruction(y.shape[1], variance), splits, spec, seed=seed,
                      quiet=True, hooks=hooks)
    state = trainer.fit()
    tc.eval()
    with torch.no_grad():
        z_train = tc.encode(x)
        xt, yt = io["test"]
        z_test = tc.encode(xt)
        fvu = Reconstruction(y.shape[1], variance).metrics(tc(xt), yt)["fvu"]
        fvu_train = Reconstruction(y.shape[1], variance).metrics(tc(x), y)["fvu"]
    intact = _task_metrics(model, task, data.test)
    handle = site.block.register_forward_hook(_replaced(site, tc))
    try:
        replaced = _task_metrics(model, task, data.test)
    finally:
        handle.remove()
    freq = (z_train > 0).float().mean(0)
    used = freq.argsort(descending=True)[:top_latents].tolist()
    examples = [z_test[:, j].argsort(descending=True)[:top_examples].tolist() for j in used]
    return TranscoderResult(
        block, expansion, k, tc.latents, float((z_test > 0).sum(1).float().mean()), fvu,
        fvu_train, int((freq == 0).sum()), replaced, intact, state.epoch,
        state.train_seconds, tc, used, examples, l1)


def _task_metrics(model: nn.Module, task: Any, split: Any) -> dict[str, float]:
    out = torch.cat(run_model(model, batches(split)))
    return {k: float(v) for k, v in task.metrics(out, split.y).items()}


def latent_frequency(tc: Transcoder, x: Tensor) -> np.ndarray:
    """Share of rows each latent is active on, `(latents,)`."""
    with torch.no_grad():
        return (tc.encode(x) > 0).float().mean(0).numpy()
