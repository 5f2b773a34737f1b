"""The machinery under mlplab's scikit-learn estimators (the classes are in `models.py`).

An estimator takes plain keyword arguments, builds a `ModelSpec` and a `TrainSpec` from them
(`specs.py`), turns the input (numpy or pandas) into a `Dataset` with the shared
preprocessing, and trains with `Trainer`, the one training loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
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
from mlplab.estimators.inputs import (
    align_columns,
    check_val_frame,
    check_val_target,
    unpack_eval_set,
)
from mlplab.estimators.specs import check_schedule, model_spec, torch_threads, train_spec
from mlplab.spec import ModelSpec, TrainSpec
from mlplab.tasks import Task, make_task, predict_batches
from mlplab.train.threads import using_threads
from mlplab.train.trainer import Trainer

PREDICT_BATCH = 256  # rows per forward in predict; every batch is padded to this size


def fixed_batches(model: nn.Module, x: torch.Tensor, x_cat: torch.Tensor | None,
                  size: int) -> torch.Tensor:
    """Outputs `(n, ...)` for `x (n, n_num)`, `x_cat (n, n_cat)`, in batches of exactly `size`
    rows (the last one zero-padded).

    float32 kernels round differently for different batch shapes; with one shape for every
    batch, a row's prediction does not depend on which other rows it is predicted with.
    """
    n, pad = len(x), -len(x) % size
    if pad:
        x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
        x_cat = torch.cat([x_cat, x_cat.new_zeros(pad, x_cat.shape[1])]) \
            if x_cat is not None else None

    def inputs(index: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        return x[index], x_cat[index] if x_cat is not None else None

    return predict_batches(model, inputs, len(x), size)[:n]


def target_frame(y: np.ndarray) -> pd.Series | pd.DataFrame:
    """`y (n,)` as a Series named `y`; several targets `(n, d)` as columns `y0 .. y{d-1}`."""
    if np.ndim(y) == 2:
        return pd.DataFrame(y, columns=[f"y{i}" for i in range(np.shape(y)[1])])
    return pd.Series(y, name="y")


class _MLPBase(BaseEstimator):
    """Shared fit/predict machinery; subclasses set the task kind."""

    _kind: str = ""

    def __init__(self, *, arch: str = "mlp", block: str | None = None,
                 n_blocks: int | None = None, d_block: int = 256, k: int | None = None,
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
        self.arch = arch
        self.block = block
        self.n_blocks = n_blocks
        self.d_block = d_block
        self.k = k
        self.activation = activation
        self.unit = unit
        self.unit_options = unit_options
        self.num_embeddings = num_embeddings
        self.cat_encoding = cat_encoding
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.monitor = monitor
        self.validation_fraction = validation_fraction
        self.precision = precision
        self.threads = threads
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.optimizer = optimizer
        self.grid_update_epochs = grid_update_epochs
        self.grid_extend = grid_extend

    # -- specs from keyword arguments ---------------------------------------------------

    def _model_spec(self) -> ModelSpec:
        return model_spec(self)

    def _train_spec(self) -> TrainSpec:
        return train_spec(self)

    def _threads(self) -> int:
        return torch_threads(self)

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

    def fit(self, X: Any, y: Any, sample_weight: Any = None, eval_set: Any = None) -> _MLPBase:
        """Train on `X (n, n_features)`, `y (n,)`; `sample_weight (n,)` weights each row's loss.

        `eval_set = (X_val (m, n_features), y_val (m,))` is the early-stopping split; without
        it `validation_fraction` of the rows is held out. Preprocessing is fitted on `X` only.
        """
        warm = self.warm_start and hasattr(self, "model_")
        model_spec, train_spec = self._model_spec(), self._train_spec()
        check_schedule(self, model_spec, train_spec)
        threads = self._threads()
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
        target = self.target_ if warm else self._new_target(y)
        val = self._eval_frame(eval_set, frame, target) if eval_set is not None else None
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        data = dataset_from_frame(
            frame, target_frame(y), self._kind, val_fraction=self.validation_fraction,
            seed=seed, weights=weights, features=self.features_ if warm else None,
            target=target, val=val)
        if warm:
            data.schema = self.schema_
        else:
            fit_bins(data, model_spec, seed=seed)
        task = make_task(self._kind, data.target)
        task.check_monitor(self.monitor, field="monitor")
        with using_threads(threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.model_ if warm else build_model(model_spec, data.schema, task.d_out)
            trainer = Trainer(model, task, data, train_spec, seed=seed, quiet=not self.verbose)
            state = trainer.fit()
        model.cpu().eval()  # trained on `device`; predicts on the CPU
        self.model_, self.task_, self.schema_ = model, task, data.schema
        self.features_, self.target_ = data.features, data.target
        self.model_spec_ = model_spec
        self.n_iter_ = state.epoch
        self.best_epoch_ = state.best_epoch
        self.curves_ = state.curves
        self.precision_ = trainer.precision  # what `precision` ("auto") resolved to here
        return self

    def _new_target(self, y: np.ndarray) -> TargetCoder:
        raise NotImplementedError

    def _eval_frame(self, eval_set: Any, frame: pd.DataFrame,
                    target: TargetCoder) -> tuple[pd.DataFrame, pd.Series]:
        """`eval_set` checked like `X`/`y` (same columns, known classes): `(X_val, y_val)`."""
        X_val, y_val = unpack_eval_set(eval_set)
        names = getattr(self, "feature_names_in_", None)
        X_val = align_columns(X_val, [str(c) for c in names] if names is not None else None,
                              self.n_features_in_)
        val = self._frame(X_val, reset=False)
        check_val_frame(frame, val)
        y_val = self._target(y_val)
        check_val_target(y_val, len(val), target)
        return val, target_frame(y_val)

    def _forward(self, X: Any) -> torch.Tensor:
        """Combined predictions `(n, d_out)` (ensemble members merged by the task)."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        num, cat = self.features_.transform(frame)
        x_cat = torch.from_numpy(cat) if self.schema_.categorical else None
        with using_threads(self._threads()):
            out = fixed_batches(self.model_, torch.from_numpy(num), x_cat, PREDICT_BATCH)
        return self.task_.combine(out.double())

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
        self.curves_ = record.get("curves", [])
        self.precision_ = record.get("precision")  # None: saved before it was recorded
