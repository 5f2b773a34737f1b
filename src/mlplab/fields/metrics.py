"""Quality of a reconstructed signal: PSNR (closed form) and SSIM (scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def mse_to_psnr(mse: float, value_range: float = 1.0) -> float:
    """`10 log10(range^2 / mse)` in dB (inf for a perfect fit)."""
    if mse <= 0:
        return math.inf
    return 10.0 * math.log10(value_range * value_range / mse)


def psnr(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, value_range: float = 1.0,
         *, clip: bool = True) -> float:
    """PSNR of `pred` against `target` (any equal shapes), predictions clipped to the signal's
    nominal range first (`[0, 1]` images, `[-1, 1]` audio) unless `clip=False`."""
    p = torch.as_tensor(pred, dtype=torch.float64)
    t = torch.as_tensor(target, dtype=torch.float64)
    if clip:
        low = 0.0 if value_range == 1.0 else -value_range / 2
        p = p.clamp(low, low + value_range)
    return mse_to_psnr(float(((p - t) ** 2).mean()), value_range)


def ssim(pred: np.ndarray, target: np.ndarray, value_range: float = 1.0) -> float:
    """Structural similarity of two images `(H, W, C)` (`skimage.metrics`), predictions
    clipped like `psnr`; NaN for 1-D signals."""
    if pred.ndim != 3 or min(pred.shape[:2]) < 7:
        return float("nan")
    from skimage.metrics import structural_similarity

    low = 0.0 if value_range == 1.0 else -value_range / 2
    p = np.clip(np.asarray(pred, dtype=np.float64), low, low + value_range)
    return float(structural_similarity(p, np.asarray(target, dtype=np.float64),
                                       channel_axis=2, data_range=value_range))
