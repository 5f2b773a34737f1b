"""Sweep specs: a run spec plus seeds/axes/budget/search; every mistake is one clear SpecError."""

from __future__ import annotations

import pytest
from lab_util import tiny_sweep, toml_text

from mlplab.errors import SpecError
from mlplab.lab.spec import family_label, load_sweep, parse_sweep


def test_valid_sweep_families_and_base():
    spec = parse_sweep(tiny_sweep(axes={"model.block": ["standard", "swiglu"],
                                        "model.depth": [1, 2]}))
    assert [family_label(f) for f in spec.families()] == [
        "block=standard depth=1", "block=standard depth=2", "block=swiglu depth=1",
        "block=swiglu depth=2"]
    assert spec.base.data.max_rows == 300 and spec.budget.kind == "params"
    assert spec.search is None


def test_search_defaults_to_lr(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(toml_text(tiny_sweep(search={"n_trials": 3})))
    spec = load_sweep(path, ["seeds=[4]"])
    assert spec.seeds == [4] and spec.search.n_trials == 3
    assert list(spec.search.space) == ["train.lr"] and spec.search.space["train.lr"].log


@pytest.mark.parametrize("override,message", [
    ({"seeds": None, "seed": 1}, "seeds = \\[...\\]"),
    ({"axes": {"model.blok": ["standard"]}}, "axes: 'model.blok' is not a run-spec field"),
    ({"axes": {"model.width": [8, 16]}}, "'model.width' is solved from the budget"),
    ({"axes": {"model.block": ["standard", "nope"]}}, "axes 'nope'.*unknown block 'nope'"),
    ({"budget": {"params": [1e3], "flops": [1e3]}}, "exactly one of budget.params or budget.flops"),
    ({"budget": {"params": [-5]}}, "positive numbers"),
    ({"budget": {"params": [1e3], "tolerence": 0.1}},
     "budget.tolerence: unknown key; did you mean 'tolerance'"),
    ({"analysis": {"metrik": "test.accuracy"}}, "analysis.metrik: unknown key; did you mean 'metric'"),
    ({"serach": {"n_trials": 2}}, "serach: unknown key; did you mean 'search'"),
    ({"bugdet": {"params": [1e3]}}, "bugdet: unknown key; did you mean 'budget'"),
    ({"search": {"n_trials": 2, "space": {"train.lr": {"low": 1, "high": 0.1}}}}, "low < high"),
    ({"search": {"n_trials": 2, "space": {"model.block": {"choices": ["standard"]}}}},
     "already an axis"),
    ({"model": {"depth": 0}}, "model.depth"),
    ({"name": None}, "name: a sweep needs a name"),
])
def test_bad_sweeps_name_the_field(override, message):
    with pytest.raises(SpecError, match=message):
        parse_sweep(tiny_sweep(**override))


def test_a_sweep_needs_something_to_sweep():
    with pytest.raises(SpecError, match="at least one of"):
        parse_sweep(tiny_sweep(axes=None, budget=None))


def test_validate_cli_checks_sweeps_and_their_budgets(tmp_path, capsys):
    from mlplab.cli import run

    path = tmp_path / "s.toml"
    path.write_text(toml_text(tiny_sweep()))
    assert run(["validate", str(path), "--data"]) == 0
    assert "12 trials, every budget met within 5%" in capsys.readouterr().out
    assert run(["validate", str(path), "--data", "--set", "budget.max_width=8"]) == 2
    assert "is impossible: even width 8" in capsys.readouterr().err
    assert not list(tmp_path.glob("**/lab.sqlite"))
