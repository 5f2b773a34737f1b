"""scikit-learn estimators over mlplab's Model + Trainer (the one training loop).

`MLPClassifier`/`MLPRegressor` take plain keyword arguments, build a `ModelSpec` and a
`TrainSpec` from them, turn the input (numpy or pandas) into a `Dataset` with the shared
preprocessing, and train with `Trainer`. `TabMClassifier`/`TabMRegressor` are the same
classes with the TabM paper's defaults.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
    _check_y,
    check_array,
    check_is_fitted,
    validate_data,
)
from torch import nn

from mlplab.build import build_model
from mlplab.data.bins import fit_bins
from mlplab.data.dataset import is_categorical
from mlplab.data.frame import dataset_from_frame
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.errors import DataError, SpecError
from mlplab.nn.adapters import CAT_ENCODINGS as ADAPTER_CAT_ENCODINGS
from mlplab.spec import ModelSpec, TrainSpec
from mlplab.tasks import Task, make_task, predict_batches
from mlplab.train.trainer import Trainer

# arch -> (block, ensemble); every arch uses ReLU, and the plain MLP has no norm (TabM paper).
ARCHS: dict[str, tuple[str, str]] = {
    "mlp": ("plain", "none"),
    "resnet": ("standard", "none"),
    "hourglass": ("hourglass", "none"),
    "tabm": ("plain", "tabm"),
    "tabm-mini": ("plain", "tabm-mini"),
}
NUM_EMBEDDINGS = (None, "none", "plr", "plr-lite", "ple")
CAT_ENCODINGS = (None, *ADAPTER_CAT_ENCODINGS)  # None: one-hot for the TabM archs (TabM paper)
PREDICT_BATCH = 4096


class _MLPBase(BaseEstimator):
    """Shared fit/predict machinery; subclasses set the task kind."""

    _kind: str = ""

    def __init__(self, *, arch: str = "mlp", n_blocks: int | None = None, d_block: int = 256,
                 k: int | None = None, num_embeddings: str | None = None,
                 cat_encoding: str | None = None, dropout: float = 0.1, lr: float = 2e-3,
                 weight_decay: float = 3e-4, batch_size: int = 256,
                 max_epochs: int = 100, patience: int | None = 16,
                 validation_fraction: float = 0.1, precision: str = "fp32",
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0,
                 warm_start: bool = False) -> None:
        self.arch = arch
        self.n_blocks = n_blocks
        self.d_block = d_block
        self.k = k
        self.num_embeddings = num_embeddings
        self.cat_encoding = cat_encoding
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # -- specs from keyword arguments ---------------------------------------------------

    def _model_spec(self) -> ModelSpec:
        if self.arch not in ARCHS:
            raise SpecError(f"arch: unknown {self.arch!r}; choose one of "
                            + ", ".join(repr(a) for a in ARCHS))
        if self.num_embeddings not in NUM_EMBEDDINGS:
            raise SpecError(f"num_embeddings: unknown {self.num_embeddings!r}; choose None, "
                            "'plr', 'plr-lite' or 'ple'")
        if self.cat_encoding not in CAT_ENCODINGS:
            raise SpecError(f"cat_encoding: unknown {self.cat_encoding!r}; choose None (the "
                            "arch's default), 'embedding' or 'onehot'")
        block, ensemble = ARCHS[self.arch]
        cat_encoding = self.cat_encoding or ("onehot" if ensemble != "none" else "embedding")
        embed = self.num_embeddings or "none"
        if ensemble == "none" and self.k is not None and self.k > 1:
            ensemble = "tabm"  # a BatchEnsemble of the chosen block family
        n_blocks = self.n_blocks if self.n_blocks is not None else (2 if embed != "none" else 3)
        try:
            return ModelSpec(block=block, width=self.d_block, depth=n_blocks,
                             activation="relu", norm="none" if block == "plain" else "layernorm",
                             dropout=self.dropout, ensemble=ensemble,
                             k=None if ensemble == "none" else self.k, num_embeddings=embed,
                             cat_encoding=cat_encoding)
        except ValueError as err:
            raise SpecError(f"{type(self).__name__}: {err}") from None

    def _train_spec(self) -> TrainSpec:
        try:
            return TrainSpec(lr=self.lr, weight_decay=self.weight_decay,
                             batch_size=self.batch_size, epochs=self.max_epochs,
                             warmup_epochs=0.0, schedule="constant", grad_clip=None,
                             patience=self.patience, precision=self.precision)
        except ValueError as err:
            raise SpecError(f"{type(self).__name__}: {err}") from None

    # -- input checks -------------------------------------------------------------------

    def _frame(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """Check `X (n, n_features)` the sklearn way and return it as a DataFrame."""
        if isinstance(X, pd.DataFrame):
            _check_feature_names(self, X, reset=reset)
            _check_n_features(self, X, reset=reset)
            if len(X) == 0:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                                 "minimum of 1 is required.")
            numeric = [c for c in X.columns if not is_categorical(X[c])]
            if numeric:
                check_array(X[numeric].astype(float), ensure_all_finite="allow-nan",
                            estimator=self)
            frame = X.copy()
        else:
            array = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan",
                                  dtype=[np.float64, np.float32])
            frame = pd.DataFrame(array)
        if reset:
            self._columns = [str(c) for c in frame.columns]
        frame.columns = self._columns
        return frame

    def _target(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    # -- fit / predict ------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _MLPBase:
        """Train on `X (n, n_features)`, `y (n,)`; `sample_weight (n,)` weights each row's loss."""
        warm = self.warm_start and hasattr(self, "model_")
        model_spec, train_spec = self._model_spec(), self._train_spec()
        frame = self._frame(X, reset=not warm)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None")
        y = self._target(y)
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, frame.to_numpy(), dtype=np.float64)
            if (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("sample_weight must be non-negative with a positive sum")
            if np.all(weights == weights[0]):
                weights = None  # a constant weight changes nothing in a weighted mean
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        data = dataset_from_frame(
            frame, pd.Series(y, name="y"), self._kind, val_fraction=self.validation_fraction,
            seed=seed, weights=weights,
            features=self.features_ if warm else None,
            target=self.target_ if warm else self._new_target(y))
        if warm:
            data.schema = self.schema_
        else:
            fit_bins(data, model_spec, seed=seed)
        task = make_task(self._kind, data.target)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.model_ if warm else build_model(model_spec, data.schema, task.d_out)
            trainer = Trainer(model, task, data, train_spec, seed=seed, quiet=not self.verbose)
            state = trainer.fit()
        model.eval()
        self.model_, self.task_, self.schema_ = model, task, data.schema
        self.features_, self.target_ = data.features, data.target
        self.model_spec_ = model_spec
        self.n_iter_ = state.epoch
        self.best_epoch_ = state.best_epoch
        self.curves_ = state.curves
        return self

    def _new_target(self, y: np.ndarray) -> TargetCoder:
        raise NotImplementedError

    def _forward(self, X: Any) -> torch.Tensor:
        """Combined predictions `(n, d_out)` (ensemble members merged by the task)."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        num, cat = self.features_.transform(frame)
        x = torch.from_numpy(num).double()
        x_cat = torch.from_numpy(cat) if self.schema_.categorical else None

        def inputs(index: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
            return x[index], x_cat[index] if x_cat is not None else None

        # float64 inference: a row's prediction must not depend on the other rows in the batch
        # (float32 matmul kernels round differently for different batch sizes)
        model = copy.deepcopy(self.model_).double()
        out = predict_batches(model, inputs, len(x), PREDICT_BATCH)
        return self.task_.combine(out)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self):  # noqa: ANN204  (sklearn.utils.Tags)
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write `estimator.json` + `model.safetensors` to the directory `path` (no pickle)."""
        from mlplab.estimators.persist import save_estimator

        save_estimator(self, path)

    def _restore(self, model: nn.Module, task: Task, record: dict[str, Any]) -> None:
        from mlplab.data.dataset import FeatureSchema

        self.model_, self.task_ = model, task
        self.schema_ = FeatureSchema.from_dict(record["schema"])
        self.features_ = FeaturePreprocessor.from_dict(record["features"])
        self.target_ = TargetCoder.from_dict(record["target"])
        self.model_spec_ = ModelSpec.model_validate(record["model"])
        self._columns = record["columns"]
        self.n_features_in_ = len(self._columns)
        if record.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(record["feature_names_in"], dtype=object)
        self.n_iter_ = record.get("n_iter", 0)
        self.best_epoch_ = record.get("best_epoch", 0)
        self.curves_ = []


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
        return _check_y(y, y_numeric=True, estimator=self).astype(np.float64)

    def _new_target(self, y: np.ndarray) -> TargetCoder:
        return TargetCoder("regression").fit(pd.Series(y, name="y"))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values `(n,)` in the target's units."""
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
    (`cat_encoding=None`).
    """

    def __init__(self, *, arch: str = "tabm", n_blocks: int | None = None, d_block: int = 512,
                 k: int | None = 32, num_embeddings: str | None = None,
                 cat_encoding: str | None = None, dropout: float = 0.1, lr: float = 2e-3,
                 weight_decay: float = 3e-4, batch_size: int = 256,
                 max_epochs: int = 100, patience: int | None = 16,
                 validation_fraction: float = 0.1, precision: str = "fp32",
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0,
                 warm_start: bool = False) -> None:
        super().__init__(arch=arch, n_blocks=n_blocks, d_block=d_block, k=k,  # type: ignore[call-arg]
                         num_embeddings=num_embeddings, cat_encoding=cat_encoding,
                         dropout=dropout, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, max_epochs=max_epochs,
                         patience=patience, validation_fraction=validation_fraction,
                         precision=precision, random_state=random_state, verbose=verbose,
                         warm_start=warm_start)


class TabMClassifier(_TabMPreset, MLPClassifier):
    """`MLPClassifier` with the TabM paper's defaults: k=32 BatchEnsemble members, d_block 512."""


class TabMRegressor(_TabMPreset, MLPRegressor):
    """`MLPRegressor` with the TabM paper's defaults: k=32 BatchEnsemble members, d_block 512."""
