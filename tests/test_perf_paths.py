"""The trainer's fast paths (oneDNN fp32 matmul route, fused AdamW, bf16 autocast) and the
inference helper compute the same things as the plain reference paths."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import mlplab
from mlplab.bench.training import as_dataset, residual_mlp, synthetic
from mlplab.infer import predict
from mlplab.spec import TrainSpec
from mlplab.tasks import Classification
from mlplab.train import speed
from mlplab.train.optim import param_groups
from mlplab.train.trainer import Trainer, batch_starts, lr_factor

SPEC = dict(lr=3e-3, batch_size=64, epochs=4, patience=None, warmup_epochs=1.0)


def _data(n: int = 576, d_in: int = 16):
    x, y = synthetic(n, d_in=d_in, n_classes=4, seed=1)
    return as_dataset(x, y, n_val=64)


def _model(d_in: int = 16) -> nn.Module:
    return residual_mlp(32, depth=2, d_in=d_in, n_classes=4, seed=3)


def reference_losses(data, spec: TrainSpec, *, seed: int = 0) -> list[float]:
    """The trainer's algorithm written out plainly: MKL matmuls, for-loop AdamW, same order."""
    model = _model()
    opt = torch.optim.AdamW(param_groups(model, spec.weight_decay), lr=spec.lr,
                            foreach=False, fused=False)
    gen = torch.Generator().manual_seed(seed)
    n = len(data.train)
    starts = batch_starts(n, spec.batch_size)
    total_steps, warmup = spec.epochs * len(starts), round(spec.warmup_epochs * len(starts))
    step, losses = 0, []
    with speed.float32_matmul_precision("highest"):
        for _ in range(spec.epochs):
            perm = torch.randperm(n, generator=gen)
            model.train()
            total = 0.0
            for s in starts:
                idx = perm[s: s + spec.batch_size]
                for g in opt.param_groups:
                    g["lr"] = spec.lr * lr_factor(step, total=total_steps, warmup=warmup,
                                                  schedule=spec.schedule)
                loss = nn.functional.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
                opt.step()
                total += loss.item() * len(idx)
                step += 1
            losses.append(total / n)
    return losses


def trainer_losses(data, spec: TrainSpec) -> list[float]:
    trainer = Trainer(_model(), Classification(4), data, spec, quiet=True)
    return [c["train_loss"] for c in trainer.fit().curves]


@pytest.mark.parametrize("fp32_matmul", ["fast", "default"])
def test_fast_trainer_follows_reference_loss_curve(fp32_matmul: str) -> None:
    data = _data()
    spec = TrainSpec(**SPEC, fp32_matmul=fp32_matmul, precision="fp32")  # vs a plain fp32 loop
    ref = reference_losses(data, spec)
    got = trainer_losses(data, spec)
    assert ref[-1] < 0.8 * ref[0]  # it learns, so the comparison is not between two flat lines
    assert got == pytest.approx(ref, rel=1e-4)


def test_optimizer_is_fused_adamw_with_plain_state_dict() -> None:
    trainer = Trainer(_model(), Classification(4), _data(), TrainSpec(**SPEC), quiet=True)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.defaults["fused"] is True
    trainer.fit()
    state = trainer.optimizer.state_dict()["state"]
    assert set(state[0]) == {"step", "exp_avg", "exp_avg_sq"}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: fp32 masters in the optimizer
def test_resume_with_fused_adamw_is_bitwise(tmp_path, monkeypatch, precision: str) -> None:
    data, spec = _data(), TrainSpec(**SPEC, precision=precision)
    straight = Trainer(_model(), Classification(4), data, spec, run_dir=tmp_path / "a",
                       quiet=True)
    straight.fit()

    class Killed(Exception):
        pass

    save = Trainer._save_checkpoint

    def save_then_die(self, improved):  # noqa: ANN001, ANN202
        save(self, improved)
        if self.state.epoch == 2:
            raise Killed

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        Trainer(_model(), Classification(4), data, spec, run_dir=tmp_path / "b",
                quiet=True).fit()
    monkeypatch.setattr(Trainer, "_save_checkpoint", save)
    torch.manual_seed(12345)  # a different global RNG state: resume must restore it
    resumed = Trainer(_model(), Classification(4), data, spec, run_dir=tmp_path / "b",
                      quiet=True)
    assert resumed.resume()
    resumed.fit()
    assert (straight.masters is not None) == (precision == "bf16")
    for (name, a), b in zip(straight.model.state_dict().items(),
                            resumed.model.state_dict().values(), strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b), name
    assert straight.state.curves[-1]["train_loss"] == resumed.state.curves[-1]["train_loss"]


