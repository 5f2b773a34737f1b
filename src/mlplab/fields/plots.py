"""Pictures of a field fit: reconstruction PNG, error map, PSNR against seconds."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.train.checkpoint import atomic_write_bytes


def _write_png(path: Path, save: Any) -> None:
    """`save(file_object)` writes PNG bytes; they land at `path` atomically."""
    buf = io.BytesIO()
    save(buf)
    atomic_write_bytes(path, buf.getvalue())


def save_image(values: np.ndarray, path: str | Path) -> Path:
    """An image `(H, W, C)` in [0, 1] as an 8-bit PNG (gray for one channel)."""
    from PIL import Image

    path = Path(path)
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    img = (v * 255.0 + 0.5).astype(np.uint8)
    img = img[:, :, 0] if img.shape[2] == 1 else img
    _write_png(path, lambda f: Image.fromarray(img).save(f, format="PNG"))
    return path


def save_error_map(pred: np.ndarray, target: np.ndarray, path: str | Path,
                   title: str = "") -> Path:
    """`|pred - target|` (channel mean) as a colour-mapped PNG with a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    err = np.abs(np.clip(pred, 0, 1) - target).mean(axis=-1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=110)
    im = ax.imshow(err, cmap="magma", vmin=0.0, vmax=max(float(err.max()), 1e-6))
    ax.set_axis_off()
    ax.set_title(title or "absolute error", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    _write_png(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def save_signal_plot(pred: np.ndarray, target: np.ndarray, path: str | Path) -> Path:
    """A 1-D reconstruction over its target (first 1,000 samples at most)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n = min(len(target), 1000)
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=110)
    ax.plot(target[:n, 0], lw=1.0, label="target")
    ax.plot(pred[:n, 0], lw=0.8, label="fit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _write_png(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def save_psnr_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]],
                     path: str | Path, *, title: str = "", marks: Sequence[float] = (),
                     xlabel: str = "wall seconds (training)") -> Path:
    """PSNR (dB) against wall seconds, one line per name: `{name: (seconds, psnr)}`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, (secs, values) in curves.items():
        ax.plot(list(secs), list(values), lw=1.4, label=name)
    for mark in marks:
        ax.axhline(mark, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _write_png(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path
