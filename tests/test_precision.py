"""`train.precision`: "auto" resolution, and bf16 training as accurate as fp32 on a tiny digits
run (the full-size comparison is in the benchmark: `mlplab bench`, bf16 accuracy)."""

from __future__ import annotations

import pytest
import torch

import mlplab
from mlplab.train import speed

DIGITS = {
    "seed": 0,
    "data": {"source": "sklearn:digits"},
    "model": {"block": "standard", "width": 64, "depth": 2},
    "train": {"epochs": 6, "batch_size": 128, "lr": 3e-3, "patience": None, "threads": 1},
}
SEED_NOISE = 0.03  # test accuracy spread across seeds of this run (360 test rows)


def test_explicit_precisions_pass_through() -> None:
    cpu = torch.device("cpu")
    assert speed.resolve_precision("fp32", cpu) == "fp32"
    assert speed.resolve_precision("bf16", cpu) == "bf16"


@pytest.mark.parametrize("amx", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_has_amx(monkeypatch, amx: bool) -> None:
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: amx)
    assert speed.resolve_precision("auto", torch.device("cpu")) == ("bf16" if amx else "fp32")


def test_auto_is_accepted_by_the_spec_and_resolved_by_the_trainer() -> None:
    from mlplab.run import prepare_run
    from mlplab.spec import parse_spec
    from mlplab.train.trainer import Trainer

    spec = parse_spec({**DIGITS, "train": {**DIGITS["train"], "precision": "auto"}})
    data, task, model, _ = prepare_run(spec)
    trainer = Trainer(model, task, data, spec.train, quiet=True)
    assert trainer.precision == ("bf16" if speed.cpu_has_fast_bf16() else "fp32")
    assert spec.train.precision == "auto"  # the spec keeps what was asked


def test_bf16_digits_accuracy_within_seed_noise_of_fp32() -> None:
    acc = {}
    for precision in ("fp32", "bf16"):
        spec = {**DIGITS, "train": {**DIGITS["train"], "precision": precision}}
        acc[precision] = mlplab.train(spec).metrics["test"]["accuracy"]
    assert acc["fp32"] > 0.85
    assert abs(acc["bf16"] - acc["fp32"]) <= SEED_NOISE, acc


def test_bench_table_puts_bf16_against_the_bf16_peak() -> None:
    from mlplab.bench.report import throughput_table

    rows = [dict(width=8, batch=8, contender=c, samples_per_s=r, samples_per_cpu_s=r,
                 gflops=r * 1e-3) for c, r in [("mlplab fp32", 100), ("mlplab bf16", 300)]]
    table = throughput_table(rows, 1.0, peak_bf16=1.0)
    assert "bf16 ÷ bf16 peak" in table and table.rstrip().endswith("| 30% |")


def test_bf16_linear_matches_autocast_gradients() -> None:
    """mlplab's linear under bf16 autocast (contiguous g.T for the weight gradient) gives
    autocast's output and gradients (same bf16 products, fp32 parameter gradients)."""
    from mlplab.nn import bf16_linear
    from mlplab.nn.units import LinearUnit

    torch.manual_seed(0)
    unit, x = LinearUnit(64, 32), torch.randn(3, 40, 64, requires_grad=True)
    grads = {}
    for enabled in (False, True):
        bf16_linear.ENABLED = enabled
        try:
            unit.zero_grad()
            x.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = unit(x)
            assert out.dtype == torch.bfloat16
            assert (type(out.grad_fn).__name__ == "_Bf16LinearBackward") == enabled
            out.float().square().sum().backward()
            grads[enabled] = [x.grad, unit.weight.grad, unit.bias.grad]
        finally:
            bf16_linear.ENABLED = True
    for ref, got in zip(grads[False], grads[True], strict=True):
        assert got.dtype == ref.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=2e-2, atol=1e-2)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert unit(x).grad_fn is None  # inference: plain F.linear


# -- bf16 parameters with fp32 master weights (mlplab.train.master_weights) ----------------

