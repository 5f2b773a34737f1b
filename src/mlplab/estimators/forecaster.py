"""`MLPForecaster`: TSMixer / window MLP / DLinear on long-format frames, trained by the one
trainer (`mlplab.train.Trainer`).

```python
fc = mlplab.MLPForecaster(h=12, input_size=36, model="tsmixer", max_epochs=5).fit(df)
fc.predict()        # unique_id, ds, TSMixer: the h steps after each series' end
```

A scikit-learn estimator (`get_params`/`set_params`, `sklearn.base.clone`): `__init__` only
stores its arguments; what `fit` learns ends with `_` (`model_`, `stats_`, `history_`, ...).
`df` has one row per (series, timestamp): `unique_id, ds, y`, every other numeric column an
exogenous covariate observed in the past (read inside the lookback). The last `val_size`
steps of every series (default: about a tenth, whole horizons, at least `h`) are held out
for early stopping (a forecast from every origin there, `WindowConfig.val_step`); each series
and channel is standardised with the statistics of the rest. `predict(df=...)` forecasts from another
history (same columns; known ids keep their training statistics, new ids get their own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from mlplab.errors import SpecError
from mlplab.forecast import evaluate as ev
from mlplab.forecast.data import Panel, Series, panel_from_frame
from mlplab.forecast.models import FORECAST_MODELS, build_forecast_model
from mlplab.forecast.prepare import Prepared, WindowConfig, default_sizes
from mlplab.spec import TrainSpec

FORMAT = "mlplab-forecaster"
RECORD = "forecaster.json"
WEIGHTS = "model.safetensors"


class MLPForecaster(BaseEstimator):
    """Point forecasts `h` steps ahead from the last `input_size` steps of each series."""

    def __init__(self, *, h: int, input_size: int, model: str = "tsmixer",
                 model_options: dict[str, Any] | None = None, channels: str = "independent",
                 exog: list[str] | None = None, freq: Any = None, stride: int = 1,
                 val_size: int | None = None, gap: int = 0, loss: str = "mse",
                 lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 32,
                 max_epochs: int = 30, patience: int | None = 5, threads: int | None = None,
                 random_state: int = 0, verbose: int = 0, alias: str | None = None) -> None:
        self.h, self.input_size, self.model = h, input_size, model
        self.model_options = model_options
        self.channels, self.exog, self.freq = channels, exog, freq
        self.stride, self.val_size, self.gap, self.loss = stride, val_size, gap, loss
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.max_epochs, self.patience, self.threads = max_epochs, patience, threads
        self.random_state, self.verbose, self.alias = random_state, verbose, alias

    @property
    def name(self) -> str:
        """The forecast column: `alias`, or the model's name (TSMixer, MLP, Linear)."""
        if self.alias:
            return self.alias
        if self.model not in FORECAST_MODELS:
            raise SpecError(f"model: unknown forecasting model {self.model!r}; choose one of "
                            + ", ".join(repr(n) for n in FORECAST_MODELS))
        return FORECAST_MODELS[self.model].display

    def _panel(self, df: pd.DataFrame, exog: list[str] | None) -> Panel:
        return panel_from_frame(df, exog=exog, freq=self.freq, channels=self.channels)

    def _threads(self) -> int:
        from mlplab.train.threads import default_threads

        return self.threads or default_threads()

    def fit(self, df: pd.DataFrame) -> MLPForecaster:
        """Train on the long frame `df`; returns `self`."""
        from mlplab.train.threads import using_threads

        panel = self._panel(df, self.exog)
        val = default_sizes(min(len(s) for s in panel.series), self.h)[0] \
            if self.val_size is None else self.val_size
        config = WindowConfig(self.input_size, self.h, stride=self.stride, val_size=val,
                              gap=self.gap)
        prepared = Prepared(panel, config)
        spec = TrainSpec(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                         epochs=self.max_epochs, patience=self.patience,
                         precision="fp32")  # bf16 ("auto") is not benchmarked for forecasting
        with using_threads(self._threads()), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = build_forecast_model(self.model, self.input_size, self.h, prepared.n_in,
                                       prepared.n_out, self.model_options)
            state = ev.fit(net, prepared, spec, loss=self.loss, seed=self.random_state,
                           quiet=not self.verbose)
        self.model_ = net
        self.n_in_, self.n_out_ = prepared.n_in, prepared.n_out
        self.exog_ = list(panel.exog)
        self.freq_ = panel.freq
        self.stats_ = {tuple(s.ids): (m.tolist(), sd.tolist()) for s, m, sd in
                       zip(panel.series, prepared.mean, prepared.std, strict=True)}
        self.history_ = panel
        self.n_epochs_, self.best_epoch_, self.curves_ = state.epoch, state.best_epoch, \
            state.curves
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this MLPForecaster is not fitted yet; call fit(df) first")

    def predict(self, h: int | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecasts of the `h` (<= the fitted `h`) steps after the end of every series of
        `df` (default: the training frame), as a long frame `(unique_id, ds, <name>)`."""
        self._check_fitted()
        h = self.h if h is None else h
        if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= self.h:
            raise ValueError(f"h: this model forecasts 1 to {self.h} steps, got {h!r}; fit "
                             "another with a larger h")
        panel = self.history_ if df is None else panel_from_frame(
            df, id_col=self.history_.id_col, time_col=self.history_.time_col,
            target=self.history_.target, exog=self.exog_, freq=self.freq_,
            channels=self.channels)
        from mlplab.train.threads import using_threads

        with using_threads(self._threads()):
            frame = ev.forecast_ahead(self.model_, panel, self.stats_,
                                      input_size=self.input_size, h=h, column=self.name)
        return frame.rename(columns={panel.id_col: "unique_id", panel.time_col: "ds"})

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write `forecaster.json` + `model.safetensors` to the directory `path` (no pickle);
        the JSON keeps the last `input_size` steps of every series, so `predict()` works
        after `load`."""
        from mlplab.train import checkpoint as ckpt

        self._check_fitted()
        path = Path(path)
        panel = self.history_
        tails = [{"ids": s.ids, "ds": _json_times(s.ds[-self.input_size:]),
                  "y": s.y[-self.input_size:].tolist(), "x": s.x[-self.input_size:].tolist()}
                 for s in panel.series]
        record = {
            "format": FORMAT, "version": 1, "params": self.get_params(),
            "n_in": self.n_in_, "n_out": self.n_out_, "exog": self.exog_,
            "freq": self.freq_, "columns": [panel.id_col, panel.time_col, panel.target],
            "stats": [{"ids": list(k), "mean": m, "std": sd} for k, (m, sd) in self.stats_.items()],
            "history": tails, "n_epochs": self.n_epochs_, "best_epoch": self.best_epoch_,
            "curves": self.curves_,
        }
        path.mkdir(parents=True, exist_ok=True)
        ckpt.write_tensors(path / WEIGHTS, self.model_.state_dict())
        ckpt.write_json(path / RECORD, record)

    @classmethod
    def load(cls, path: str | Path) -> MLPForecaster:
        """A forecaster saved with `save(path)`; it predicts exactly as before saving."""
        from mlplab.train import checkpoint as ckpt

        path = Path(path)
        record = ckpt.read_json(path / RECORD, keys=("format", "params", "history"))
        if record["format"] != FORMAT:
            raise SpecError(f"{str(path / RECORD)!r} is not an mlplab forecaster file")
        est = cls(**record["params"])
        net = build_forecast_model(est.model, est.input_size, est.h, record["n_in"],
                                   record["n_out"], est.model_options)
        ckpt.load_weights(net, path / WEIGHTS)
        net.eval()
        id_col, time_col, target = record["columns"]
        freq = record["freq"]
        series = [Series(t["ids"], _times(t["ds"], freq),
                         np.asarray(t["y"], float).reshape(len(t["ds"]), -1),
                         np.asarray(t["x"], float).reshape(len(t["ds"]), -1))
                  for t in record["history"]]
        est.model_, est.n_in_, est.n_out_ = net, record["n_in"], record["n_out"]
        est.exog_, est.freq_ = record["exog"], freq
        est.stats_ = {tuple(s["ids"]): (s["mean"], s["std"]) for s in record["stats"]}
        est.history_ = Panel(series, freq, record["exog"], id_col, time_col, target,
                             est.channels)
        est.n_epochs_, est.best_epoch_ = record.get("n_epochs", 0), record.get("best_epoch", 0)
        est.curves_ = record.get("curves", [])
        return est


def _json_times(ds: np.ndarray) -> list[Any]:
    if np.issubdtype(ds.dtype, np.datetime64):
        return [str(pd.Timestamp(t)) for t in ds]
    return [int(t) for t in ds]


def _times(values: list[Any], freq: Any) -> np.ndarray:
    if isinstance(freq, str):
        return pd.DatetimeIndex(pd.to_datetime(values)).to_numpy()
    return np.asarray(values, dtype=np.int64)
