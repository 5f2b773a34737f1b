"""`train.optimizer = "lbfgs"`: one full-batch L-BFGS step per epoch through the one trainer,
its defaults, its state through checkpoint files, and a bitwise resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import crash_after_checkpoint
from safetensors.torch import load, save

import mlplab
from mlplab.data.dataset import Dataset, FeatureSchema, Split
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.errors import RunFileError
from mlplab.spec import TrainSpec, parse_spec
from mlplab.tasks import Regression
from mlplab.train import checkpoint as ckpt
from mlplab.train.trainer import Trainer

LBFGS = {"optimizer": "lbfgs", "epochs": 6, "lbfgs_max_iter": 5}


def formula_data(n: int = 240) -> Dataset:
    """`y = sin(pi x0) + x1^2` on uniform inputs in [-1, 1]."""
    gen = torch.Generator().manual_seed(0)

    def split(rows: int) -> Split:
        x = torch.rand(rows, 2, generator=gen) * 2 - 1
        return Split(x, None, torch.sin(torch.pi * x[:, 0]) + x[:, 1] ** 2)

    schema = FeatureSchema(["a", "b"], [], [])
    return Dataset(schema, FeaturePreprocessor(["a", "b"], []), TargetCoder("regression"),
                   split(n), split(60), split(60))


def test_defaults_follow_the_optimizer():
    spec = TrainSpec(optimizer="lbfgs")
    assert (spec.lr, spec.warmup_epochs, spec.schedule, spec.grad_clip, spec.weight_decay) == (
        1.0, 0.0, "constant", None, 0.0)
    assert TrainSpec(optimizer="lbfgs", lr=0.5, schedule="cosine").lr == 0.5
    assert TrainSpec().lr == 1e-3 and TrainSpec().schedule == "cosine"  # others unchanged
    resolved = parse_spec({"data": {"source": "sklearn:iris"}, "train": {"optimizer": "lbfgs"}})
    assert parse_spec(resolved.model_dump(mode="json")) == resolved  # spec.json round trip


def test_lbfgs_trains_iris_one_full_batch_step_per_epoch(tiny_spec):
    spec = tiny_spec(train=LBFGS)
    del spec["train"]["lr"]  # lbfgs's default, 1
    result = mlplab.train(spec)
    losses = [c["train_loss"] for c in result.curves]
    assert losses[-1] < 0.2 * losses[0]
    assert result.metrics["test"]["accuracy"] > 0.85
    assert all(c["lr"] == 1.0 for c in result.curves)  # constant: no warmup, no cosine


def test_lbfgs_fits_a_formula_with_the_kan_unit():
    from mlplab.build import build_model
    from mlplab.spec import ModelSpec

    data = formula_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec(block="plain", width=4, depth=2, norm="none", unit="kan"),
                        data.schema, 1)
    trainer = Trainer(model, Regression(data.target), data,
                      TrainSpec(optimizer="lbfgs", epochs=8, patience=None), quiet=True)
    state = trainer.fit()
    assert state.step == 8 and state.samples_seen == 8 * len(data.train)  # full batch
    losses = [c["train_loss"] for c in state.curves]
    assert losses[-1] < 0.02 * losses[0]


def test_an_explicit_schedule_applies_to_lbfgs(tiny_spec):
    result = mlplab.train(tiny_spec(train={**LBFGS, "schedule": "cosine", "lr": 0.5}))
    lrs = [c["lr"] for c in result.curves]
    assert lrs[0] == 0.5 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.1


def test_lbfgs_state_round_trips_through_checkpoint_files():
    data = formula_data(64)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.LBFGS(model.parameters(), max_iter=4, history_size=3,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (model(data.train.x).squeeze(-1) - data.train.y).pow(2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    state = opt.state_dict()["state"][0]
    assert isinstance(state["old_dirs"], list) and len(state["old_dirs"]) == 3
    tensors, meta = ckpt.optimizer_to_files(opt.state_dict())
    tensors = load(save({k: v.contiguous() for k, v in tensors.items()}))
    meta = json.loads(ckpt.json_bytes(meta))  # as optimizer.json stores it
    back = ckpt.optimizer_from_files(tensors, meta)["state"][0]
    assert back.keys() == state.keys()
    for name, value in state.items():
        got = back[name]
        assert type(got) is type(value), name
        items = zip(value, got, strict=True) if isinstance(value, list) else [(value, got)]
        for a, b in items:
            assert type(a) is type(b), name
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, name


def test_lbfgs_resume_is_bitwise(tiny_spec, tmp_path: Path):
    spec = tiny_spec(data={"source": "sklearn:wine"}, model={"dropout": 0.2, "width": 12},
                     train={**LBFGS, "monitor": "loss"})
    reference = mlplab.train(spec, out=tmp_path / "ref")

    class Crash(Exception):
        pass

    with crash_after_checkpoint(3, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=tmp_path / "run")
    torch.manual_seed(999)  # the resumed run restores the RNG (dropout) itself
    resumed = mlplab.resume(tmp_path / "run")
    assert resumed.metrics == reference.metrics and resumed.curves is not None
    assert [c["train_loss"] for c in resumed.curves] == [c["train_loss"] for c in reference.curves]
    for name, value in reference.model.state_dict().items():
        assert value.equal(resumed.model.state_dict()[name]), name


def test_a_history_of_the_wrong_size_is_a_run_file_error(tiny_spec, tmp_path: Path):
    spec = tiny_spec(train=LBFGS)

    class Crash(Exception):
        pass

    with crash_after_checkpoint(2, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=tmp_path / "run")
    where = ckpt.latest_checkpoint(tmp_path / "run")
    tensors = ckpt.read_tensors(where / "optimizer.safetensors")
    tensors["0.d"] = tensors["0.d"][:-1].clone()
    ckpt.write_tensors(where / "optimizer.safetensors", tensors)
    with pytest.raises(RunFileError, match="optimizer.json.*'d' has shape"):
        mlplab.resume(tmp_path / "run")
