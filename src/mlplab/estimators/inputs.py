"""Checks on what `fit` receives besides `X, y`: the `eval_set` pair and its columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlplab.data.dataset import is_categorical
from mlplab.data.preprocess import TargetCoder
from mlplab.errors import DataError


def unpack_eval_set(eval_set: Any) -> tuple[Any, Any]:
    """`(X_val, y_val)` from a pair, or from a list holding one pair (XGBoost/LightGBM style)."""
    pair = eval_set
    if isinstance(pair, list) and len(pair) == 1 and isinstance(pair[0], (tuple, list)):
        pair = pair[0]
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise DataError(f"eval_set: expected a pair (X_val, y_val); got {type(eval_set).__name__}"
                        + (f" of length {len(pair)}" if isinstance(pair, (tuple, list)) else ""))
    if pair[0] is None or pair[1] is None:
        raise DataError("eval_set: expected a pair (X_val, y_val); got None in it")
    return pair[0], pair[1]


def align_columns(X_val: Any, columns: list[str] | None, n_features: int) -> Any:
    """`X_val` with the training columns in the training order (a DataFrame trained on a
    DataFrame), or checked to be 2-D with `n_features` columns; one-sentence `DataError`s."""
    if isinstance(X_val, pd.DataFrame) and columns is not None:
        have = [str(c) for c in X_val.columns]
        missing = [c for c in columns if c not in have]
        if missing:
            raise DataError(f"eval_set: X_val has no column {missing[0]!r} (X has "
                            f"{len(columns)} columns: {', '.join(map(repr, columns[:12]))})")
        extra = [c for c in have if c not in columns]
        if extra:
            raise DataError(f"eval_set: X_val has a column {extra[0]!r} that X does not have")
        X_val = X_val.copy()
        X_val.columns = have
        return X_val[columns]
    shape = np.shape(X_val)
    if len(shape) != 2:
        raise DataError(f"eval_set: X_val must be 2-D (rows, features); got shape {shape}")
    if shape[1] != n_features:
        raise DataError(f"eval_set: X_val has {shape[1]} columns but X has {n_features}")
    return X_val


def check_val_frame(train: pd.DataFrame, val: pd.DataFrame) -> None:
    """A column numeric in the training frame must be numeric in the validation frame."""
    for c in train.columns:
        if not is_categorical(train[c]) and is_categorical(val[c]):
            known = val[c].dropna()
            example = f" like {known.iloc[0]!r}" if len(known) else ""
            raise DataError(f"eval_set: column {c!r} is numeric in X but holds non-numeric "
                            f"values{example} in X_val")


def check_val_target(y_val: np.ndarray, n_rows: int, target: TargetCoder) -> None:
    """`y_val (m,)` has one value per X_val row and only classes seen in `y`."""
    if len(y_val) != n_rows:
        raise DataError(f"eval_set: X_val has {n_rows} rows but y_val has {len(y_val)}")
    if target.kind == "classification":
        known = set(target.classes)
        unseen = [v for v in np.asarray(y_val).tolist() if v not in known]
        if unseen:
            raise DataError(f"eval_set: y_val holds a class {unseen[0]!r} that y does not have")
