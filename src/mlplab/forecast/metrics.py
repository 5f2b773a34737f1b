"""Point-forecast metrics on the original scale: MAE, MSE, MASE, sMAPE.

Arrays are `(n_windows, h, C)` forecasts and truths of one series (or any matching shapes).
MASE divides the MAE by the in-sample MAE of the seasonal naive forecast (lag `season`) on the
series' training part (Hyndman & Koehler, 2006); sMAPE is in percent, `200 |y - f| / (|y| + |f|)`
(0 where both are 0), as in the M4 competition.
"""

from __future__ import annotations

import numpy as np

METRICS = ("mae", "mse", "mase", "smape")


def mae(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean(np.abs(y - f)))


def mse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean((y - f) ** 2))


def smape(y: np.ndarray, f: np.ndarray) -> float:
    denom = np.abs(y) + np.abs(f)
    ratio = np.divide(np.abs(y - f), denom, out=np.zeros_like(denom, dtype=float),
                      where=denom > 0)
    return float(200.0 * np.mean(ratio))


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """Per-channel in-sample seasonal-naive MAE of `train (T, C)`; lag 1 when too short."""
    lag = season if len(train) > season else 1
    scale = np.mean(np.abs(train[lag:] - train[:-lag]), axis=0)
    return np.where(scale > 0, scale, 1.0)


def mase(y: np.ndarray, f: np.ndarray, scale: np.ndarray) -> float:
    """MAE per channel divided by `scale (C,)`, averaged over channels."""
    per_channel = np.mean(np.abs(y - f).reshape(-1, y.shape[-1]), axis=0) / scale
    return float(np.mean(per_channel))


def score(y: np.ndarray, f: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """All four metrics for truths `y` and forecasts `f` `(n, h, C)`."""
    return {"mae": mae(y, f), "mse": mse(y, f), "mase": mase(y, f, scale), "smape": smape(y, f)}
