"""The estimators users import: `MLPClassifier`, `MLPRegressor` and the TabM presets.

They differ from `_MLPBase` only in how `y` is checked and coded and how outputs become
predictions; `TabMClassifier`/`TabMRegressor` are the same classes with the TabM paper's
defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_y, check_array
from torch import nn

from mlplab.data.preprocess import TargetCoder
from mlplab.errors import DataError
from mlplab.estimators.base import _MLPBase, target_frame
from mlplab.tasks import Task


class MLPClassifier(ClassifierMixin, _MLPBase):
    """A tabular MLP (or TabM ensemble) classifier with the scikit-learn API.

    `predict_proba` is the mean of the ensemble members' probabilities (a single member
    without an ensemble); `decision_function` is the log-odds (binary) or log-probabilities.
    """

    _kind = "classification"

    def _target(self, y: Any) -> np.ndarray:
        y = _check_y(y, estimator=self)
        check_classification_targets(y)
        return y

    def _new_target(self, y: np.ndarray) -> TargetCoder:
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise DataError(f"y has only one class ({self.classes_[0]!r}); "
                            f"{type(self).__name__} needs at least 2 classes")
        return TargetCoder("classification", classes=self.classes_.tolist())

    def _restore(self, model: nn.Module, task: Task, record: dict[str, Any]) -> None:
        super()._restore(model, task, record)
        self.classes_ = np.asarray(record["target"]["classes"])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities `(n, n_classes)`, columns in the order of `classes_`."""
        return self._forward(X).exp().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of `classes_[1]` `(n,)` when binary, else log-probabilities `(n, n_classes)`."""
        logp = self._forward(X).numpy()
        return logp[:, 1] - logp[:, 0] if logp.shape[1] == 2 else logp

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class per row `(n,)`."""
        index = self._forward(X).argmax(-1).numpy()
        return self.classes_[index]


class MLPRegressor(RegressorMixin, _MLPBase):
    """A tabular MLP (or TabM ensemble) regressor with the scikit-learn API.

    The target is standardised for training; `predict` returns the mean of the ensemble
    members' predictions in the target's units.
    """

    _kind = "regression"

    def _target(self, y: Any) -> np.ndarray:
        values = np.asarray(y) if not isinstance(y, pd.DataFrame) else y.to_numpy()
        if values.dtype.kind in "OUSb" and not _all_numbers(values):
            example = values.ravel()[0] if values.size else None
            raise DataError(f"{type(self).__name__} needs a numeric target y; got "
                            f"{values.dtype} values like {example!r} (use MLPClassifier for labels)")
        if np.ndim(values) == 2 and values.shape[1] > 1:  # several targets: (n, d)
            return check_array(values, dtype=np.float64, input_name="y")
        return _check_y(y, y_numeric=True, estimator=self).astype(np.float64)

    def _new_target(self, y: np.ndarray) -> TargetCoder:
        return TargetCoder("regression").fit(target_frame(y))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values `(n,)` in the target's units; `(n, d)` when `fit` got a 2-D `y`
        with d > 1 columns (each standardised on its own)."""
        z = self._forward(X).squeeze(-1).numpy()
        return self.target_.decode_values(z)


def _all_numbers(values: np.ndarray) -> bool:
    if values.dtype.kind == "b":
        return False
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
               for v in values.ravel())


class _TabMPreset:
    """The TabM paper's defaults for both presets: k=32 BatchEnsemble members, d_block 512.

    Categorical columns are one-hot encoded, as in the paper, through the TabM archs' default
    (`cat_encoding=None`). k members cost about k times the FLOPs of one MLP of that width.
    """

    def __init__(self, *, arch: str = "tabm", block: str | None = None,
                 n_blocks: int | None = None, d_block: int = 512, k: int | None = 32,
                 activation: str | None = None, unit: str | None = None,
                 unit_options: dict[str, Any] | None = None,
                 num_embeddings: str | None = None, cat_encoding: str | None = None,
                 dropout: float = 0.1, lr: float = 2e-3, weight_decay: float = 3e-4,
                 batch_size: int = 256, max_epochs: int = 100, patience: int | None = 16,
                 monitor: str | None = None, validation_fraction: float = 0.1,
                 precision: str = "auto", threads: int | None = None, device: str = "auto",
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0,
                 warm_start: bool = False, optimizer: str = "adamw",
                 grid_update_epochs: list[int] | None = None,
                 grid_extend: dict[int, int] | list[list[int]] | None = None) -> None:
        super().__init__(  # type: ignore[call-arg]
            arch=arch, block=block, n_blocks=n_blocks, d_block=d_block, k=k,
            activation=activation, unit=unit, unit_options=unit_options,
            num_embeddings=num_embeddings, cat_encoding=cat_encoding, dropout=dropout, lr=lr,
            weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
            patience=patience, monitor=monitor, validation_fraction=validation_fraction,
            precision=precision, threads=threads, device=device, random_state=random_state,
            verbose=verbose, warm_start=warm_start, optimizer=optimizer,
            grid_update_epochs=grid_update_epochs, grid_extend=grid_extend)


class TabMClassifier(_TabMPreset, MLPClassifier):
    """`MLPClassifier` with the TabM paper's defaults: k=32 BatchEnsemble members, d_block 512."""


class TabMRegressor(_TabMPreset, MLPRegressor):
    """`MLPRegressor` with the TabM paper's defaults: k=32 BatchEnsemble members, d_block 512."""
