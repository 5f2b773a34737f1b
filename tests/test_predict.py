"""Predicting raw rows: `LoadedRun.predict`/`predict_proba`, `FramePredictor`, `mlplab predict`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SPEC, merge

import mlplab
from mlplab import cli
from mlplab.data.dataset import infer_task_kind, load_table
from mlplab.data.splits import split_indices
from mlplab.predictions import FramePredictor

SPECS = {
    "iris": {},
    "iris-tabm": {"model": {"block": "plain", "ensemble": "tabm", "k": 3}},
    "digits": {"data": {"source": "sklearn:digits", "max_rows": 300}, "train": {"epochs": 2}},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, mlplab.RunResult]:
    root = tmp_path_factory.mktemp("predict")
    # default precision ("auto": bf16 on an AMX host): the final metrics are of the fp32 model,
    # as predict runs it
    specs = {name: merge(TINY_SPEC, override) for name, override in SPECS.items()}
    specs["diabetes-log"] = merge(TINY_SPEC, {
        "data": {"source": "sklearn:diabetes", "target_transform": "log"}})
    return {name: mlplab.train(spec, out=root / name) for name, spec in specs.items()}


def held_out_rows(result: mlplab.RunResult) -> tuple[pd.DataFrame, pd.Series]:
    """The raw test rows of a run (same load and split as `build_dataset`) and their targets."""
    spec = result.spec
    raw, target = load_table(spec.data, spec.seed)
    y = raw.frame[target]
    task = spec.task.kind if spec.task.kind != "auto" else (raw.kind or infer_task_kind(y))
    kind = "stratified" if task == "classification" else "random"
    _, _, test = split_indices(len(raw.frame), kind=kind, val_fraction=spec.data.val_fraction,
                               test_fraction=spec.data.test_fraction, seed=spec.seed,
                               stratify=y.astype(str).to_numpy() if kind == "stratified" else None)
    return raw.frame.iloc[test], y.iloc[test]


@pytest.mark.parametrize("name", list(SPECS))
def test_predict_reproduces_the_runs_test_metrics(runs, name: str) -> None:
    result = runs[name]
    frame, y = held_out_rows(result)
    run = mlplab.load_run(result.run_dir)
    labels = run.predict(frame)  # the frame still holds the target column: ignored
    assert labels.shape == (len(frame),)
    assert np.mean(labels == y.to_numpy()) == pytest.approx(result.metrics["test"]["accuracy"],
                                                           abs=1e-6)  # float32 mean
    proba = run.predict_proba(frame)
    assert list(proba.columns) == run.target.classes and proba.index.equals(frame.index)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(proba.columns.to_numpy()[proba.to_numpy().argmax(1)], labels)
    true_p = proba.to_numpy()[np.arange(len(y)), [run.target.classes.index(v) for v in y]]
    assert -np.log(true_p).mean() == pytest.approx(result.metrics["test"]["log_loss"], rel=1e-5)
    small = run.predict_proba(frame, batch_size=7)  # batches bound memory, nothing else
    assert np.abs(small.to_numpy() - proba.to_numpy()).max() <= 1e-6


def test_log_target_is_decoded_to_the_target_units(runs) -> None:
    result = runs["diabetes-log"]
    frame, y = held_out_rows(result)
    run = mlplab.load_run(result.run_dir)
    raw = run.predict(frame, raw=True)  # log scale: where the run's metrics live
    rmse_log = np.sqrt(np.mean((raw - np.log(y.to_numpy())) ** 2))
    assert rmse_log == pytest.approx(result.metrics["test"]["rmse"], rel=1e-5)
    values = run.predict(frame)
    assert np.allclose(values, np.exp(raw), rtol=1e-12)
    extra = frame.assign(junk="x")[["junk", *reversed(frame.columns)]]  # order, extras: ignored
    assert np.array_equal(run.predict(extra), values)
    with pytest.raises(mlplab.SpecError, match="regression"):
        run.predict_proba(frame)


def test_missing_columns_are_one_line_naming_them(runs) -> None:
    run = mlplab.load_run(runs["diabetes-log"].run_dir)
    frame, _ = held_out_rows(runs["diabetes-log"])
    with pytest.raises(mlplab.DataError, match=r"^the data lacks the feature column 'bmi' ") as err:
        run.predict(frame.drop(columns="bmi"))
    assert "\n" not in str(err.value)
    with pytest.raises(mlplab.DataError, match="columns 'age', 's1'"):
        run.predict(frame.drop(columns=["s1", "age"]))
    with pytest.raises(mlplab.DataError, match="pandas DataFrame"):
        run.predict(frame.to_numpy())


def write_rows(result: mlplab.RunResult, path) -> pd.DataFrame:
    frame, _ = held_out_rows(result)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_predict_writes_labels_and_probabilities(runs, tmp_path, capsys, suffix: str) -> None:
    result = runs["iris"]
    frame = write_rows(result, tmp_path / f"rows{suffix}")
    out = tmp_path / "preds" / "p.csv"
    assert cli.run(["predict", str(result.run_dir), str(tmp_path / f"rows{suffix}"),
                    "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    table = pd.read_csv(out)
    run = mlplab.load_run(result.run_dir)
    assert list(table.columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert np.array_equal(table["prediction"], run.predict(frame))
    assert np.abs(table.iloc[:, 1:].to_numpy() - run.predict_proba(frame).to_numpy()).max() < 1e-6
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.csv"]  # no temp file left


def test_cli_predict_regression_to_stdout_and_raw(runs, tmp_path, capsys) -> None:
    result = runs["diabetes-log"]
    frame = write_rows(result, tmp_path / "rows.csv")
    run = mlplab.load_run(result.run_dir)
    for flags, want in (([], run.predict(frame)), (["--raw"], run.predict(frame, raw=True))):
        assert cli.run(["predict", str(result.run_dir), str(tmp_path / "rows.csv"), *flags]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "prediction" and len(lines) == len(frame) + 1
        assert np.allclose([float(v) for v in lines[1:]], want, rtol=1e-12)


@pytest.mark.parametrize("case", ["missing column", "no file", "not a table", "no model",
                                  "out is a directory"])
def test_cli_predict_errors_write_nothing(runs, tmp_path, capsys, case: str) -> None:
    model = str(runs["iris"].run_dir)
    frame, _ = held_out_rows(runs["iris"])
    data = tmp_path / "rows.csv"
    frame.drop(columns="petal width (cm)").to_csv(data, index=False)
    if case == "no file":
        data = tmp_path / "absent.csv"
    elif case == "not a table":
        data = tmp_path / "rows.json"
        data.write_text("{}")
    elif case == "no model":
        model = str(tmp_path)
    out = tmp_path / "p.csv"
    if case == "out is a directory":
        out.mkdir()
    assert cli.run(["predict", model, str(data), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    expected = {"missing column": "'petal width (cm)'", "no file": "absent.csv",
                "not a table": "neither CSV nor Parquet", "no model": "saved estimator",
                "out is a directory": "is a directory"}[case]
    assert expected in lines[0]
    assert (out.is_dir() if case == "out is a directory" else not out.exists())
    assert not any(p.name.startswith(".p.csv") for p in tmp_path.iterdir())


def test_saved_estimator_predicts_from_the_cli(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150),
                      "c": rng.choice(["x", "y", "z"], size=150)})
    y = np.where(X["a"] + (X["c"] == "x") > 0.5, "pos", "neg")
    clf = mlplab.MLPClassifier(d_block=16, max_epochs=3, random_state=0).fit(X, y)
    clf.save(tmp_path / "clf")
    X.assign(target=y).to_csv(tmp_path / "rows.csv", index=False)
    assert cli.run(["predict", str(tmp_path / "clf"), str(tmp_path / "rows.csv"),
                    "--out", str(tmp_path / "p.csv")]) == 0
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["prediction", "proba_neg", "proba_pos"]
    assert np.abs(table[["proba_neg", "proba_pos"]].to_numpy() - clf.predict_proba(X)).max() < 1e-5
    assert np.array_equal(table["prediction"], clf.predict(X))


def test_estimator_fitted_on_arrays_takes_a_frame_of_the_array(tmp_path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    reg = mlplab.MLPRegressor(d_block=16, max_epochs=2, random_state=0).fit(X, 3 * X[:, 0] + 5)
    reg.save(tmp_path / "reg")
    got = FramePredictor.load(tmp_path / "reg").predict(pd.DataFrame(X))  # columns 0, 1, 2
    assert np.abs(got - reg.predict(X)).max() < 1e-4


def test_mlplab_predict_stays_the_low_level_forward() -> None:
    assert mlplab.predict.__module__ == "mlplab.infer" and mlplab.LoadedRun is not None