def _small(precision: str, *, master_weights: bool = True, run_dir=None, **train):
    """A Trainer on a small synthetic problem (width 32, depth 2, 4 classes)."""
    from mlplab.bench.training import as_dataset, residual_mlp, synthetic
    from mlplab.spec import TrainSpec
    from mlplab.tasks import Classification
    from mlplab.train import trainer as trainer_module

    x, y = synthetic(576, d_in=16, n_classes=4, seed=1)
    spec = TrainSpec(**{**dict(lr=3e-3, batch_size=64, epochs=4, patience=None,
                               warmup_epochs=1.0, precision=precision), **train})
    previous, trainer_module.MASTER_WEIGHTS = trainer_module.MASTER_WEIGHTS, master_weights
    try:
        return trainer_module.Trainer(
            residual_mlp(32, depth=2, d_in=16, n_classes=4, seed=3), Classification(4),
            as_dataset(x, y, n_val=64), spec, quiet=True, run_dir=run_dir)
    finally:
        trainer_module.MASTER_WEIGHTS = previous


def test_bf16_masters_follow_autocast_and_fp32_loss_curves() -> None:
    curves = {}
    for name, kw in {"fp32": dict(precision="fp32"), "autocast": dict(precision="bf16",
                     master_weights=False), "masters": dict(precision="bf16")}.items():
        trainer = _small(**kw)
        assert (trainer.masters is not None) == (name == "masters")
        curves[name] = [c["train_loss"] for c in trainer.fit().curves]
    assert curves["fp32"][-1] < 0.8 * curves["fp32"][0]  # it learns
    assert curves["masters"] != curves["fp32"]  # bf16 really ran
    assert curves["masters"] == pytest.approx(curves["fp32"], rel=0.03)
    assert curves["masters"] == pytest.approx(curves["autocast"], rel=0.03)


def test_bf16_masters_train_a_bf16_model_and_return_fp32() -> None:
    trainer = _small("bf16", epochs=1)
    seen = []
    trainer.model.backbone.blocks[0].fc1.register_forward_pre_hook(
        lambda m, args: seen.append((m.weight.dtype, args[0].dtype)))
    opt_params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert all(p.dtype == torch.float32 for p in opt_params)
    assert {id(p) for p in opt_params}.isdisjoint(map(id, trainer.model.parameters()))
    trainer.fit()
    assert set(seen[:-1]) == {(torch.bfloat16, torch.bfloat16)}  # training steps
    assert seen[-1][0] == torch.float32  # validation (under autocast): the fp32 masters
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    # the masters are the model's fp32 parameters again, updated by the optimizer
    for p, m in zip(trainer.params, trainer.masters.masters, strict=True):
        assert p.data_ptr() == m.data_ptr()
    # within the steps the bf16 weights are the masters rounded to nearest
    trainer.masters.engage()
    try:
        for p, m in zip(trainer.params, trainer.masters.masters, strict=True):
            assert p.dtype == torch.bfloat16 and torch.equal(p, m.to(torch.bfloat16))
    finally:
        trainer.masters.release()


def test_bf16_masters_clip_in_fp32_like_fp32_training() -> None:
    """One step with a tight clip: the masters' update equals fp32 AdamW fed the same
    (bf16-computed) gradients clipped by their fp32 norm."""
    from mlplab.train.optim import take_step

    trainer = _small("bf16", grad_clip=1e-3, epochs=1, warmup_epochs=0.0)
    before = [m.clone() for m in trainer.masters.masters]
    trainer.masters.engage()
    x, y = trainer.data.train.x[:64].to(torch.bfloat16), trainer.data.train.y[:64]
    trainer._set_lr()
    trainer._evaluate_loss(x, None, y, None, [])
    grads = [p.grad.float() for p in trainer.params]
    take_step(trainer.optimizer, lambda: None, params=trainer.params, grad_clip=1e-3,
              masters=trainer.masters)
    trainer.masters.release()
    ref = [torch.nn.Parameter(b) for b in before]
    for r, g in zip(ref, grads, strict=True):
        r.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(ref, 1e-3)
    pairs = list(zip(ref, trainer.params, strict=True))
    opt = torch.optim.AdamW([{"params": [r for r, p in pairs if p.ndim >= 2],
                              "weight_decay": trainer.spec.weight_decay},
                             {"params": [r for r, p in pairs if p.ndim < 2], "weight_decay": 0.0}],
                            lr=trainer.optimizer.param_groups[0]["lr"], foreach=False)
    opt.step()
    for r, m in zip(ref, trainer.masters.masters, strict=True):
        torch.testing.assert_close(m, r.detach(), rtol=1e-5, atol=1e-7)


