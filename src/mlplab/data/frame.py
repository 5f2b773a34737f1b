"""A `Dataset` from in-memory tables (what the estimators fit on), not from a named source.

The preprocessing is the same as for named sources (`assemble_dataset`); only the split
differs: a train/validation holdout for early stopping (or the caller's own validation rows)
and an empty test split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlplab.data.dataset import Dataset, assemble_dataset, is_categorical
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder


def holdout_indices(n: int, val_fraction: float, *, seed: int,
                    stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(train, val)` row indices; stratified when every class has 2+ rows.

    With too few rows for a holdout (or `val_fraction == 0`) both are all rows: early
    stopping then watches the training rows.
    """
    idx = np.arange(n)
    n_val = round(val_fraction * n)
    if n_val < 1 or n - n_val < 2:
        return idx, idx
    strat = stratify
    if strat is not None:
        _, counts = np.unique(strat, return_counts=True)
        if counts.min() < 2 or n_val < len(counts) or n - n_val < len(counts):
            strat = None
    train, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    return np.sort(train), np.sort(val)


def dataset_from_frame(X: pd.DataFrame, y: pd.Series | pd.DataFrame, kind: str, *, val_fraction: float = 0.1,
                       seed: int = 0, weights: np.ndarray | None = None,
                       features: FeaturePreprocessor | None = None,
                       target: TargetCoder | None = None,
                       val: tuple[pd.DataFrame, pd.Series] | None = None) -> Dataset:
    """Split `X (n, columns)`, `y (n,)` into train/val and preprocess them (fitted on train).

    With `val = (X_val (m, columns), y_val (m,))` all of `X` trains and `X_val` is the
    validation split (`val_fraction` is unused). Non-numeric columns (strings, objects,
    categories) become categorical features. Pass fitted `features`/`target` to reuse an
    earlier preprocessing (warm start). `weights (n,)` weight the training rows' loss.
    """
    X = X.reset_index(drop=True)
    multi = isinstance(y, pd.DataFrame)  # several regression targets, one column each
    name = y.name if isinstance(y, pd.Series) else "y"
    y = y.reset_index(drop=True) if multi else pd.Series(np.asarray(y), name=name)
    if val is None:
        strat = y.astype(str).to_numpy() if kind == "classification" else None
        train, val_idx = holdout_indices(len(X), val_fraction, seed=seed, stratify=strat)
    else:
        n, m = len(X), len(val[0])
        train, val_idx = np.arange(n), np.arange(n, n + m)
        categorical = [c for c in X.columns if is_categorical(X[c])]
        X = pd.concat([X, val[0].reset_index(drop=True)], ignore_index=True)
        for c in categorical:  # categories differing between the two frames: keep them all
            X[c] = X[c].astype(object)
        if multi:
            y = pd.DataFrame(np.concatenate([y.to_numpy(), np.asarray(val[1])]),
                             columns=y.columns)
        else:
            y = pd.Series(np.concatenate([y.to_numpy(), np.asarray(val[1])]), name=name)
        if weights is not None:
            weights = np.concatenate([weights, np.ones(m)])
    if features is not None:
        numeric, categorical = features.numeric, features.categorical
    else:
        categorical = [c for c in X.columns if is_categorical(X[c])]
        numeric = [c for c in X.columns if c not in categorical]
    return assemble_dataset(X, y, numeric, categorical, kind,
                            (train, val_idx, np.empty(0, dtype=np.int64)), features=features,
                            target=target, weights=weights)
