"""`train.device` / the estimators' `device`: resolution and errors on any machine; the same
paths on CUDA under the `gpu` marker (skipped with a reason where CUDA is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_SPEC, merge

import mlplab
from mlplab.errors import SpecError
from mlplab.train import device as dev

NO_CUDA = not torch.cuda.is_available()


def test_auto_is_cuda_when_present_else_cpu() -> None:
    assert dev.resolve_device("auto").type == ("cpu" if NO_CUDA else "cuda")
    assert dev.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not NO_CUDA, reason="checks the error of an absent CUDA device")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:7"])
def test_absent_cuda_is_a_spec_error_naming_the_field(name: str) -> None:
    with pytest.raises(SpecError, match=rf"^train.device: '{name}' is not available"):
        dev.resolve_device(name)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has mps")
def test_absent_mps_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="train.device: 'mps' is not available"):
        dev.resolve_device("mps")


def test_unknown_device_names_the_field() -> None:
    with pytest.raises(SpecError, match="device: unknown device 'tpu'"):
        dev.resolve_device("tpu", field="device")
    with pytest.raises(SpecError, match="train.device"):
        mlplab.spec.parse_spec(merge(TINY_SPEC, {"train": {"device": "gpu0"}}))


@pytest.mark.skipif(not NO_CUDA, reason="checks the error of an absent CUDA device")
def test_run_on_an_absent_device_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="train.device: 'cuda' is not available"):
        mlplab.train(merge(TINY_SPEC, {"train": {"device": "cuda"}}), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not NO_CUDA, reason="checks the error of an absent CUDA device")
def test_estimator_cuda_is_refused_with_the_reason() -> None:
    import numpy as np

    with pytest.raises(SpecError, match=r"^device: 'cuda' is not available here \(torch.cuda"):
        mlplab.MLPClassifier(device="cuda", max_epochs=1).fit(np.zeros((8, 2)), [0, 1] * 4)


def test_cpu_training_keeps_data_where_it_is() -> None:
    from mlplab.run import prepare_run
    from mlplab.spec import parse_spec
    from mlplab.train.trainer import Trainer

    spec = parse_spec(TINY_SPEC)
    data, task, model, _ = prepare_run(spec)
    trainer = Trainer(model, task, data, spec.train, quiet=True)
    assert trainer.device == torch.device("cpu") and trainer.resident
    assert trainer.data.train.x is data.train.x  # no copy on the CPU
    assert dev.to_device(data.train.x, torch.device("cpu")) is data.train.x


def _split(n: int = 50):
    from mlplab.data.dataset import Split

    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(n, 3, generator=g), torch.randint(0, 4, (n, 2), generator=g),
                 torch.randint(0, 2, (n,), generator=g), torch.rand(n, generator=g))


def test_cpu_batches_are_plain_indexing() -> None:
    split, idx = _split(), torch.tensor([4, 1, 7])
    got = dev.HostBatches(torch.device("cpu"))(split, idx)
    for a, b in zip(got, (split.x[idx], split.x_cat[idx], split.y[idx], split.w[idx]),
                    strict=True):
        assert torch.equal(a, b) and not a.is_pinned()


def test_device_is_recorded_in_the_resolved_spec(tmp_path: Path) -> None:
    mlplab.train(TINY_SPEC, out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["train"]["device"] == "auto"


# -- the same paths on a GPU -------------------------------------------------------------

gpu = pytest.mark.gpu


@gpu
def test_gpu_run_resumes_and_loads_on_the_cpu(tmp_path: Path) -> None:
    spec = merge(TINY_SPEC, {"train": {"device": "cuda"}})
    full = mlplab.train(spec, out=tmp_path / "full")
    assert next(full.model.parameters()).device.type == "cpu"
    stopped = {"n": 0}

    def stop() -> bool:
        stopped["n"] += 1
        return stopped["n"] == 2

    with pytest.raises(mlplab.errors.TrainingStopped):
        mlplab.train(spec, out=tmp_path / "part", stop=stop)
    resumed = mlplab.run.resume(tmp_path / "part")
    assert resumed.metrics["test"]["accuracy"] == pytest.approx(
        full.metrics["test"]["accuracy"], abs=0.05)
    loaded = mlplab.load_run(tmp_path / "full")  # safetensors, read to the CPU
    assert next(loaded.model.parameters()).device.type == "cpu"


@gpu
def test_gpu_pinned_host_path_when_the_data_does_not_fit(monkeypatch) -> None:
    from mlplab.run import prepare_run
    from mlplab.spec import parse_spec
    from mlplab.train.trainer import Trainer

    monkeypatch.setattr(dev, "FIT_FRACTION", 0.0)
    spec = parse_spec(merge(TINY_SPEC, {"train": {"device": "cuda"}}))
    data, task, model, _ = prepare_run(spec)
    trainer = Trainer(model, task, data, spec.train, quiet=True)
    assert not trainer.resident and trainer.data.train.x.is_pinned()
    trainer.fit()
    assert trainer.evaluate(trainer.data.test)["accuracy"] > 0.5


@gpu
def test_gpu_estimator_fits_and_predicts() -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    est = mlplab.MLPClassifier(device="cuda", max_epochs=5, random_state=0).fit(X, y)
    assert (est.predict(X) == y).mean() > 0.6


def test_bench_peaks_name_their_device() -> None:
    from mlplab.bench.peak import measure_peaks

    rows = measure_peaks(n=64, seconds=0.003)
    devices = {r["device"] for r in rows}
    assert devices == {"cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))}
    assert {r["dtype"] for r in rows if r["device"] == "cpu"} == {"float32", "bfloat16"}


@gpu
def test_gpu_host_batches_reuse_two_pinned_staging_buffers() -> None:
    """A host split (pinned once) reaches the GPU through two pinned buffers allocated once:
    no pinning per batch, the same values as indexing."""
    split = _split(200)
    split = type(split)(*(t.pin_memory() for t in (split.x, split.x_cat, split.y, split.w)))
    batches = dev.HostBatches(torch.device("cuda"))
    seen = []
    for step in range(6):
        idx = torch.randperm(200)[:32 - step]  # a smaller last batch reuses the buffers too
        got = batches(split, idx)
        assert all(t.device.type == "cuda" for t in got)
        assert torch.equal(got[0].cpu(), split.x[idx]) and torch.equal(got[2].cpu(), split.y[idx])
        seen.append(batches._slots["x"][batches._turn][0].data_ptr())
    assert len(set(seen)) == 2
