"""Train a forecasting model with the one trainer, and score rolling-origin forecasts.

`fit` wraps the windows as a `Dataset` for `mlplab.train.Trainer`; `forecasts` maps a model's
standardised outputs back to each series' units; `score` computes MAE/MSE/MASE/sMAPE per
series on the original scale (MASE against the seasonal naive on the training part) and their
mean over series; `baseline` gives seasonal-naive / ETS forecasts on the same windows;
`forecast_ahead` forecasts the steps after the end of every series (what `MLPForecaster.predict`
and `mlplab forecast RUN` return).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlplab.data.dataset import Dataset, Split
from mlplab.errors import DataError
from mlplab.forecast import baselines, metrics
from mlplab.forecast.data import Panel, frame_of
from mlplab.forecast.prepare import Prepared, Windows, series_stats
from mlplab.forecast.task import Forecast
from mlplab.spec import TrainSpec
from mlplab.tasks import predict_batches

BASELINES = ("seasonal_naive", "ets")


def fit(model: nn.Module, prepared: Prepared, spec: TrainSpec, *, loss: str = "mse",
        seed: int = 0, quiet: bool = True, run_dir: Any = None) -> Any:
    """Train `model` on the train windows, early-stopping on the validation windows (the train
    windows when there are none); returns the trainer's `TrainState`."""
    from mlplab.train.trainer import Trainer

    train, val = prepared.windows("train"), prepared.windows("val")
    if not len(val):
        val = train
    test = prepared.windows("test")
    data = Dataset(None, None, None, Split(train.x, None, train.y),  # type: ignore[arg-type]
                   Split(val.x, None, val.y), Split(test.x, None, test.y))
    task = Forecast(prepared.config.h, prepared.n_out, loss=loss)
    trainer = Trainer(model, task, data, spec, seed=seed, quiet=quiet, run_dir=run_dir)
    if run_dir is not None:
        trainer.resume()
    state = trainer.fit()
    model.eval()
    return state


def predict_scaled(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """Standardised forecasts `(n, h, C_y)` for windows `x (n, L, C_in)`."""
    return predict_batches(model, lambda rows: (x[rows], None), len(x), batch).double().numpy()


def forecasts(model: nn.Module, prepared: Prepared, windows: Windows) -> np.ndarray:
    """The model's forecasts for `windows` in original units `(n, h, C_y)`."""
    out = predict_scaled(model, windows.x)
    if not len(windows):
        return out
    return np.stack([prepared.decode(int(i), o) for i, o in zip(windows.series, out,
                                                                strict=True)])


def truths(prepared: Prepared, windows: Windows) -> np.ndarray:
    """The true targets of `windows` in original units `(n, h, C_y)`."""
    h = prepared.config.h
    series = prepared.panel.series
    return np.stack([series[i].y[t: t + h] for i, t in zip(windows.series, windows.starts,
                                                            strict=True)])


def baseline(prepared: Prepared, windows: Windows, kind: str, season: int) -> np.ndarray:
    """Seasonal-naive or ETS forecasts `(n, h, C_y)` on the same windows, original units."""
    if kind not in BASELINES:
        raise ValueError(f"baseline: expected one of {BASELINES}, got {kind!r}")
    out = np.empty((len(windows), prepared.config.h, prepared.n_out))
    for i, s in enumerate(prepared.panel.series):
        mask = windows.series == i
        if not mask.any():
            continue
        starts = windows.starts[mask]
        if kind == "seasonal_naive":
            out[mask] = baselines.seasonal_naive(s.y, starts, prepared.config.h, season)
        else:
            out[mask] = baselines.ets(s.y, starts, prepared.config.h, season,
                                      train_end=prepared.bounds[i].train[1])
    return out


def score(prepared: Prepared, windows: Windows, forecast: np.ndarray, season: int,
          ) -> tuple[dict[str, float], pd.DataFrame]:
    """`(mean over series of each metric, one row per series)`, original units."""
    truth = truths(prepared, windows)
    rows = []
    for i, s in enumerate(prepared.panel.series):
        mask = windows.series == i
        if not mask.any():
            continue
        scale = metrics.mase_scale(s.y[: prepared.bounds[i].train[1]], season)
        rows.append({"unique_id": ", ".join(s.ids),
                     **metrics.score(truth[mask], forecast[mask], scale)})
    table = pd.DataFrame(rows)
    means = {m: float(table[m].mean()) for m in metrics.METRICS} if rows else {}
    return means, table


def long_frame(prepared: Prepared, windows: Windows, forecast: np.ndarray,
               column: str) -> pd.DataFrame:
    """Rolling-origin forecasts as a long frame `(unique_id, ds, cutoff, column, y)`."""
    panel, h = prepared.panel, prepared.config.h
    parts = []
    for w, (i, t) in enumerate(zip(windows.series, windows.starts, strict=True)):
        s = panel.series[i]
        frame = frame_of(panel, s, s.ds[t: t + h], forecast[w], column)
        frame.insert(2, "cutoff", s.ds[t - 1])
        frame[panel.target] = frame_of(panel, s, s.ds[t: t + h], s.y[t: t + h], "y")["y"]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


Stats = dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]


def forecast_ahead(model: nn.Module, panel: Panel, stats: Stats, *, input_size: int, h: int,
                   column: str) -> pd.DataFrame:
    """Forecasts of the `h` steps after the end of every series of `panel`, a long frame
    `(id, time, column)` in the panel's column names.

    Each series' last `input_size` steps are standardised with its training statistics
    `stats[ids]` (`(mean, std)` per channel; an id not in `stats` gets its own,
    `series_stats`), forecast by `model` (`(n, L, C_in) -> (n, >= h, C_y)`), and mapped back.
    """
    windows, scales = [], []
    for s in panel.series:
        raw = np.concatenate([s.y, s.x], axis=1)
        if len(raw) < input_size:
            raise DataError(f"series {', '.join(s.ids)!r} has {len(raw)} time steps; "
                            f"forecasting needs the last input_size = {input_size}")
        known = stats.get(tuple(s.ids))
        mean, std = (np.asarray(known[0]), np.asarray(known[1])) if known is not None \
            else series_stats(raw)
        windows.append(torch.as_tensor((raw[-input_size:] - mean) / std, dtype=torch.float32))
        scales.append((mean, std))
    out = predict_scaled(model, torch.stack(windows))
    parts = []
    for s, o, (mean, std) in zip(panel.series, out, scales, strict=True):
        n = s.y.shape[1]
        parts.append(frame_of(panel, s, panel.future(s, h), (o * std[:n] + mean[:n])[:h],
                              column))
    return pd.concat(parts, ignore_index=True)
