"""From a data spec to tensors in memory: load, check, infer the schema, split, preprocess."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.data.sources import RawTable, load_source
from mlplab.data.splits import fixed_split_indices, split_indices
from mlplab.errors import DataError
from mlplab.messages import did_you_mean, name_list, short_repr
from mlplab.spec import DataSpec

MAX_CLASSES_FOR_INTEGER_TARGET = 20


@dataclass
class FeatureSchema:
    """What the model's adapter needs to know about its inputs.

    `adapter` names the registered adapter `model.adapter = "auto"` builds (None: "image" for
    image sets, else "tabular"); `info` holds what a domain's adapter needs beyond columns
    (JSON values: coordinate dims, series length, ...). Both round-trip through `model.json`.
    """

    numeric: list[str]
    categorical: list[str]
    cardinalities: list[int]
    image_shape: tuple[int, ...] | None = None
    bins: list[list[float]] | None = None  # PLE bin edges per numeric feature (data.bins)
    adapter: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_num(self) -> int:
        return len(self.numeric)

    @property
    def default_adapter(self) -> str:
        """The adapter `model.adapter = "auto"` means for this data."""
        return self.adapter or ("image" if self.image_shape is not None else "tabular")

    def to_dict(self) -> dict[str, Any]:
        d = {"numeric": self.numeric, "categorical": self.categorical,
             "cardinalities": self.cardinalities,
             "image_shape": list(self.image_shape) if self.image_shape else None,
             "bins": self.bins}
        if self.adapter is not None or self.info:
            d.update(adapter=self.adapter, info=self.info)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSchema:
        shape = tuple(d["image_shape"]) if d.get("image_shape") else None
        return cls(d["numeric"], d["categorical"], d["cardinalities"], shape, d.get("bins"),
                   d.get("adapter"), dict(d.get("info") or {}))


@dataclass
class Split:
    """One split held as tensors: `x (n, n_num)` or `(n, C, H, W)`, `x_cat (n, n_cat)`, `y (n,)`
    (`(n, d)` for several regression targets; a domain's own shape `(n, *target_shape)`).

    `w (n,)` optional per-row weights for the training loss (None: all rows count equally).
    """

    x: Tensor
    x_cat: Tensor | None
    y: Tensor
    w: Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, index: Tensor | slice) -> tuple[Tensor, Tensor | None]:
        return self.x[index], (self.x_cat[index] if self.x_cat is not None else None)


@dataclass
class Dataset:
    """A preprocessed dataset: three splits plus everything needed to reuse the preprocessing."""

    schema: FeatureSchema
    features: FeaturePreprocessor
    target: TargetCoder
    train: Split
    val: Split
    test: Split
    task_kind: str | None = None  # the registered task kind (None: `target.kind`)

    @property
    def kind(self) -> str:
        """The registered task kind this data trains (`mlplab.domains.TASKS`)."""
        return self.task_kind or self.target.kind


def infer_task_kind(y: pd.Series) -> str:
    """Classification for non-numeric, boolean or few-valued integer targets; else regression."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification"
    return "regression"


def is_categorical(column: pd.Series) -> bool:
    """Columns that are neither numeric nor boolean (strings, objects, pandas categories)."""
    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def check_columns(raw: RawTable, names: list[str], field: str) -> None:
    """Raise `DataError` for the first of `names` not in the table, with the closest column
    names and the column list (the first 40 of a wide table, and how many there are)."""
    columns = [str(c) for c in raw.frame.columns]
    missing = [c for c in names if c not in raw.frame.columns]
    if not missing:
        return
    name = missing[0]
    if name in raw.dropped:
        raise DataError(f"{field}: column {short_repr(name)} holds the file's row names "
                        "(an index, left out on load), not a column to use")
    hint = did_you_mean(str(name), columns, n=3)
    raise DataError(f"{field}: column {short_repr(name)} is not in the table; "
                    f"{hint + ' ' if hint else ''}its {len(columns)} columns: "
                    f"{name_list(columns, limit=40)}")


def target_columns(target: str | list[str]) -> list[str]:
    """`data.target` as a list of column names (one, or several for multi-output regression)."""
    return list(target) if isinstance(target, list | tuple) else [target]


def _feature_columns(raw: RawTable, spec: DataSpec,
                     target: str | list[str]) -> tuple[list[str], list[str]]:
    frame = raw.frame
    targets = set(target_columns(target))
    if spec.features is not None:
        check_columns(raw, spec.features, "data.features")
        cols = list(spec.features)
    else:
        cols = [c for c in frame.columns if c not in targets]
    check_columns(raw, spec.drop, "data.drop")
    cols = [c for c in cols if c not in spec.drop and c not in targets and c != spec.time_column]
    if not cols:
        raise DataError("the table has no feature columns left after choosing the target")
    forced = set(spec.categorical or [])
    check_columns(raw, list(spec.categorical or []), "data.categorical")
    categorical = [c for c in cols if c in forced or is_categorical(frame[c])]
    numeric = [c for c in cols if c not in categorical]
    return numeric, categorical


def load_table(spec: DataSpec, seed: int) -> tuple[RawTable, str | list[str]]:
    """Load the source, pick the target (a column name, or a list of them for several
    regression targets), apply `max_rows`, and check the table is usable."""
    raw = load_source(spec.source, seed=seed)
    target = spec.target or raw.target
    if target is None:
        raise DataError(f"data.target is required for {short_repr(spec.source)} (name the column "
                        "to predict; `mlplab datasets --columns SOURCE` lists them)")
    frame = raw.frame
    if len(frame) == 0:
        raise DataError(f"the table from {short_repr(spec.source)} is empty (0 rows)")
    check_columns(raw, target_columns(target), "data.target")
    if spec.time_column:
        check_columns(raw, [spec.time_column], "data.time_column")
        n_missing = int(frame[spec.time_column].isna().sum())
        if n_missing:
            raise DataError(f"data.time_column {spec.time_column!r} has {n_missing} missing "
                            "values, so those rows cannot be ordered; drop them first")
    for name in target_columns(target):
        y = frame[name]
        bad = y.isna().to_numpy().copy()
        if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
            bad |= ~np.isfinite(y.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            raise DataError(f"target column {name!r} has {int(bad.sum())} NaN/missing/infinite "
                            "values; drop those rows first")
    if spec.max_rows is not None and len(frame) > spec.max_rows:
        frame = frame.sample(n=spec.max_rows, random_state=seed).sort_index()
        if raw.split is not None:
            raw.split = raw.split[raw.frame.index.get_indexer(frame.index)]
    raw.frame = frame.reset_index(drop=True)
    return raw, target


def build_dataset(spec: DataSpec, *, task_kind: str = "auto", seed: int = 0) -> Dataset:
    """Load, split and preprocess the data a spec names; every step is fitted on train only."""
    raw, target = load_table(spec, seed)
    frame = raw.frame
    y_raw = frame[target]  # a DataFrame for several targets
    if isinstance(y_raw, pd.DataFrame):
        kind = task_kind if task_kind != "auto" else "regression"
        if kind != "regression":
            raise DataError(f"data.target: several target columns need task.kind = "
                            f"'regression', not {kind!r}")
    else:
        kind = task_kind if task_kind != "auto" else (raw.kind or infer_task_kind(y_raw))
    if len(frame) < 10:
        raise DataError(f"the table has {len(frame)} rows; at least 10 are needed to split it")
    if kind == "classification" and y_raw.nunique() < 2:
        only = y_raw.iloc[0].item() if isinstance(y_raw.iloc[0], np.generic) else y_raw.iloc[0]
        raise DataError(f"target {target!r} has a single class {only!r}; "
                        "classification needs at least 2")
    numeric, categorical = _feature_columns(raw, spec, target)
    split_kind = spec.split if spec.split != "auto" else (
        "stratified" if kind == "classification" else "random")
    if raw.split is not None and spec.split == "auto":  # the source fixed its split
        splits = fixed_split_indices(raw.split, val_fraction=spec.val_fraction, seed=seed)
    else:
        splits = split_indices(
            len(frame), kind=split_kind, val_fraction=spec.val_fraction,
            test_fraction=spec.test_fraction, seed=seed,
            stratify=y_raw.astype(str).to_numpy() if split_kind == "stratified" else None,
            order=frame[spec.time_column].to_numpy() if spec.time_column else None)
    return assemble_dataset(frame, y_raw, numeric, categorical, kind, splits,
                            target_transform=spec.target_transform, image_shape=raw.image_shape)


def assemble_dataset(frame: pd.DataFrame, y: pd.Series | pd.DataFrame, numeric: list[str], categorical: list[str],
                     kind: str, splits: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                     target_transform: str = "none", image_shape: tuple[int, ...] | None = None,
                     features: FeaturePreprocessor | None = None,
                     target: TargetCoder | None = None,
                     weights: np.ndarray | None = None) -> Dataset:
    """Fit the preprocessing on the train rows (unless given) and build the three splits.

    `frame` holds the feature columns, `y` the raw target (same rows; a DataFrame for several
    regression targets, giving `Split.y (n, d)`); `splits` are row
    indices `(train, val, test)`; `weights (n,)` are optional per-row loss weights.
    """
    train_idx = splits[0]
    if features is None:
        features = FeaturePreprocessor(numeric, categorical).fit(frame.iloc[train_idx])
    if target is None:
        target = TargetCoder(kind, transform=target_transform).fit(
            y.iloc[train_idx] if kind == "regression" else y)
    if categorical or features.indicators:
        image_shape = None

    def make_split(idx: np.ndarray) -> Split:
        num, cat = features.transform(frame.iloc[idx])
        x = torch.from_numpy(num)
        if image_shape is not None:
            x = x.reshape(len(idx), *image_shape)
        x_cat = torch.from_numpy(cat) if categorical else None
        w = torch.as_tensor(weights[idx], dtype=torch.float32) if weights is not None else None
        return Split(x, x_cat, torch.from_numpy(target.encode(y.iloc[idx])), w)

    schema = FeatureSchema(features.numeric_features, categorical, features.cardinalities,
                           image_shape)
    return Dataset(schema, features, target, *(make_split(idx) for idx in splits))
