"""Train/validation/test splits: random, stratified, ordered by a time column, or fixed by the
source (synthetic train/test draws)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from mlplab.errors import DataError
from mlplab.messages import short_repr

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


def fixed_split_indices(labels: np.ndarray, *, val_fraction: float, seed: int) -> Indices:
    """`(train, val, test)` row indices from the split a source fixed: `labels (n,)` holds
    `"train"`, `"val"` or `"test"` per row.

    Without `"val"` rows, `val_fraction` of the training rows (at least 1, chosen with `seed`)
    become the validation split.
    """
    labels = np.asarray(labels).astype(str)
    unknown = sorted(set(np.unique(labels)) - {"train", "val", "test"})
    if unknown:
        raise DataError(f"data.source: its fixed split has the label {short_repr(str(unknown[0]))}; "
                        "expected 'train', 'val' or 'test'")
    train, val, test = (np.flatnonzero(labels == part) for part in ("train", "val", "test"))
    if len(test) == 0:
        raise DataError("data.source: its fixed split has no test rows (is data.max_rows too small?)")
    if len(val) == 0:
        n_val = max(1, round(val_fraction * len(train)))
        if len(train) - n_val < 2:
            raise DataError(f"data.source: its fixed split has {len(train)} training rows; "
                            "at least 3 are needed to carve a validation split")
        train, val = train_test_split(train, test_size=n_val, random_state=seed)
    if len(train) < 2:
        raise DataError(f"data.source: its fixed split has {len(train)} training rows; "
                        "at least 2 are needed")
    return np.sort(train), np.sort(val), np.sort(test)
