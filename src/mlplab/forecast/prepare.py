"""From checked series to standardised window tensors for the trainer, split in time order.

Each series' channels (targets, then exogenous) are standardised with the mean and standard
deviation of its training part only; forecasts are mapped back with the same statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mlplab.errors import DataError
from mlplab.forecast.data import Panel, Series
from mlplab.forecast.windows import SplitBounds, gather, origins, split_bounds

SPLITS = ("train", "val", "test")
MIN_STD = 1e-12  # a channel whose std is at most this is scaled by 1 (a constant series)


def default_sizes(n: int, h: int) -> tuple[int, int]:
    """Default `(val_size, test_size)` of a series of `n` steps: about 10% and 20% of it,
    in whole horizons, at least `h` each."""
    return max(h, n // 10 // h * h), max(h, n // 5 // h * h)


def series_stats(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel `(mean, std)` of `raw (T, C)`; a std <= `MIN_STD` becomes 1."""
    std = raw.std(axis=0)
    return raw.mean(axis=0), np.where(std > MIN_STD, std, 1.0)


@dataclass(frozen=True)
class WindowConfig:
    """Lookback, horizon, train stride, rolling-origin step of the test windows (`step`,
    default `h`: non-overlapping forecasts) and of the validation windows (`val_step`, default
    1: every origin, so early stopping and the restored epoch rest on as many validation
    forecasts as the validation steps allow; `None`: `step`), and held-out steps."""

    input_size: int
    h: int
    stride: int = 1
    step: int | None = None
    val_size: int = 0
    test_size: int = 0
    gap: int = 0
    val_step: int | None = 1

    def __post_init__(self) -> None:
        for name in ("input_size", "h", "stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("val_size", "test_size", "gap"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DataError(f"{name}: expected an integer >= 0, got {value!r}")
        for name in ("step", "val_step"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise DataError(f"{name}: expected a positive integer, got {value!r}")

    @property
    def eval_step(self) -> int:
        return self.step or self.h


@dataclass
class Windows:
    """Windows of one split: `x (n, L, C_in)`, `y (n, h, C_y)` standardised; `series (n,)`
    indexes `Prepared.panel.series`, `starts (n,)` are the origins (first target step)."""

    x: Tensor
    y: Tensor
    series: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


class Prepared:
    """A panel with its splits and scalers; `windows(split)` gathers that split's windows."""

    def __init__(self, panel: Panel, config: WindowConfig) -> None:
        self.panel, self.config = panel, config
        widths = {s.y.shape[1] + s.x.shape[1] for s in panel.series}
        if len(widths) != 1:
            raise DataError("every series must have the same channels")
        self.n_out = panel.series[0].y.shape[1]
        self.n_in = widths.pop()
        self.bounds: list[SplitBounds] = [
            split_bounds(len(s), input_size=config.input_size, h=config.h,
                         val_size=config.val_size, test_size=config.test_size, gap=config.gap,
                         name=", ".join(s.ids)) for s in panel.series]
        self.mean: list[np.ndarray] = []
        self.std: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        for s, b in zip(panel.series, self.bounds, strict=True):
            raw = np.concatenate([s.y, s.x], axis=1)
            mean, std = series_stats(raw[: b.train[1]])
            self.mean.append(mean)
            self.std.append(std)
            self.values.append((raw - mean) / std)

    def scaled(self, s: Series, index: int) -> np.ndarray:
        """`s`'s channels `(T, C_in)` standardised with series `index`'s training statistics."""
        raw = np.concatenate([s.y, s.x], axis=1)
        return (raw - self.mean[index]) / self.std[index]

    def decode(self, index: int, values: np.ndarray) -> np.ndarray:
        """Standardised target forecasts `(..., C_y)` of series `index` -> original units."""
        n = self.n_out
        return values * self.std[index][:n] + self.mean[index][:n]

    def windows(self, split: str) -> Windows:
        cfg = self.config
        xs, ys, ids, starts = [], [], [], []
        for i, (v, b) in enumerate(zip(self.values, self.bounds, strict=True)):
            step = {"train": cfg.stride, "val": cfg.val_step or cfg.eval_step}.get(
                split, cfg.eval_step)
            o = origins(getattr(b, split), cfg.h, step, input_size=cfg.input_size)
            if not len(o):
                continue
            x, y = gather(v, o, input_size=cfg.input_size, h=cfg.h)
            xs.append(x)
            ys.append(y[..., : self.n_out])
            ids.append(np.full(len(o), i))
            starts.append(o)
        if not xs:
            shape = (0, cfg.input_size, self.n_in)
            return Windows(torch.zeros(shape), torch.zeros(0, cfg.h, self.n_out),
                           np.zeros(0, int), np.zeros(0, int))
        return Windows(torch.cat(xs), torch.cat(ys), np.concatenate(ids), np.concatenate(starts))
