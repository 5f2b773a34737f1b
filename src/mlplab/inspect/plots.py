"""The inspect report's matplotlib figures, each returned as PNG bytes."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlplab.inspect.stats import BlockStats, frequency_histogram  # noqa: E402
from mlplab.lab.plots import png as lab_png  # noqa: E402


def png(fig: Any) -> bytes:
    return lab_png(fig, dpi=100)


def sparsity_plot(stats: list[BlockStats]) -> bytes:
    """Left: fraction of units active per example, per block; right: histogram of units'
    activation frequencies (log10), dead units noted in the legend."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    labels = [f"{s.number}\n{s.kind}" for s in stats]
    left.bar(labels, [s.frac_active for s in stats], color="C0", label="mean")
    left.plot(labels, [s.frac_active_median for s in stats], "k_", ms=20, label="median")
    left.set_ylim(0, 1)
    left.set_ylabel("fraction of hidden units active")
    left.set_xlabel("block")
    left.legend(fontsize=8)
    left.grid(alpha=0.3, axis="y")
    for s in stats:
        counts, edges = frequency_histogram(s)
        right.stairs(counts, edges, label=f"block {s.number} ({s.dead} dead of {s.units})")
    right.set_xlabel("log10 activation frequency (share of examples a unit is active on)")
    right.set_ylabel("units")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    return png(fig)


def tracked_plot(tracked: pd.DataFrame) -> bytes:
    """Fraction active and dead units against the epoch, one line per block."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    for block, part in tracked.groupby("block"):
        kind = part["kind"].iloc[0]
        left.plot(part["epoch"], part["frac_active"], "o-", ms=3, label=f"block {block} ({kind})")
        right.plot(part["epoch"], part["dead_frac"], "o-", ms=3, label=f"block {block}")
    left.set_ylabel("fraction of hidden units active (probe batch)")
    right.set_ylabel("share of dead units (probe batch)")
    for ax in (left, right):
        ax.set_xlabel("epoch (0 = at initialisation)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return png(fig)


def ablation_plot(frame: pd.DataFrame) -> bytes:
    """Loss increase per block under each ablation mode (grouped bars)."""
    part = frame[frame["block"] > 0]
    modes = list(dict.fromkeys(part["mode"]))
    blocks = sorted(part["block"].unique())
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(blocks) + 3), 3.8), layout="constrained")
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        values = [part[(part["block"] == b) & (part["mode"] == mode)]["delta_loss"].iloc[0]
                  for b in blocks]
        ax.bar(np.arange(len(blocks)) + i * width, values, width, label=mode)
    ax.set_xticks(np.arange(len(blocks)) + width * (len(modes) - 1) / 2,
                  [f"block {b}" for b in blocks])
    ax.set_ylabel("loss increase over the intact model")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return png(fig)


def probes_plot(frame: pd.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(frame["block"], frame["score"], "o-")
    ax.set_xticks(frame["block"], ["input" if b == 0 else f"block {b}" for b in frame["block"]])
    ax.set_ylabel(f"held-out {frame['score_name'].iloc[0]} of a linear probe")
    ax.grid(alpha=0.3)
    return png(fig)


def _draw(ax: Any, vector: np.ndarray, image_shape: tuple[int, ...] | None,
          names: list[str] | None) -> None:
    if image_shape is not None and math.prod(image_shape) == vector.size:
        img = vector.reshape(image_shape)
        img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img
        if img.ndim == 3:  # (C, H, W) -> show the channel mean, signed
            img = img.mean(0)
        lim = float(np.abs(img).max()) or 1.0
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        labels = names if names is not None and len(names) == vector.size else \
            [f"x{i}" for i in range(vector.size)]
        order = np.argsort(-np.abs(vector))[:12]
        ax.barh([labels[i] for i in order][::-1], vector[order][::-1],
                color=["C3" if v > 0 else "C0" for v in vector[order][::-1]])
        ax.tick_params(labelsize=6)


def eigen_plot(rows: list[tuple[str, list[tuple[float, np.ndarray]]]],
               image_shape: tuple[int, ...] | None, names: list[str] | None) -> bytes:
    """One row per output direction: its top positive then top negative eigenvectors in
    input space, titled with their eigenvalues."""
    ncols = max(len(r[1]) for r in rows)
    size = 1.3 if image_shape is not None else 2.2
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    for r, (label, items) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(items):
                ax.axis("off")
                continue
            value, vector = items[c]
            _draw(ax, vector, image_shape, names)
            ax.set_title(f"{value:+.2g}", fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=8)
    return png(fig)


def examples_plot(rows: list[tuple[str, np.ndarray]], image_shape: tuple[int, ...]) -> bytes:
    """One row per latent: its top-activating examples as images."""
    ncols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.1 * ncols, 1.1 * len(rows) + 0.3),
                             squeeze=False, layout="constrained")
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                img = images[c].reshape(image_shape)
                img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img
                ax.imshow(img if img.ndim == 2 else np.moveaxis(img, 0, -1), cmap="gray_r")
        axes[r][0].set_ylabel(label, fontsize=7)
    return png(fig)
