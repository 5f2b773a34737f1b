"""`task.kind = "forecast"` specs: train, resume, the run's report, `mlplab forecast`."""

import json

import numpy as np
import pandas as pd
import pytest

import mlplab
from mlplab.errors import SpecError, TrainingStopped


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "s.csv"
    t = np.arange(160)
    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2020-01-01", periods=160,
                                                                 freq="D"),
                           "y": k + np.sin(2 * np.pi * t / 7) + 0.1 * rng.normal(size=160)})
             for k, uid in enumerate(["a", "b"])]
    pd.concat(parts).to_csv(path, index=False)
    return path


def spec(path, **train):
    return {"name": "f", "seed": 0, "data": {"source": str(path)},
            "task": {"kind": "forecast", "options": {"h": 7, "input_size": 21, "season": 7}},
            "model": {"block": "tsmixer", "width": 4, "depth": 1,
                      "dropout": 0.1},
            "train": {"epochs": 3, "batch_size": 16, "patience": None, **train}}


def test_train_writes_original_scale_report_and_forecasts(series_csv, tmp_path):
    result = mlplab.train(spec(series_csv), out=tmp_path / "run")
    report = json.loads((tmp_path / "run" / "forecast.json").read_text())
    assert set(report) >= {"model", "seasonal_naive", "ets", "per_series"}
    assert [r["unique_id"] for r in report["per_series"]] == ["a", "b"]
    assert report["seasonal_naive"]["mae"] > 0 and "mase" in report["model"]
    frame = pd.read_csv(tmp_path / "run" / "forecasts.csv")
    assert list(frame.columns) == ["unique_id", "ds", "cutoff", "forecast", "y"]
    assert result.metrics["test"]["mae"] >= 0
    from mlplab.forecast.cli import forecast_table

    out = forecast_table(str(tmp_path / "run"), str(series_csv), 3)
    assert list(out.columns) == ["unique_id", "ds", "forecast"] and len(out) == 6
    assert str(out.ds.iloc[0]).startswith("2020-06-09")  # the day after the last


def test_resume_ends_like_an_uninterrupted_run(series_csv, tmp_path):
    whole = mlplab.train(spec(series_csv))
    calls = []
    with pytest.raises(TrainingStopped):
        mlplab.train(spec(series_csv), out=tmp_path / "r",
                     stop=lambda: calls.append(1) or len(calls) >= 2)
    resumed = mlplab.train(spec(series_csv), out=tmp_path / "r", resume=True)
    assert resumed.metrics["test"] == whole.metrics["test"]


def test_forecast_options_and_head_are_checked(series_csv):
    bad = spec(series_csv)
    bad["task"]["options"]["horizon"] = 3
    with pytest.raises(SpecError, match="task.options.horizon: unknown key"):
        mlplab.train(bad)
    pool = spec(series_csv)
    pool["model"].update(adapter="sequence", head="pool")
    with pytest.raises(SpecError, match="model.head: a forecast run builds its 'tsmixer' model"):
        mlplab.train(pool)


def test_repro_tsmixer_runs_a_small_protocol(tmp_path):
    verdict = mlplab.repro("tsmixer", out=tmp_path / "r", protocol={
        "series": ["a10"], "seeds": [0, 1], "steps": 40, "digits": False, "min_ets": 0})
    assert (tmp_path / "r" / "verdict.md").is_file()
    assert list(verdict.table["cell"]) == ["a10"]
    assert {"tsmixer", "ets", "seasonal_naive"} <= set(verdict.table.columns)
    assert any("ties or beats ETS on" in n for n in verdict.notes)



