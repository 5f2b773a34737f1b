"""`precision = "auto"` is the default: what a run resolved it to is recorded, and a resumed
run keeps the precision it started with even where "auto" resolves otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import checkpointed_epochs, crash_after_checkpoint

import mlplab
from mlplab.errors import RunFileError
from mlplab.spec import TrainSpec, parse_spec
from mlplab.train import checkpoint as ckpt
from mlplab.train import speed


def host(monkeypatch: pytest.MonkeyPatch, amx: bool) -> None:
    """Make "auto" resolve as on a CPU with (bf16) or without (fp32) AMX tiles."""
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: amx)


def test_auto_is_the_default_of_the_spec_and_the_estimators() -> None:
    assert TrainSpec().precision == "auto"
    assert parse_spec({"data": {"source": "sklearn:iris"}}).train.precision == "auto"
    for est in (
        mlplab.MLPClassifier(),
        mlplab.MLPRegressor(),
        mlplab.TabMClassifier(),
        mlplab.TabMRegressor(),
    ):
        assert est.get_params()["precision"] == "auto", type(est).__name__


@pytest.mark.parametrize("amx", [True, False])
def test_a_run_records_the_precision_auto_resolved_to(
    monkeypatch, tiny_spec, tmp_path: Path, amx: bool
) -> None:
    host(monkeypatch, amx)
    result = mlplab.train(tiny_spec(train={"epochs": 1}), out=tmp_path / "run")
    want = "bf16" if amx else "fp32"
    assert result.timings["precision"] == want
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["timings"]["precision"] == want  # what `mlplab info` shows
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["train"]["precision"] == "auto"


def test_an_explicit_precision_is_recorded_as_given(monkeypatch, tiny_spec) -> None:
    host(monkeypatch, True)
    result = mlplab.train(tiny_spec(train={"epochs": 1, "precision": "fp32"}))
    assert result.timings["precision"] == "fp32"


def killed_after(epoch: int, spec: dict, out: Path) -> None:
    """Train `spec` into `out` as a run killed right after `epoch`'s checkpoint leaves it."""

    class Crash(Exception):
        pass

    with crash_after_checkpoint(epoch, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=out)


@pytest.mark.parametrize(("started", "resumed"), [(True, False), (False, True)])
def test_resume_on_another_host_keeps_the_precision_the_run_started_with(
    monkeypatch, tiny_spec, tmp_path: Path, started: bool, resumed: bool
) -> None:
    spec = tiny_spec(train={"epochs": 4})  # precision left at "auto"
    host(monkeypatch, started)
    reference = mlplab.train(spec, out=tmp_path / "ref")

    killed_after(2, spec, tmp_path / "run")
    assert checkpointed_epochs(tmp_path / "run") == 2
    host(monkeypatch, resumed)  # "auto" now resolves to the other precision
    again = mlplab.resume(tmp_path / "run")
    assert again.timings["precision"] == reference.timings["precision"]
    assert again.metrics == reference.metrics  # bitwise: the same steps at the same precision
    for name, value in reference.model.state_dict().items():
        assert value.equal(again.model.state_dict()[name]), name


def test_a_checkpoint_without_a_recorded_precision_resumes_at_this_hosts(
    monkeypatch, tiny_spec, tmp_path: Path
) -> None:
    host(monkeypatch, False)
    out = tmp_path / "run"

    killed_after(1, tiny_spec(train={"epochs": 2}), out)
    state = ckpt.latest_checkpoint(out) / "state.json"
    record = json.loads(state.read_text())
    assert record.pop("precision") == "fp32"
    state.write_text(json.dumps(record))  # as a run from before the field existed wrote it
    assert mlplab.resume(out).timings["precision"] == "fp32"


def test_a_corrupt_recorded_precision_is_a_run_file_error(tiny_spec, tmp_path: Path) -> None:
    out = tmp_path / "run"

    killed_after(1, tiny_spec(train={"epochs": 2}), out)
    state = ckpt.latest_checkpoint(out) / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "precision": "fp64"}))
    with pytest.raises(RunFileError, match="state.json"):
        mlplab.resume(out)


def test_resolution_follows_the_device() -> None:
    assert speed.resolve_precision("auto", torch.device("meta")) == "fp32"


@pytest.mark.parametrize("amx", [True, False])
def test_an_estimator_records_what_auto_resolved_to(monkeypatch, tmp_path: Path, amx: bool) -> None:
    from sklearn.datasets import load_iris

    host(monkeypatch, amx)
    X, y = load_iris(return_X_y=True)
    est = mlplab.MLPClassifier(d_block=16, n_blocks=1, max_epochs=1, threads=1, random_state=0)
    est.fit(X, y)
    assert est.precision == "auto" and est.precision_ == ("bf16" if amx else "fp32")
    est.save(str(tmp_path / "est"))
    assert mlplab.load(str(tmp_path / "est")).precision_ == est.precision_
