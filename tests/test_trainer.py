"""The trainer: learning, early stopping with best-weights restore, NaN handling, schedule,
batching, optimizer groups, determinism, the frozen lift, and saving/loading a run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mlplab
from mlplab import cli
from mlplab.build import build_model
from mlplab.data import FeaturePreprocessor, TargetCoder, build_dataset
from mlplab.data.dataset import Dataset, FeatureSchema, Split
from mlplab.errors import SpecError, TrainingError
from mlplab.spec import ModelSpec, TrainSpec
from mlplab.tasks import Classification, predict_batches
from mlplab.train import checkpoint as ckpt
from mlplab.train.optim import make_optimizer
from mlplab.train.trainer import Trainer, batch_starts, lr_factor

FEATURES = ["a", "b", "c", "d"]


def toy_data(*, flip_val: bool = False, seed: int = 0) -> Dataset:
    """Binary labels `a + b > 0`; with `flip_val` the validation labels are inverted, so the
    better the model fits train, the worse it scores on val."""
    gen = torch.Generator().manual_seed(seed)

    def split(n: int, flip: bool = False) -> Split:
        x = torch.randn(n, 4, generator=gen)
        y = (x[:, 0] + x[:, 1] > 0).long()
        return Split(x, None, 1 - y if flip else y)

    schema = FeatureSchema(FEATURES, [], [])
    return Dataset(schema, FeaturePreprocessor(FEATURES, []),
                   TargetCoder("classification", classes=[0, 1]),
                   split(200), split(60, flip_val), split(60))


def toy_model(seed: int = 0, **model) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelSpec(**{"width": 16, "depth": 1, **model}), toy_data().schema, 2)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- learning ---------------------------------------------------------------------------


def test_loss_decreases_on_a_tiny_problem():
    data = toy_data()
    trainer = Trainer(toy_model(), Classification(2), data,
                      TrainSpec(epochs=15, lr=1e-2, batch_size=32, patience=None), quiet=True)
    state = trainer.fit()
    losses = [c["train_loss"] for c in state.curves]
    assert len(losses) == 15 and state.epoch == 15 and not state.stopped_early
    assert losses[-1] < 0.5 * losses[0]
    assert trainer.evaluate(data.train)["accuracy"] > 0.9
    assert trainer.evaluate(data.test)["accuracy"] > 0.85
    assert state.samples_seen == 15 * 200 and state.step == 15 * len(batch_starts(200, 32))


def test_early_stopping_restores_best_weights(tmp_path: Path):
    data = toy_data(flip_val=True)
    spec = TrainSpec(epochs=30, patience=3, lr=1e-2, batch_size=32, schedule="constant",
                     warmup_epochs=0, monitor="accuracy")
    model = toy_model()
    trainer = Trainer(model, Classification(2), data, spec, quiet=True, run_dir=tmp_path)
    state = trainer.fit()
    assert state.stopped_early
    assert state.epoch == state.best_epoch + 3 < 30
    val_acc = [c["val_accuracy"] for c in state.curves]
    assert state.best_value == max(val_acc) == val_acc[state.best_epoch - 1]
    # the model now holds the best epoch's weights, not the last epoch's
    restored = weights(model)
    assert trainer.evaluate(data.val)["accuracy"] == state.best_value
    last = ckpt.latest_checkpoint(tmp_path)
    assert last is not None and last.name == f"epoch-{state.epoch:06d}"
    assert not same_weights(restored, ckpt.read_tensors(last / "model.safetensors"))
    assert same_weights(restored, ckpt.read_tensors(last / "best.safetensors"))
    # ... which are exactly what training for best_epoch epochs (same seed) ends with
    reference = toy_model()
    ref_spec = spec.model_copy(update={"epochs": state.best_epoch, "patience": None})
    Trainer(reference, Classification(2), data, ref_spec, quiet=True).fit()
    assert same_weights(restored, weights(reference))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path: Path):
    data, task = toy_data(), Classification(2)
    model = toy_model()
    trainer = Trainer(model, task, data, TrainSpec(epochs=6, patience=None), quiet=True,
                      run_dir=tmp_path)
    real_loss = task.loss

    def poisoned(out, y, w=None):  # NaN from the third epoch's first training step on
        value = real_loss(out, y, w)
        return value * math.nan if trainer.state.epoch >= 2 and torch.is_grad_enabled() else value

    task.loss = poisoned
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    msg = str(err.value)
    assert "training loss became nan at epoch 3" in msg
    assert "train.lr" in msg and str(tmp_path) in msg and "\n" not in msg
    # honest: the checkpoint survives, but resuming the same spec would diverge again
    assert "checkpoint of epoch 2" in msg and "resuming replays the same steps" in msg
    assert ckpt.read_json(tmp_path / ckpt.FAILED_FILE)["error"] == msg
    last = ckpt.latest_checkpoint(tmp_path)
    assert last is not None and last.name == "epoch-000002"
    assert ckpt.read_json(last / "state.json")["epoch"] == 2
    saved = ckpt.read_tensors(last / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in saved.values() if t.is_floating_point())


def test_nan_gradient_with_finite_loss_never_reaches_a_checkpoint(tmp_path: Path):
    data, task = toy_data(), Classification(2)
    model = toy_model()
    trainer = Trainer(model, task, data, TrainSpec(epochs=6, patience=None, grad_clip=None),
                      quiet=True, run_dir=tmp_path)
    first = next(p for p in model.parameters() if p.requires_grad)
    last_step_of_epoch_2 = 2 * trainer.steps_per_epoch - 1
    first.register_hook(  # every loss stays finite; only this one gradient is poisoned
        lambda g: g * math.nan if trainer.state.step == last_step_of_epoch_2 else g)
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    msg = str(err.value)
    assert "weights became non-finite during epoch 2" in msg and str(tmp_path) in msg
    assert not torch.isfinite(first).all()  # the poison did reach the live weights ...
    last = ckpt.latest_checkpoint(tmp_path)  # ... but not the checkpoint
    assert last is not None and last.name == "epoch-000001"
    saved = ckpt.read_tensors(last / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in saved.values() if t.is_floating_point())


def test_huge_learning_rate_raises_training_error(tiny_spec, tmp_path: Path, capsys):
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"loss became (nan|inf).*lower train.lr") as err:
        mlplab.train(tiny_spec(train={"lr": 1e30, "epochs": 3}), out=out)
    assert (out / "spec.json").is_file() and not (out / "metrics.json").exists()
    # diverged in epoch 1: no checkpoint exists, and no message pretends one does
    msg = str(err.value)
    assert "at epoch 1," in msg and ckpt.latest_checkpoint(out) is None
    assert "no checkpoint exists" in msg and "nothing to resume" in msg and "kept" not in msg
    assert cli.run(["info", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "failed: the training loss became" in printed and "no checkpoint exists" in printed
    assert "unfinished" not in printed and "train --resume" not in printed


# -- schedule, batching, optimizer ------------------------------------------------------


def test_lr_factor_warmup_then_cosine():
    values = [lr_factor(s, total=20, warmup=4, schedule="cosine") for s in range(21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]  # linear warmup reaches 1 on its last step
    assert values[4] == 1.0  # cosine starts at the top
    assert values[12] == pytest.approx(0.5)  # halfway through the 16 cosine steps
    assert values[20] == pytest.approx(0.0, abs=1e-12)
    cosine = values[4:]
    assert all(a > b for a, b in zip(cosine, cosine[1:], strict=False))
    for s in (5, 9, 17):
        assert values[s] == pytest.approx(0.5 * (1 + math.cos(math.pi * (s - 4) / 16)))


def test_lr_factor_constant_and_edge_cases():
    assert [lr_factor(s, total=10, warmup=2, schedule="constant") for s in range(5)] == [
        0.5, 1.0, 1.0, 1.0, 1.0]
    assert lr_factor(0, total=10, warmup=0, schedule="cosine") == 1.0
    assert lr_factor(3, total=3, warmup=5, schedule="cosine") == 0.8  # still warming up
    assert lr_factor(7, total=5, warmup=5, schedule="cosine") == 1.0  # no cosine phase


def test_trainer_sets_the_scheduled_lr():
    data = toy_data()
    spec = TrainSpec(epochs=3, lr=0.1, batch_size=50, warmup_epochs=1.0, patience=None)
    trainer = Trainer(toy_model(), Classification(2), data, spec, quiet=True)
    assert (trainer.steps_per_epoch, trainer.total_steps, trainer.warmup_steps) == (4, 12, 4)
    state = trainer.fit()
    # each curve records the lr of the epoch's last step: 4, 8 and 12 steps done
    expected = [0.1 * lr_factor(s, total=12, warmup=4, schedule="cosine") for s in (3, 7, 11)]
    assert [c["lr"] for c in state.curves] == pytest.approx(expected)


def test_batch_starts_drops_a_trailing_singleton():
    assert batch_starts(10, 3) == [0, 3, 6]  # 10 = 3+3+3+1: the lone last row is dropped
    assert batch_starts(10, 4) == [0, 4, 8]  # a trailing pair is kept
    assert batch_starts(12, 4) == [0, 4, 8]
    assert batch_starts(1, 1) == [0]  # never drop the only batch
    assert batch_starts(5, 8) == [0]


def test_batchnorm_survives_an_odd_final_batch():
    data = toy_data()
    trainer = Trainer(toy_model(norm="batchnorm"), Classification(2), data,
                      TrainSpec(epochs=1, batch_size=199, patience=None), quiet=True)
    assert trainer.steps_per_epoch == 1
    trainer.fit()  # 200 = 199 + 1: the singleton batch would make BatchNorm raise


def test_adamw_does_not_decay_norms_biases_or_vectors():
    schema = FeatureSchema(["a", "b"], ["u"], [4])
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=8, depth=2, block="standard"), schema, 3)
    opt = make_optimizer(model, TrainSpec(weight_decay=0.05))
    assert isinstance(opt, torch.optim.AdamW)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    names = dict(model.named_parameters())
    for name, p in names.items():
        if name.endswith("bias") or ".norm." in f".{name}" or p.ndim == 1:
            assert id(p) in no_decay and id(p) not in decay, name
        else:
            assert id(p) in decay and id(p) not in no_decay, name
    assert id(names["adapter.embeddings.0.weight"]) in decay
    assert id(names["backbone.blocks.0.norm.weight"]) in no_decay
    assert id(names["backbone.blocks.0.fc1.bias"]) in no_decay
    assert len(decay) + len(no_decay) == len(names)


def test_sgd_gets_the_same_groups_and_momentum():
    model = toy_model()
    opt = make_optimizer(model, TrainSpec(optimizer="sgd", lr=0.1, momentum=0.8, weight_decay=0.01))
    assert isinstance(opt, torch.optim.SGD)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.01]
    assert all(g["momentum"] == 0.8 for g in opt.param_groups)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_evaluation_runs_under_inference_mode():
    model = toy_model()
    seen: list[tuple[bool, bool]] = []
    model.register_forward_hook(
        lambda m, i, o: seen.append((torch.is_inference_mode_enabled(), m.training)))
    split = toy_data().val
    out = predict_batches(model, split.inputs, len(split), batch_size=7)
    assert out.shape == (60, 2) and not out.requires_grad
    assert seen == [(True, False)] * 9  # ceil(60 / 7) batches, inference mode, eval mode
    assert model.training  # the mode is restored


# -- the frozen lift inside a whole run -------------------------------------------------


def test_frozen_lift_is_not_trained_or_optimised():
    data = toy_data()
    model = toy_model(block="hourglass", width=32, lift="frozen")
    lift = model.backbone.lift.weight
    before, others = lift.clone(), weights(model)
    trainer = Trainer(model, Classification(2), data, TrainSpec(epochs=2, patience=None),
                      quiet=True)
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(lift) not in in_optimizer
    assert in_optimizer == {id(p) for p in model.parameters()}
    trainer.fit()
    assert torch.equal(model.backbone.lift.weight, before)
    assert lift.grad is None
    changed = [k for k, v in weights(model).items() if not torch.equal(v, others[k])]
    assert changed and "backbone.lift.weight" not in changed


def test_frozen_run_is_saved_as_safetensors_and_reloads_exactly(frozen_run):
    run_dir = frozen_run.run_dir
    assert run_dir is not None
    files = {p.name for p in run_dir.iterdir()}
    assert {"spec.json", "model.json", "metrics.json", "model.safetensors", "checkpoint"} <= files
    for path in run_dir.rglob("*"):  # safetensors + JSON only, nothing pickled
        assert path.is_dir() or path.suffix in (".json", ".safetensors"), path
    stored = load_file(str(run_dir / "model.safetensors"))
    assert torch.equal(stored["backbone.lift.weight"], frozen_run.model.backbone.lift.weight)

    loaded = mlplab.load_run(run_dir)
    spec = loaded.spec
    assert spec == frozen_run.spec and loaded.metrics["test"] == frozen_run.metrics["test"]
    assert not loaded.model.backbone.lift.weight.requires_grad
    data = build_dataset(spec.data, task_kind=spec.task.kind, seed=spec.seed)
    assert loaded.features == data.features and loaded.target == data.target
    frozen_run.model.eval()
    with torch.no_grad():
        for part in ("train", "val", "test"):
            x, x_cat = getattr(data, part).inputs(slice(None))
            assert torch.equal(loaded.model(x, x_cat), frozen_run.model(x, x_cat)), part
    task = Classification(loaded.target.n_classes)
    out = predict_batches(loaded.model, data.test.inputs, len(data.test), 4096)
    assert task.metrics(out, data.test.y) == frozen_run.metrics["test"]
    # the lift is still its random initialisation: rebuild it from the seed
    torch.manual_seed(spec.seed)
    fresh = build_model(spec.model, loaded.schema, loaded.target.n_classes)
    assert torch.equal(fresh.backbone.lift.weight, loaded.model.backbone.lift.weight)
    counts = frozen_run.counts
    assert counts["frozen_params"] == fresh.backbone.lift.weight.numel() == 13 * 32
    assert counts["trainable_params"] == sum(p.numel() for p in fresh.parameters())


def test_load_run_needs_a_finished_run(tmp_path: Path):
    (tmp_path / "spec.json").write_text("{}")
    with pytest.raises(SpecError, match="not a finished run directory"):
        mlplab.load_run(tmp_path)


# -- whole runs: determinism and what a run records --------------------------------------


def test_same_seed_is_bitwise_identical_and_another_seed_differs(tiny_spec):
    spec = tiny_spec(model={"dropout": 0.2, "norm": "batchnorm"}, train={"epochs": 3})
    a, b = mlplab.train(spec), mlplab.train(spec)
    for part in ("train", "val", "test"):
        assert a.metrics[part] == b.metrics[part]
    assert same_weights(weights(a.model), weights(b.model))
    assert [{k: v for k, v in c.items() if k != "seconds"} for c in a.curves] == [
        {k: v for k, v in c.items() if k != "seconds"} for c in b.curves]
    c = mlplab.train({**spec, "seed": 1})
    assert not same_weights(weights(a.model), weights(c.model))
    assert a.curves[0]["train_loss"] != c.curves[0]["train_loss"]


def test_run_records_metrics_counts_timings_and_curves(tiny_spec, tmp_path: Path):
    out = tmp_path / "run"
    result = mlplab.train(tiny_spec(), out=out)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary == json.loads(json.dumps(result.summary()))
    for part in ("train", "val", "test"):
        assert set(summary[part]) == {"loss", "accuracy", "log_loss"}
    assert summary["counts"]["params"] > 0 and summary["counts"]["flops_per_sample"] > 0
    assert summary["timings"]["samples_per_second"] > 0
    assert summary["timings"]["gflops_per_second"] > 0
    assert len(summary["curves"]) == summary["epochs"] == 4
    assert json.loads((out / "spec.json").read_text()) == result.spec.model_dump(mode="json")
    with pytest.raises(SpecError, match="already holds a run"):
        mlplab.train(tiny_spec(), out=out)


def test_regression_run_with_log_target(tiny_spec):
    spec = tiny_spec(data={"source": "sklearn:diabetes", "target_transform": "log"},
                     train={"epochs": 3, "batch_size": 64})
    result = mlplab.train(spec)
    assert set(result.metrics["test"]) == {"loss", "rmse", "mae", "r2"}
    # RMSE is in log units of the target (diabetes progression ~ 25..346): well below 1
    assert 0 < result.metrics["test"]["rmse"] < 1.5


def test_bf16_precision_learns_as_well_as_fp32():
    data = toy_data()
    results = {}
    for precision in ("fp32", "bf16"):
        spec = TrainSpec(epochs=15, lr=1e-2, batch_size=32, patience=None, precision=precision)
        trainer = Trainer(toy_model(), Classification(2), data, spec, quiet=True)
        state = trainer.fit()
        results[precision] = ([c["train_loss"] for c in state.curves],
                              trainer.evaluate(data.test)["accuracy"])
    (loss32, acc32), (loss16, acc16) = results["fp32"], results["bf16"]
    assert loss16 != loss32  # bf16 autocast really ran (its rounding changes every loss)
    assert all(math.isfinite(v) for v in loss16) and loss16[-1] < 0.5 * loss16[0]
    assert acc16 > 0.85 and abs(acc16 - acc32) <= 0.05


def test_bad_input_leaves_nothing_on_disk(tiny_spec, tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(mlplab.DataError):
        mlplab.train(tiny_spec(data={"source": "sklearn:iris", "target": "nope"}), out=out)
    with pytest.raises(SpecError):
        mlplab.train(tiny_spec(train={"monitor": "rmse"}), out=out)
    assert not out.exists()


def test_tabular_run_round_trips_its_preprocessing(tmp_path: Path):
    """A CSV run with categorical and missing values: `load_run` gives back the fitted
    preprocessing, which turns raw rows into exactly the tensors the run trained on."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"size": rng.normal(size=n), "grade": rng.choice(list("ABCD"), n),
                          "age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0, 9, n))})
    frame["price"] = np.exp(frame["size"] + (frame["grade"] == "A") + rng.normal(0, 0.1, n))
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = {"data": {"source": str(tmp_path / "t.csv"), "target": "price",
                     "target_transform": "log", "split": "random"},
            "model": {"width": 16, "depth": 1},
            "train": {"epochs": 8, "batch_size": 16, "lr": 1e-2, "threads": 1}}
    result = mlplab.train(spec, out=tmp_path / "run")
    loaded = mlplab.load_run(tmp_path / "run")
    assert loaded.schema.categorical == ["grade"] and "age__missing" in loaded.schema.numeric
    num, cat = loaded.features.transform(frame)
    x, x_cat = torch.from_numpy(num), torch.from_numpy(cat)
    data = build_dataset(result.spec.data, seed=result.spec.seed)
    rows = torch.cat([data.train.x, data.val.x, data.test.x])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.tolist()))
    with torch.no_grad():
        pred = loaded.model(x, x_cat).squeeze(-1).double().numpy()
    log_price = loaded.target.decode_values(pred)
    assert loaded.target.transform == "log"
    corr = np.corrcoef(log_price, np.log(frame["price"]))[0, 1]
    assert corr > 0.7, corr  # a real, learned fit


@pytest.mark.parametrize("clip", [0.01, None])
def test_gradient_clipping_bounds_the_step(clip: float | None):
    """One full-batch SGD step (lr 1, no momentum or decay) moves the weights by exactly the
    clipped gradient norm; without clipping, by the full gradient norm."""
    data = toy_data()
    model = toy_model()
    before = [p.detach().clone() for p in model.parameters()]
    spec = TrainSpec(optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, grad_clip=clip,
                     epochs=1, batch_size=200, warmup_epochs=0, schedule="constant",
                     patience=None)
    probe = toy_model()  # same init: the gradient of that first step
    Classification(2).loss(probe(data.train.x), data.train.y).backward()
    grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in probe.parameters())).item()
    Trainer(model, Classification(2), data, spec, quiet=True).fit()
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                          for p, b in zip(model.parameters(), before, strict=True))).item()
    assert grad_norm > 0.05
    assert step == pytest.approx(clip if clip is not None else grad_norm, rel=1e-3)