def test_spec_and_forecaster_build_and_train_the_same_model(series_csv):
    """One TSMixer: a forecast spec builds `mlplab.forecast.TSMixer` (width = ff_dim, depth =
    mixing layers) with the parameters `MLPForecaster` builds for the same seed, and trains it
    to the same weights on the same windows."""
    import torch

    from mlplab.domains import build_data, build_run_model, run_task
    from mlplab.forecast.models import TSMixer, build_forecast_model
    from mlplab.spec import parse_spec

    settings = spec(series_csv, threads=1, weight_decay=0.0, precision="fp32")  # as MLPForecaster
    settings["model"]["norm"] = "batchnorm"
    run = parse_spec(settings)
    data = build_data(run)
    torch.manual_seed(5)
    built = build_run_model(data.kind, run.model, data.schema, run_task(run, data).d_out)
    torch.manual_seed(5)
    direct = build_forecast_model("tsmixer", 21, 7, 1, 1,
                                  {"n_blocks": 1, "ff_dim": 4, "dropout": 0.1})
    assert type(built) is TSMixer and len(built.blocks) == 1
    assert built.blocks[0].hidden == 4 and built.revin is not None
    a, b = built.state_dict(), direct.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = data.train.x[:5]
    built.eval(), direct.eval()
    assert torch.equal(built(x), direct(x)) and built(x).shape == (5, 7, 1)

    # training: the forecaster on the series without the spec's test part (28 steps) holds
    # out the same 14 validation steps, so both train on the same windows
    result = mlplab.train(settings)
    frame = pd.read_csv(series_csv, parse_dates=["ds"])
    fc = mlplab.MLPForecaster(h=7, input_size=21, model="tsmixer", model_options={
        "n_blocks": 1, "ff_dim": 4, "dropout": 0.1}, max_epochs=3, batch_size=16,
        patience=None, threads=1, lr=run.train.lr, weight_decay=0.0, val_size=14)
    fc.fit(frame.groupby("unique_id").head(160 - 28))
    a, b = result.model.state_dict(), fc.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_spec_model_names_and_width_knob(series_csv):
    """`task.options.model` picks mlp / linear; budget matching solves TSMixer's ff_dim."""
    from mlplab.forecast.models import DLinear, WindowMLP
    from mlplab.lab.budget import ModelMeter, solve_spec
    from mlplab.spec import parse_spec

    for name, cls in (("mlp", WindowMLP), ("linear", DLinear)):
        settings = spec(series_csv)
        settings["model"] = {"width": 8, "depth": 1}
        settings["task"]["options"]["model"] = name
        assert isinstance(mlplab.train(settings).model, cls)
    plain = spec(series_csv)
    plain["task"]["options"]["instance_norm"] = False
    assert mlplab.train(plain).model.revin is None  # RevIN off: the one switch for every model
    run = parse_spec(spec(series_csv))
    solved_spec, solved = solve_spec(ModelMeter(run), run, 1500, kind="params")
    assert abs(solved.error) <= 0.05 and solved_spec.model.width != run.model.width
    bad = spec(series_csv)
    bad["task"]["options"]["model"] = "tsmixr"
    with pytest.raises(SpecError, match="task.options.model"):
        mlplab.train(bad)


def test_sweep_axes_set_task_options(series_csv):
    """Families and axes set keys inside task.options (the forecast kind checks them), and a
    parameter budget matches TSMixer and the MLP while DLinear keeps its own size."""
    from mlplab.lab.plan import family_spec, plan
    from mlplab.lab.spec import parse_sweep

    base = spec(series_csv)
    base.pop("seed")
    base["model"]["block"] = "standard"  # the MLP's block (TSMixer uses its mixing layers)
    sweep = parse_sweep({**base, "seeds": [0], "budget": {"params": [4000]},
                         "analysis": {"metric": "test.mae", "loss": "test.mse"},
                         "axes": {"task.options.model": ["tsmixer", "mlp", "linear"],
                                  "task.options.h": [3, 7]}})
    labels = [label for label, _ in sweep.labelled_families()]
    assert labels[:2] == ["model=tsmixer h=3", "model=tsmixer h=7"] and len(labels) == 6
    one = family_spec(sweep, {"task.options.model": "mlp", "task.options.h": 3})
    assert one.task.options == {"h": 3, "input_size": 21, "season": 7, "model": "mlp"}
    _, rows = plan(sweep)
    params = {r["family"]: r["params"] for r in rows}
    assert all(abs(params[f"model={m} h={h}"] - 4000) <= 200 for m in ("tsmixer", "mlp")
               for h in (3, 7))
    assert params["model=linear h=7"] == 2 * (21 * 7 + 7)  # DLinear: no width to solve
    for family, message in (({"task.options.input_sise": 14},
                             r"family 'a': task.options.input_sise: unknown key; did you mean "
                             r"'input_size'"),
                            ({"task.options.h": 0}, r"family 'a': task.options.h: .*greater than or equal to 1"),
                            ({"task.options.h.x": 1}, r"'task.options.h.x' is not a run-spec")):
        with pytest.raises(SpecError, match=message):
            parse_sweep({**base, "family": {"a": family}})