def test_bf16_masters_checkpoint_the_fp32_masters(tmp_path) -> None:
    from safetensors.torch import load_file

    from mlplab.train import checkpoint as ckpt

    trainer = _small("bf16", epochs=1, run_dir=tmp_path)  # one epoch: final = best = saved
    trainer.fit()
    where = ckpt.latest_checkpoint(tmp_path)
    saved = load_file(where / "model.safetensors")
    assert {v.dtype for v in saved.values()} == {torch.float32}
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(saved[name], value), name
    # fp32 masters, not bf16 weights widened: the updates left bits bf16 cannot hold
    w = saved["backbone.blocks.0.fc1.weight"]
    assert not torch.equal(w, w.to(torch.bfloat16).float())
    state = load_file(where / "optimizer.safetensors")
    assert {v.dtype for k, v in state.items() if "exp_avg" in k} == {torch.float32}


@pytest.mark.parametrize("why,kw", [
    ("L-BFGS", dict(optimizer="lbfgs")),
])
def test_bf16_without_master_support_keeps_autocast(why: str, kw: dict) -> None:
    trainer = _small("bf16", **kw)
    assert trainer.masters is None, why
    trainer.fit()


def test_models_with_buffers_or_other_parameters_keep_autocast() -> None:
    from torch import nn

    from mlplab.train.master_weights import unsupported

    assert unsupported(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), "adamw") is None
    assert "buffers" in unsupported(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), "adamw")
    assert "Conv1d" in unsupported(nn.Sequential(nn.Conv1d(3, 4, 1)), "adamw")
    assert "L-BFGS" in unsupported(nn.Linear(3, 4), "lbfgs")
    frozen = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    frozen[0].weight.requires_grad_(False)
    assert "frozen" in unsupported(frozen, "adamw")


def test_bf16_linear_on_bf16_weights_matches_f_linear(monkeypatch) -> None:
    """With AMX (forced here) a bf16 model's linear takes the contiguous-g.T backward."""
    from mlplab.nn import bf16_linear

    monkeypatch.setattr(bf16_linear, "cpu_has_amx", lambda: True)
    torch.manual_seed(0)
    w = torch.randn(32, 64, dtype=torch.bfloat16, requires_grad=True)
    b = torch.randn(32, dtype=torch.bfloat16, requires_grad=True)
    x = torch.randn(3, 40, 64, dtype=torch.bfloat16, requires_grad=True)
    out = bf16_linear.linear(x, w, b)
    assert type(out.grad_fn).__name__ == "_Bf16LinearBackward"
    got = torch.autograd.grad(out.float().square().sum(), [x, w, b])
    ref = torch.autograd.grad(torch.nn.functional.linear(x, w, b).float().square().sum(),
                              [x, w, b])
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g.float(), r.float(), rtol=2e-2, atol=1e-1)


def test_unknown_precision_is_a_clear_spec_error() -> None:
    from mlplab.errors import SpecError
    from mlplab.spec import parse_spec

    with pytest.raises(SpecError, match="train.precision"):
        parse_spec({**DIGITS, "train": {**DIGITS["train"], "precision": "fp16"}})


@pytest.mark.parametrize("model", [dict(block="glu"), dict(block="plain", dropout=0.1),
                                   dict(block="hourglass"), dict(unit="fan")])
def test_bf16_masters_train_the_plain_families_like_fp32(model: dict) -> None:
    from mlplab.run import prepare_run
    from mlplab.spec import parse_spec
    from mlplab.train.trainer import Trainer

    losses = {}
    for precision in ("fp32", "bf16"):
        spec = parse_spec({**DIGITS, "model": {"width": 32, "depth": 2, **model},
                           "train": {**DIGITS["train"], "epochs": 3, "precision": precision}})
        data, task, net, _ = prepare_run(spec)
        trainer = Trainer(net, task, data, spec.train, quiet=True)
        assert (trainer.masters is not None) == (precision == "bf16")
        losses[precision] = [c["train_loss"] for c in trainer.fit().curves]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05), losses