def test_onednn_route_keeps_fp32_accuracy() -> None:
    default_err = speed.matmul_rel_error("highest")
    assert default_err < speed.FP32_REL_TOL
    if speed.onednn_fp32_is_exact():
        assert speed.matmul_rel_error("high") < 4 * default_err + 1e-7
    # whatever the CPU, the route taken by train.fp32_matmul="fast" is fp32-accurate
    with speed.fp32_matmul("fast"):
        precision = torch.get_float32_matmul_precision()
    assert speed.matmul_rel_error(precision) < speed.FP32_REL_TOL
    assert torch.get_float32_matmul_precision() == "highest"  # restored


def test_error_check_detects_reduced_precision_route() -> None:
    """'medium' may use bf16 internally; the check must tell when it does (then ~1e-3)."""
    err = speed.matmul_rel_error("medium")
    assert err < speed.FP32_REL_TOL or err > 1e-4


def test_bf16_training_converges_on_digits() -> None:
    spec = {"seed": 0, "data": {"source": "sklearn:digits"},
            "model": {"width": 128, "depth": 2},
            "train": {"epochs": 12, "batch_size": 64, "lr": 2e-3, "precision": "bf16",
                      "patience": None}}
    result = mlplab.train(spec)
    curves = [c["train_loss"] for c in result.curves]
    assert all(math.isfinite(v) for v in curves)
    assert curves[-1] < 0.2 * curves[0]
    assert result.metrics["test"]["accuracy"] > 0.93
    assert next(result.model.parameters()).dtype == torch.float32  # fp32 master weights


def test_predict_equals_eval_mode_forward() -> None:
    model = residual_mlp(64, depth=2, d_in=16, n_classes=4)
    model.backbone.blocks[0].drop.p = 0.5  # dropout would change a train-mode forward
    model.train()
    x = torch.randn(300, 16)
    got = predict(model, x, fp32_matmul="default")
    assert model.training  # mode restored
    assert not got.requires_grad
    with torch.no_grad():
        want = model.eval()(x)
    model.train()
    assert torch.equal(got, want)
    assert torch.allclose(predict(model, x), want, atol=1e-5)  # oneDNN route
    assert torch.allclose(predict(model, x, batch_size=128), want, atol=1e-5)
    assert torch.allclose(predict(model, x[:1]), want[:1], atol=1e-5)


def test_ceiling_reads_the_models_gemm_shapes_and_reports_the_figure() -> None:
    from mlplab.bench import ceiling

    model = residual_mlp(32, depth=2, d_in=16, n_classes=4)
    shapes = ceiling.gemm_shapes(model, torch.zeros(8, 16))
    assert shapes == [(8, 16, 32), (8, 32, 128), (8, 128, 32), (8, 32, 128), (8, 128, 32),
                      (8, 32, 4)]
    # forward + both gradients, except the first layer's input gradient
    assert ceiling.step_flops(shapes) == sum(2 * n * a * b * 3 for n, a, b in shapes) - 2 * 8 * 16 * 32
    ceiling.matmul_only_step(shapes)()  # runs
    assert ceiling.optimizer_bytes_per_param(weight=4, grad=4, master=0, moment=4) == 28
    assert ceiling.optimizer_bytes_per_param(weight=2, grad=2, master=4, moment=4) == 28
    result = {"batch": 8, "counted_step_gflop": 8.0,
              "best": {"peak bf16": 100.0, "peak fp32": 25.0, "matmuls only bfloat16": 90.0,
                       "matmuls only float32": 24.0, "mlplab fp32": 20.0, "mlplab bf16": 60.0},
              "best_wall": {"peak bf16": 200.0, "peak fp32": 50.0, "mlplab fp32": 40.0,
                            "mlplab bf16": 120.0}}
    table = ceiling.figure_table(result)
    assert "| mlplab bf16 | 120 | 60% | 60 | 60% | 120 | 60 |" in table
    assert "| mlplab fp32 | 40 | 80% | 20 | 80% | 40 | 20 |" in table
    assert table.rstrip().endswith("| 3.00x | 3.00x |")
