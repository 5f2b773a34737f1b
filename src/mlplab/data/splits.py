"""Train/validation/test splits: random, stratified, or ordered by a time column."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from mlplab.errors import DataError

Indices = tuple[np.ndarray, np.ndarray, np.ndarray]


def split_indices(
    n: int,
    *,
    kind: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> Indices:
    """Return `(train, val, test)` row indices.

    `kind="time"` puts the latest rows (by `order`) in test and the ones before in val;
    `kind="stratified"` keeps class proportions (falling back to random when a class is too
    rare, or a part too small, to stratify); `kind="random"` shuffles.
    """
    idx = np.arange(n)
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(val_fraction * n))
    if n - n_test - n_val < 2:
        raise DataError(f"data.val_fraction and data.test_fraction leave {n - n_test - n_val} of "
                        f"{n} rows for training; lower them or use more rows")
    if kind == "time":
        assert order is not None
        idx = idx[np.argsort(order, kind="stable")]
        return idx[: n - n_val - n_test], idx[n - n_val - n_test: n - n_test], idx[n - n_test:]
    strat = stratify if kind == "stratified" else None
    if strat is not None:
        _, counts = np.unique(strat, return_counts=True)
        # every part must be able to hold one row of each class, or sklearn refuses
        if counts.min() < 3 or min(n_test, n_val, n - n_test - n_val) < len(counts):
            strat = None
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=strat)
    strat_rest = strat[rest] if strat is not None else None
    train, val = train_test_split(rest, test_size=n_val, random_state=(seed + 1) % 2**32,
                                  stratify=strat_rest)
    return np.sort(train), np.sort(val), np.sort(test)
