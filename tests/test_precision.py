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
