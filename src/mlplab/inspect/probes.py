"""Linear probes: how linearly readable the task's labels are after each block.

For the backbone's input (the adapter's output, `block 0`) and every block's output, a
scikit-learn probe (standardised features; `LogisticRegression` for class labels, `Ridge`
for values) is fit on up to `max_rows` training rows and scored on the held-out rows:
accuracy, or R². A TabM ensemble's `(batch, k, d)` stream is averaged over its members.
`labels` replaces the task's labels with a column of the user's (class labels when it holds
integers, strings or booleans, else values), given for the train and held-out rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mlplab.errors import DataError
from mlplab.inspect.capture import Recorder, batches, blocks_of, run_model

MAX_ROWS = 4000


def block_outputs(model: nn.Module, split: Any, rows: int | None = None) -> dict[int, Tensor]:
    """`{0: backbone input, n: output of block n}`, each `(rows, d)` (members averaged)."""
    sites = blocks_of(model)
    with Recorder(sites, ("inputs", "outputs")) as rec:
        run_model(model, batches(split, rows=rows))
    found = {0: rec.get("inputs", sites[0].number)} if sites else {}
    found.update({s.number: rec.get("outputs", s.number) for s in sites})
    return {n: t.mean(1) if t.ndim == 3 else t.flatten(1) for n, t in found.items()}


def _is_classes(y: np.ndarray) -> bool:
    return y.dtype.kind in "biuOSU"


def probe_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, *, classes: bool, seed: int = 0) -> float:
    """Held-out accuracy (classes) or R² of a linear probe on standardised features."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = LogisticRegression(max_iter=500, random_state=seed) if classes else Ridge(alpha=1.0)
    probe = make_pipeline(StandardScaler(), head).fit(x_train, y_train)
    return float(probe.score(x_test, y_test))


def probes(model: nn.Module, train: Any, test: Any, *, classification: bool,
           labels: tuple[np.ndarray, np.ndarray] | None = None, max_rows: int = MAX_ROWS,
           seed: int = 0) -> pd.DataFrame:
    """One row per layer (`block` 0 = the backbone's input): `dim`, `score` and its name
    (`accuracy` or `r2`). `train`/`test` are `Split`s; `labels`, when given, is
    `(train labels, test labels)` of the first `max_rows` rows of each."""
    n_train, n_test = min(len(train), max_rows), min(len(test), max_rows)
    if labels is None:
        y_train, y_test = train.y[:n_train].numpy(), test.y[:n_test].numpy()
        classes = classification
    else:
        y_train, y_test = (np.asarray(v) for v in labels)
        if len(y_train) < n_train or len(y_test) < n_test:
            raise DataError(f"probe labels: expected {n_train} train and {n_test} held-out "
                            f"labels, got {len(y_train)} and {len(y_test)}")
        y_train, y_test = y_train[:n_train], y_test[:n_test]
        classes = _is_classes(y_train)
    if classes and len(np.unique(y_train)) < 2:
        raise DataError("probe labels: the training rows hold a single class; nothing to probe")
    with torch.no_grad():
        xs_train = block_outputs(model, train, n_train)
        xs_test = block_outputs(model, test, n_test)
    kinds = {s.number: s.kind for s in blocks_of(model)}
    rows = []
    for number, x in xs_train.items():
        score = probe_score(x.numpy(), y_train, xs_test[number].numpy(), y_test,
                            classes=classes, seed=seed)
        rows.append({"block": number, "kind": kinds.get(number, "input"), "dim": x.shape[1],
                     "score": score, "score_name": "accuracy" if classes else "r2"})
    return pd.DataFrame(rows)
