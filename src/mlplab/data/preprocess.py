"""Preprocessing fitted on the training rows only; state round-trips through plain JSON.

Numeric columns: median imputation plus a 0/1 missing indicator (for columns with missing
values in train), then standardisation. Categorical columns: a vocabulary from train, index 0
for unknown or missing values. Targets: class labels -> indices, or a (log-)transformed
numeric target standardised to mean 0, std 1.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import DataError


def _as_float(frame: pd.DataFrame, col: str) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce") if frame[col].dtype == object else frame[col]
    return np.asarray(values, dtype=np.float64)


def _overflow(col: str, values: np.ndarray, what: str) -> DataError:
    """The error for a column whose finite values are too large to standardise in float32."""
    biggest = float(np.nanmax(np.abs(values))) if values.size else 0.0
    return DataError(f"column {col!r} holds values too large to standardise (largest magnitude "
                     f"{biggest:.3g}: {what}); rescale the column (other units, a log) or drop it")


def _as_labels(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Category values as strings, plus a mask of missing entries.

    Whole numbers in a float column are written as integers ("3", not "3.0"): an integer
    column with a gap reads back from CSV as floats, and its codes must not change with that.
    """
    missing = np.asarray(series.isna())
    labels = np.asarray(series.astype(object).astype(str))
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.abs(values) < 2.0**53) & (values == np.round(values))
        labels[whole] = values[whole].astype(np.int64).astype(str)
    return labels, missing


_WHOLE_FLOAT = re.compile(r"^-?\d+\.0$")


def _codes(vocab: list[str]) -> dict[str, int]:
    """Label -> code (1-based; 0 = unknown or missing). A vocabulary saved before whole floats
    were written as integers ("3.0") also answers to "3"."""
    index = {v: i + 1 for i, v in enumerate(vocab)}
    for v, i in list(index.items()):
        if _WHOLE_FLOAT.match(v):
            index.setdefault(v[:-2], i)
    return index


