"""Windows over a series: lookback `input_size`, horizon `h`, and time-ordered splits.

A window with origin `t` reads inputs `values[t - input_size : t]` and targets
`values[t : t + h]`, so its inputs end strictly before its first target: no window reads
the future. Splits are ranges of *target* steps, in time order:

    [ train targets | gap | val targets | gap | test targets ]   (every split >= h steps)

Train windows take origins `input_size, input_size + stride, ...`; validation and test
windows are rolling origins `step` apart (`Prepared` uses `h` for the test part, 1 for the
validation part), whose inputs may reach back into the earlier splits (the history a forecaster would have had).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mlplab.errors import DataError


@dataclass(frozen=True)
class SplitBounds:
    """Target-step ranges `[start, end)` of each split of one series of length `n`."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]


def split_bounds(n: int, *, input_size: int, h: int, val_size: int = 0, test_size: int = 0,
                 gap: int = 0, name: str = "series") -> SplitBounds:
    """Time-ordered target ranges; `val_size`/`test_size` of 0 leave that split empty.

    Raises `DataError` when the series is too short for one training window plus the
    held-out steps.
    """
    for label, size in (("val_size", val_size), ("test_size", test_size)):
        if size and size < h:
            raise DataError(f"{label} = {size} is shorter than the horizon h = {h}")
    held = test_size + val_size + gap * ((test_size > 0) + (val_size > 0))
    need = input_size + h + held
    if n < need:
        raise DataError(f"series {name!r} has {n} time steps; input_size + h = "
                        f"{input_size + h}{f' + {held} held out' if held else ''} needs at "
                        f"least {need}")
    test = (n - test_size, n)
    val_end = n - test_size - (gap if test_size else 0)
    val = (val_end - val_size, val_end)
    train_end = val[0] - (gap if val_size else 0)
    return SplitBounds((input_size, train_end), val, test)


def origins(bounds: tuple[int, int], h: int, step: int, *, input_size: int) -> np.ndarray:
    """Window origins `t` whose targets `[t, t + h)` lie in `bounds` and whose inputs exist."""
    start, end = max(bounds[0], input_size), bounds[1]
    if end - start < h:
        return np.zeros(0, dtype=np.int64)
    return np.arange(start, end - h + 1, step, dtype=np.int64)


def gather(values: np.ndarray | Tensor, starts: np.ndarray, *, input_size: int,
           h: int) -> tuple[Tensor, Tensor]:
    """Inputs `(n, input_size, C)` and targets `(n, h, C)` for the origins `starts (n,)` of
    `values (T, C)`."""
    values = torch.as_tensor(values, dtype=torch.float32)
    index = torch.as_tensor(starts)[:, None] + torch.arange(-input_size, h)[None]
    win = values[index]
    return win[:, :input_size], win[:, input_size:]

