"""From raw rows to predictions in the user's units: what `LoadedRun.predict`, `mlplab predict`
and `mlplab.export.OnnxPredictor` share.

A `FramePredictor` is a model with its fitted preprocessing, target coding and feature schema.
It takes a pandas DataFrame holding the raw feature columns (extra columns, the target among
them, are ignored; for image sets the pixel columns) and returns class labels, class
probabilities, or values in the target's own units (standardisation and `target_transform`
undone). (The module is not called `predict`: `mlplab.predict` is the low-level forward.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.errors import DataError, SpecError
from mlplab.infer import predict as forward
from mlplab.tasks import Task, make_task

BATCH_SIZE = 4096
UNDO_TRANSFORM = {"log": np.exp, "log1p": np.expm1}
APPLY_TRANSFORM = {"log": np.log, "log1p": np.log1p}  # target units -> the `raw` scale


def _shown(names: list[Any], limit: int = 8) -> str:
    text = ", ".join(repr(n) for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def feature_frame(frame: Any, features: FeaturePreprocessor) -> pd.DataFrame:
    """`frame` checked to hold every feature column the preprocessing needs (DataError if not)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"predict takes a pandas DataFrame with the feature columns, got "
                        f"{type(frame).__name__}")
    needed = features.numeric + features.categorical
    missing = [c for c in needed if c not in frame.columns]
    if missing and all(isinstance(c, str) for c in needed):
        frame = frame.rename(columns=str)  # e.g. integer column names of a numpy-built frame
        missing = [c for c in needed if c not in frame.columns]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(f"the data lacks the feature {noun} {_shown(missing)} that the model "
                        f"was trained on ({len(needed)} needed)")
    if len(frame) == 0:
        raise DataError("the data has no rows to predict")
    return frame


def model_inputs(frame: Any, features: FeaturePreprocessor,
                 schema: FeatureSchema) -> tuple[Tensor, Tensor | None]:
    """Raw rows -> `x (n, n_num) float32` (images `(n, *image_shape)`), `x_cat (n, n_cat) int64`
    or None without categorical features."""
    num, cat = features.transform(feature_frame(frame, features))
    x = torch.from_numpy(num)
    if schema.image_shape:
        x = x.reshape(len(x), *schema.image_shape)
    return x, (torch.from_numpy(cat) if schema.categorical else None)


def target_units(target: TargetCoder, z: np.ndarray, *, raw: bool = False) -> np.ndarray:
    """Standardised regression outputs `(n,)` (or `(n, d)`) -> the target's units; `raw=True` stops at the
    `target_transform` scale (e.g. log price, the scale the run's metrics are computed on)."""
    values = target.decode_values(np.asarray(z, dtype=np.float64))
    undo = UNDO_TRANSFORM.get(target.transform)
    return values if raw or undo is None else undo(values)


def class_values(classes: list[Any]) -> np.ndarray:
    """The class labels as an array, kept as objects when their types are mixed."""
    array = np.asarray(classes)
    if array.dtype.kind in "US" and not all(isinstance(c, str) for c in classes):
        array = np.asarray(classes, dtype=object)
    return array


@dataclass
class FramePredictor:
    """A model plus what turns raw rows into its inputs and its outputs into the user's units."""

    model: nn.Module
    features: FeaturePreprocessor
    target: TargetCoder
    schema: FeatureSchema
    task_kind: str | None = None  # the registered task kind (None: the target's kind)

    @classmethod
    def load(cls, path: str | Path) -> FramePredictor:
        """From a finished run directory or a directory written by `est.save()`."""
        from mlplab.estimators.persist import read_model

        model, record = read_model(path)
        return cls.from_record(model, record)

    @classmethod
    def from_record(cls, model: nn.Module, record: dict[str, Any]) -> FramePredictor:
        return cls(model, FeaturePreprocessor.from_dict(record["features"]),
                   TargetCoder.from_dict(record["target"]), FeatureSchema.from_dict(record["schema"]),
                   record.get("task_kind"))

    @property
    def kind(self) -> str:
        return self.target.kind

    @functools.cached_property
    def task(self) -> Task:
        """The run's `Task` (its `combine` and `decode`)."""
        return make_task(self.task_kind or self.kind, self.target)

    def outputs(self, frame: pd.DataFrame, *, batch_size: int = BATCH_SIZE) -> Tensor:
        """Ensemble members combined by the task: `(n, n_classes)` log-probabilities or
        `(n, d_out)` standardised values; batches only bound memory."""
        x, x_cat = model_inputs(frame, self.features, self.schema)
        out = forward(self.model, x, x_cat, batch_size=batch_size)
        return self.task.combine(out)

    def predict(self, frame: pd.DataFrame, *, raw: bool = False,
                batch_size: int = BATCH_SIZE) -> np.ndarray:
        """`(n,)` class labels (original values), or values in the target's units (`raw=True`:
        on the `target_transform` scale), `(n, n_targets)` for several targets. `raw` does not
        change class labels."""
        return self.task.decode(self.outputs(frame, batch_size=batch_size), raw=raw)

    def predict_proba(self, frame: pd.DataFrame, *, raw: bool = False,
                      batch_size: int = BATCH_SIZE) -> pd.DataFrame:
        """`(n, n_classes)` probabilities, one column per class in class order, indexed like
        `frame`; `raw=True` gives log-probabilities."""
        if self.kind != "classification":
            raise SpecError("predict_proba needs a classification model; this one is a "
                            "regression, use predict")
        frame = feature_frame(frame, self.features)
        logp = self.outputs(frame, batch_size=batch_size).numpy()
        return pd.DataFrame(logp if raw else np.exp(logp), index=frame.index,
                            columns=list(self.target.classes))

    def table(self, frame: pd.DataFrame, *, raw: bool = False,
              batch_size: int = BATCH_SIZE) -> pd.DataFrame:
        """What `mlplab predict` writes: `prediction` (`prediction_<target>` per target for
        several targets), plus `proba_<class>` per class for classification
        (`logproba_<class>` with `raw=True`)."""
        frame = feature_frame(frame, self.features)
        out = self.outputs(frame, batch_size=batch_size)
        if self.kind != "classification":
            task = self.task
            values = task.decode(out, raw=raw)
            columns = task.output_columns()
            return pd.DataFrame(values.reshape(len(values), -1), columns=columns)
        logp = out.numpy()
        table = pd.DataFrame({"prediction": class_values(self.target.classes)[logp.argmax(-1)]})
        prefix = "logproba_" if raw else "proba_"
        for j, label in enumerate(self.target.classes):
            table[f"{prefix}{label}"] = logp[:, j] if raw else np.exp(logp[:, j])
        return table


def read_rows(source: str) -> pd.DataFrame:
    """The rows of a CSV/Parquet file (or any `data.source` name) to predict on."""
    from mlplab.data.sources import load_source

    try:
        return load_source(source).frame
    except DataError as err:
        raise DataError(str(err).removeprefix("data.source: ")) from None
