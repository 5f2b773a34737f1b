"""Estimator overhead: `mlplab.MLPClassifier.fit` on tiny data vs a raw PyTorch loop doing the
same epochs (same architecture, batch size, optimizer and number of training rows)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits, load_iris
from torch import nn

from mlplab.estimators import MLPClassifier

EPOCHS, BATCH, WIDTH, BLOCKS, LR = 30, 64, 128, 2, 2e-3


def raw_loop_seconds(x: np.ndarray, y: np.ndarray, *, epochs: int, n_train: int) -> float:
    """A minimal loop: tensors in memory, randperm batches, ReLU MLP, AdamW (default impl)."""
    start = time.perf_counter()
    xt = torch.as_tensor((x - x.mean(0)) / (x.std(0) + 1e-8), dtype=torch.float32)[:n_train]
    yt = torch.as_tensor(y)[:n_train]
    sizes = [xt.shape[1]] + [WIDTH] * BLOCKS
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.1)]
    model = nn.Sequential(*layers, nn.Linear(WIDTH, int(yt.max()) + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=3e-4)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = perm[i: i + BATCH]
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def estimator_seconds(x: np.ndarray, y: np.ndarray, *, epochs: int) -> tuple[float, int]:
    """Wall time of `MLPClassifier(...).fit(x, y)` for exactly `epochs` epochs, and its rows."""
    clf = MLPClassifier(arch="mlp", n_blocks=BLOCKS, d_block=WIDTH, batch_size=BATCH,
                        max_epochs=epochs, patience=None, lr=LR, random_state=0)
    start = time.perf_counter()
    clf.fit(x, y)
    seconds = time.perf_counter() - start
    return seconds, round(len(x) * (1 - clf.validation_fraction))


def measure_overhead(*, repeats: int = 3, epochs: int = EPOCHS,
                     log: Callable[[str], None] = print) -> list[dict]:
    """Best-of-`repeats` fit time on iris and digits: estimator vs raw loop, and the ratio."""
    rows = []
    for name, loader in (("iris", load_iris), ("digits", load_digits)):
        x, y = loader(return_X_y=True)
        estimator_seconds(x, y, epochs=2)  # warm-up: imports and first-call initialisation
        raw_loop_seconds(x, y, epochs=2, n_train=len(x))
        est, raw = float("inf"), float("inf")
        for _ in range(repeats):
            seconds, n_train = estimator_seconds(x, y, epochs=epochs)
            est = min(est, seconds)
            raw = min(raw, raw_loop_seconds(x, y, epochs=epochs, n_train=n_train))
        rows.append({"data": name, "rows": len(x), "epochs": epochs, "estimator_s": est,
                     "raw_loop_s": raw, "ratio": est / raw})
        log(f"  {name:7s} estimator {est:6.3f}s  raw loop {raw:6.3f}s  ratio {est / raw:5.2f}x")
    return rows
