"""The budget solver lands every block family within ±5% of a parameter or FLOP budget,
measured on the real model; impossible budgets are SpecErrors naming the budget."""

from __future__ import annotations

import pytest

import mlplab
from mlplab.errors import SpecError
from mlplab.lab.budget import ModelMeter, solve_spec, solve_width
from mlplab.nn.registry import BLOCKS


@pytest.fixture(scope="module")
def meter() -> ModelMeter:
    return ModelMeter(mlplab.parse_spec({"data": {"source": "sklearn:digits", "max_rows": 200},
                                         "model": {"depth": 2}}))


def with_block(meter: ModelMeter, block: str) -> mlplab.RunSpec:
    spec = mlplab.parse_spec({"data": {"source": "sklearn:digits", "max_rows": 200},
                              "model": {"depth": 2, "block": block}})
    return spec


@pytest.mark.parametrize("block", [n for n in BLOCKS.names()  # flat blocks: token
                                   if not getattr(BLOCKS.get(n), "token_mixing", False)])  # mixers: test_mixing
@pytest.mark.parametrize("kind,budget", [("params", 5e3), ("params", 8e4), ("flops", 4e4)])
def test_every_family_lands_within_5_percent(meter, block, kind, budget):
    spec, solved = solve_spec(meter, with_block(meter, block), budget, kind=kind)
    # count the model again, independently of the solver
    counts = meter.measure(spec)
    measured = counts["params"] if kind == "params" else counts["flops_per_sample"]
    assert abs(measured - budget) <= 0.05 * budget
    assert spec.model.width == solved.width and spec.model.block == block
    assert solved.params == counts["params"]


def test_impossible_budgets_name_the_budget(meter):
    spec = with_block(meter, "standard")
    with pytest.raises(SpecError, match=r"budget.params = 100 .*impossible.*smallest model"):
        solve_spec(meter, spec, 100, kind="params")
    with pytest.raises(SpecError, match=r"budget.params = 1e\+09 .*impossible.*max_width"):
        solve_spec(meter, spec, 1e9, kind="params", max_width=64)


def test_granularity_too_coarse_is_reported():
    # counts jump by 100 per width step: 150 cannot be met within 5%
    with pytest.raises(SpecError, match=r"budget.params = 150 cannot be met within 5%"):
        solve_width(lambda w: {"params": 100 * w, "flops_per_sample": 0}, 150, max_width=50)


def test_solver_uses_few_measurements():
    calls = []

    def measure(w):
        calls.append(w)
        return {"params": 3 * w * w + 10 * w + 7, "flops_per_sample": 0}

    solved = solve_width(measure, 1e6, max_width=10_000)
    assert abs(solved.params - 1e6) <= 0.05e6
    assert len(set(calls)) <= 25


@pytest.mark.parametrize("bins,method", [(4, "quantile"), (16, "quantile"), (8, "tree")])
def test_ple_models_are_measured_with_their_own_bins(bins, method):
    """The meter fits PLE edges as `mlplab.train` does, separately per ple_bins/ple_method."""
    from mlplab.run import prepare_run

    base = {"data": {"source": "sklearn:diabetes"},
            "model": {"depth": 1, "width": 32, "num_embeddings": "ple", "ensemble": "tabm", "k": 4}}
    meter = ModelMeter(mlplab.parse_spec(base))
    plain = meter.measure(mlplab.parse_spec(base))  # 48 quantile bins, fitted first
    spec = mlplab.parse_spec({**base, "model": {**base["model"], "ple_bins": bins,
                                                "ple_method": method}})
    counts = meter.measure(spec)
    assert counts == prepare_run(spec)[3]  # what the trained model will count
    assert counts["params"] < plain["params"]