@dataclass
class FeaturePreprocessor:
    """Turns a table's feature columns into `x_num (n, n_num) float32` and `x_cat (n, n_cat) int64`."""

    numeric: list[str]
    categorical: list[str]
    medians: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> FeaturePreprocessor:
        self.medians, self.means, self.stds, self.indicators = [], [], [], []
        for col in self.numeric:
            values = _as_float(frame, col)
            if np.isinf(values).any():
                raise DataError(f"column {col!r} holds infinite values; replace or drop them")
            finite = values[~np.isnan(values)]
            median = float(np.median(finite)) if finite.size else 0.0
            filled = np.where(np.isnan(values), median, values)
            with np.errstate(over="ignore", invalid="ignore"):
                mean, std = float(filled.mean()), float(filled.std())
            if not (np.isfinite(mean) and np.isfinite(std)):
                raise _overflow(col, finite, "its mean or standard deviation overflows")
            self.medians.append(median)
            self.means.append(mean)
            self.stds.append(std if std > 1e-12 else 1.0)
            if finite.size < values.size:
                self.indicators.append(col)
        self.vocab = {}
        for col in self.categorical:
            labels, missing = _as_labels(frame[col])
            self.vocab[col] = sorted(set(labels[~missing].tolist()))
        return self

    @property
    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) for c in self.categorical]

    @property
    def numeric_features(self) -> list[str]:
        """Names of the `x_num` columns: numeric columns, then their missing indicators."""
        return self.numeric + [f"{c}__missing" for c in self.indicators]

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(frame)
        num = np.empty((n, len(self.numeric) + len(self.indicators)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            values = _as_float(frame, col)
            if np.isinf(values).any():
                raise DataError(f"column {col!r} holds infinite values; replace or drop them")
            values = np.where(np.isnan(values), self.medians[j], values)
            with np.errstate(over="ignore", invalid="ignore"):
                num[:, j] = (values - self.means[j]) / self.stds[j]
            if not np.isfinite(num[:, j]).all():
                raise _overflow(col, values, f"standardised with the training mean "
                                             f"{self.means[j]:.3g} and std {self.stds[j]:.3g} it "
                                             "overflows float32")
        for j, col in enumerate(self.indicators):
            num[:, len(self.numeric) + j] = np.isnan(_as_float(frame, col))
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            labels, missing = _as_labels(frame[col])
            index = _codes(self.vocab[col])
            codes = np.fromiter((index.get(v, 0) for v in labels), dtype=np.int64, count=n)
            cat[:, j] = np.where(missing, 0, codes)
        return num, cat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePreprocessor:
        return cls(**data)


@dataclass
class TargetCoder:
    """Encodes targets for training and decodes predictions back to the target's units.

    Several regression targets (`fit` on a DataFrame): `columns` names them, `mean` and `std`
    are per-column lists, `encode` gives `(n, d)`; one target keeps scalar `mean`/`std` and
    `(n,)` values.
    """

    kind: str  # "classification" | "regression"
    classes: list[Any] = field(default_factory=list)
    transform: str = "none"
    mean: float | list[float] = 0.0
    std: float | list[float] = 1.0
    columns: list[str] = field(default_factory=list)  # several regression targets only

    @property
    def n_targets(self) -> int:
        """Regression outputs per row (1 for a single target)."""
        return max(1, len(self.columns))

    def fit(self, y: pd.Series | pd.DataFrame) -> TargetCoder:
        if isinstance(y, pd.DataFrame):
            if self.kind != "regression":
                raise DataError(f"several target columns ({', '.join(map(repr, y.columns))}) "
                                "need task.kind = 'regression'")
            self.columns = [str(c) for c in y.columns]
            values = np.stack([self._forward(self._numeric(y[c])) for c in y.columns], axis=1)
            std = values.std(axis=0)
            self.mean = [float(m) for m in values.mean(axis=0)]
            self.std = [float(s) if s > 1e-12 else 1.0 for s in std]
            return self
        if self.kind == "classification":
            self.classes = sorted(pd.unique(y).tolist(), key=lambda v: (str(type(v)), v))
            if len(self.classes) < 2:
                raise DataError(f"target {y.name!r} has a single class {self.classes[0]!r}; "
                                "classification needs at least 2")
            self.classes = [v.item() if isinstance(v, np.generic) else v for v in self.classes]
        else:
            values = self._forward(self._numeric(y))
            self.mean = float(values.mean())
            std = float(values.std())
            self.std = std if std > 1e-12 else 1.0
        return self

    def _numeric(self, y: pd.Series) -> np.ndarray:
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            example = y.iloc[0] if len(y) else None
            example = example.item() if isinstance(example, np.generic) else example
            raise DataError(f"regression needs a numeric target; column {y.name!r} holds "
                            f"{y.dtype} values like {example!r}")
        return np.asarray(y, dtype=np.float64)

    def _forward(self, values: np.ndarray) -> np.ndarray:
        if self.transform in ("log", "log1p"):
            bad = values <= 0 if self.transform == "log" else values <= -1
            if bad.any():
                raise DataError(f"target_transform = {self.transform!r} needs targets "
                                f"{'> 0' if self.transform == 'log' else '> -1'}")
            return np.log(values) if self.transform == "log" else np.log1p(values)
        return values

    def encode(self, y: pd.Series | pd.DataFrame) -> np.ndarray:
        """Class indices `(n,) int64`, or standardised values `(n,)` (`(n, d)` for several
        targets) float32."""
        if self.columns:
            values = np.stack([self._forward(self._numeric(y[c])) for c in self.columns], axis=1)
            return ((values - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)
        if self.kind == "classification":
            index = {v: i for i, v in enumerate(self.classes)}
            codes = np.array([index.get(v, -1) for v in y.tolist()], dtype=np.int64)
            if (codes < 0).any():
                unseen = y[codes < 0].iloc[0]
                unseen = unseen.item() if isinstance(unseen, np.generic) else unseen
                raise DataError(f"target {y.name!r} holds a class {unseen!r} not seen in training")
            return codes
        values = self._forward(self._numeric(y))
        return ((values - self.mean) / self.std).astype(np.float32)

    def decode_values(self, z: np.ndarray) -> np.ndarray:
        """Standardised predictions `(n,)` (or `(n, d)`) -> the (transformed) target's units."""
        if self.columns:
            return z * np.asarray(self.std) + np.asarray(self.mean)
        return z * self.std + self.mean

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetCoder:
        return cls(**data)
