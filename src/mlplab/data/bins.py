"""Bin edges for piecewise-linear encoding (PLE), fitted on the training rows.

Quantile bins: up to `n_bins` equal-frequency bins per column, duplicate edges removed (ties
collapse bins). Tree bins: the split thresholds of a decision tree with at most `n_bins`
leaves fitted to the target on that one column, plus the column's min and max. A constant
column gets the single bin `[v, v + 1]`. Edges are plain lists of floats, saved in JSON with
the model's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlplab.data.dataset import Dataset
    from mlplab.spec import ModelSpec

TREE_MIN_SAMPLES_LEAF = 64
TREE_MIN_IMPURITY_DECREASE = 1e-4


def _finish(edges: np.ndarray) -> list[float]:
    edges = np.unique(edges.astype(np.float64))
    if len(edges) < 2:
        v = float(edges[0]) if len(edges) else 0.0
        return [v, v + 1.0]
    # float32 rounding could merge close edges; keep them strictly increasing in float32
    e32 = np.unique(edges.astype(np.float32)).astype(np.float64)
    if len(e32) < 2:
        return [float(e32[0]), float(e32[0]) + 1.0]
    return e32.tolist()


def quantile_bins(column: np.ndarray, n_bins: int) -> list[float]:
    """Edges of up to `n_bins` equal-frequency bins of `column (n,)`."""
    return _finish(np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1)))


def tree_bins(column: np.ndarray, y: np.ndarray, n_bins: int, *, regression: bool,
              seed: int = 0) -> list[float]:
    """Edges from a decision tree (at most `n_bins` leaves) fitted to `y` on `column (n,)`."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if regression else DecisionTreeClassifier
    tree = cls(max_leaf_nodes=max(2, n_bins), min_samples_leaf=TREE_MIN_SAMPLES_LEAF,
               min_impurity_decrease=TREE_MIN_IMPURITY_DECREASE, random_state=seed)
    tree.fit(column.reshape(-1, 1), y)
    t = tree.tree_
    splits = t.threshold[t.children_left != t.children_right]
    return _finish(np.concatenate([[column.min(), column.max()], splits]))


def compute_bins(x: np.ndarray, n_bins: int = 48, *, method: str = "quantile",
                 y: np.ndarray | None = None, regression: bool = False,
                 seed: int = 0) -> list[list[float]]:
    """Per-column bin edges for `x (n, n_features)`; `method` is "quantile" or "tree"."""
    x = np.asarray(x, dtype=np.float64)
    if method == "tree":
        if y is None:
            raise ValueError("tree bins need the training target y")
        return [tree_bins(col, np.asarray(y), n_bins, regression=regression, seed=seed)
                for col in x.T]
    return [quantile_bins(col, n_bins) for col in x.T]


def ple_bins(data: Dataset, model_spec: ModelSpec, *, seed: int = 0) -> list[list[float]] | None:
    """The PLE bin edges `model_spec` needs on `data` (None without PLE or numeric features).

    Fitted on the preprocessed training features `data.train.x (n, n_num)` (tree bins also
    on the encoded training target), with `model_spec.ple_bins` and `ple_method`.
    """
    if model_spec.num_embeddings != "ple" or data.schema.n_num == 0:
        return None
    return compute_bins(
        data.train.x.reshape(len(data.train), -1).numpy(), model_spec.ple_bins,
        method=model_spec.ple_method, y=data.train.y.numpy(),
        regression=data.target.kind == "regression", seed=seed)


def fit_bins(data: Dataset, model_spec: ModelSpec, *, seed: int = 0) -> None:
    """Store `ple_bins(data, model_spec)` in `data.schema.bins` when the model uses PLE."""
    bins = ple_bins(data, model_spec, seed=seed)
    if bins is not None:
        data.schema.bins = bins
