"""`mlplab repro`: the verdict rule on synthetic results, each reproduction on a tiny protocol,
the CLI, and (slow) each default protocol."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest

import mlplab
from mlplab.cli import run as cli
from mlplab.errors import SpecError
from mlplab.lab.results import load_results
from mlplab.repro import AGREES, DISAGREES, INCONCLUSIVE, OUTCOMES, REPRODUCTIONS, get
from mlplab.repro.verdict import combine, compare

TINY = {
    "tabm": {"tables": ["churn"], "seeds": [0, 1, 2], "max_rows": 200, "width": 8, "k": 2,
             "epochs": 1},
    "kan-vs-mlp": {"vision": [], "tables": [], "formulas": ["kan-xy"], "seeds": [0, 1],
                   "matches": ["flops"], "formula_rows": 100, "formula_budgets": [1e3],
                   "formula_epochs": 1},
}


def synthetic_runs(shift: dict[str, float], *, cells: int = 3, seeds: int = 3,
                   higher: bool = True, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Runs of families whose quality is `base + shift[family] + noise`, one row per
    cell x seed x family; a per-seed offset shared by all families (the same split)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(cells):
        base = 0.5 + 0.1 * c
        for s in range(seeds):
            split = rng.normal(0, 5 * noise)
            for fam, delta in shift.items():
                rows.append({"cell": f"t{c}", "family": fam, "seed": s, "higher": higher,
                             "quality": base + split + delta + rng.normal(0, noise)})
    return pd.DataFrame(rows)


# -- the rule ---------------------------------------------------------------------------------

def test_the_rule_agrees_when_the_claimed_winner_is_ahead():
    runs = synthetic_runs({"new": 0.03, "old": 0.0})
    c = compare(runs, "new", "old", claim="new beats old")
    assert c.outcome == AGREES and c.low > 0 and c.pairs == 9 and len(c.cells) == 3
    assert all(x.difference > 0 for x in c.cells) and c.relative > 0


def test_the_rule_disagrees_when_the_claimed_winner_is_behind():
    runs = synthetic_runs({"new": -0.03, "old": 0.0})
    assert compare(runs, "new", "old", claim="new beats old").outcome == DISAGREES


def test_lower_is_better_metrics_flip_the_direction():
    runs = synthetic_runs({"new": -0.03, "old": 0.0}, higher=False)  # e.g. RMSE
    c = compare(runs, "new", "old", claim="new beats old")
    assert c.outcome == AGREES and all(x.difference > 0 for x in c.cells)


def test_the_rule_is_inconclusive_within_noise():
    runs = synthetic_runs({"new": 0.0, "old": 0.0}, noise=0.02, seed=3)
    c = compare(runs, "new", "old", claim="new beats old")
    assert c.outcome == INCONCLUSIVE and c.low < 0 < c.high


def test_too_few_pairs_are_inconclusive_and_one_seed_has_no_spread():
    runs = synthetic_runs({"new": 0.5, "old": 0.0}, cells=1, seeds=2)
    assert compare(runs, "new", "old", claim="x").outcome == INCONCLUSIVE
    one = compare(synthetic_runs({"new": 0.5, "old": 0.0}, seeds=1), "new", "old", claim="x")
    assert one.outcome == INCONCLUSIVE and one.cells[0].mark == "one seed"


def test_identical_runs_give_zero_effect_not_nan():
    runs = synthetic_runs({"a": 0.0, "b": 0.0}, noise=0.0)
    runs["quality"] = 1.0  # e.g. accuracy 1.0 for both on every seed
    c = compare(runs, "a", "b", claim="a beats b")
    assert c.effect == 0 and c.outcome == INCONCLUSIVE


def test_combine_needs_every_counted_claim():
    assert combine([AGREES, AGREES]) == AGREES
    assert combine([AGREES, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([AGREES, DISAGREES, INCONCLUSIVE]) == DISAGREES
    assert combine([]) == INCONCLUSIVE


def tabm_runs(shift: dict[str, float]) -> pd.DataFrame:
    runs = synthetic_runs(shift, higher=False)  # RMSE: lower is better
    return runs.rename(columns={"cell": "label"}).assign(
        part="p", budget=np.nan, metric="test.rmse", params=1.0, flops=1.0, train_seconds=1.0,
        domain="tabular", match="none")


def test_tabm_verdict_from_synthetic_results_both_ways():
    repro = get("tabm")
    protocol = repro.protocol()
    holds = repro.verdict(tabm_runs({"mlp": 0.0, "tabm": -0.04, "mlp-plr": -0.02,
                                     "mlp-ple": -0.03}), protocol)
    assert holds.outcome == AGREES
    assert [c.outcome for c in holds.comparisons] == [AGREES] * 3
    fails = repro.verdict(tabm_runs({"mlp": 0.0, "tabm": 0.04, "mlp-plr": -0.02,
                                     "mlp-ple": -0.03}), protocol)
    assert fails.outcome == DISAGREES and fails.comparisons[0].outcome == DISAGREES
    assert list(fails.table.columns[:3]) == ["cell", "metric", "mlp"]


def test_kan_verdict_per_domain_from_synthetic_results():
    repro = get("kan-vs-mlp")
    frames = []
    for domain, shift in (("vision", {"mlp": 0.05, "kan": 0.0}),
                          ("formula", {"mlp": 0.0, "kan": 0.05, "mlp-bspline": 0.08})):
        for match in ("params", "flops"):
            runs = synthetic_runs({**shift, "fan": 0.0, "rbf": 0.0})
            frames.append(runs.rename(columns={"cell": "label"}).assign(
                part=f"{domain}-{match}", budget=1e4, metric="test.x", params=1.0,
                flops=1.0, train_seconds=1.0, domain=domain, match=match))
    v = repro.verdict(pd.concat(frames, ignore_index=True), repro.protocol())
    by_claim = {c.claim: c.outcome for c in v.comparisons}
    assert by_claim["vision, matched FLOPs: MLP beats KAN"] == AGREES
    assert by_claim["formulas, matched parameters: KAN beats MLP"] == AGREES
    assert by_claim["formulas, matched FLOPs: B-spline MLP beats KAN"] == AGREES
    assert by_claim["tabular, matched parameters: MLP beats KAN"] == INCONCLUSIVE  # no tables
    assert v.outcome == INCONCLUSIVE  # a counted claim without data is not an agreement
    assert "t0 @ 10,000 params" in {x.where for c in v.comparisons for x in c.cells}


def test_protocol_overrides_are_checked():
    repro = get("tabm")
    assert repro.protocol(overrides={"seeds": [3, 4]}).seeds == (3, 4)
    assert repro.protocol(full=True).tag == "full"
    with pytest.raises(SpecError, match="protocol: tabm has no setting 'sedes'; did you mean"):
        repro.protocol(overrides={"sedes": [1]})
    with pytest.raises(SpecError, match="protocol.width: expected a number"):
        repro.protocol(overrides={"width": "wide"})
    with pytest.raises(SpecError, match="unknown table 'nope'"):
        repro.parts(repro.protocol(overrides={"tables": ["nope"]}))
    with pytest.raises(SpecError, match="selects no datasets"):
        repro.parts(repro.protocol(overrides={"tables": []}))
    with pytest.raises(SpecError, match="unknown reproduction 'tabn'; did you mean 'tabm'"):
        get("tabn")


def test_every_protocol_is_a_valid_set_of_sweeps():
    from mlplab.lab.spec import parse_sweep

    for repro in REPRODUCTIONS.values():
        for full in (False, True):
            parts = repro.parts(repro.protocol(full))
            assert len({p.name for p in parts}) == len(parts)
            for part in parts:
                assert parse_sweep(part.sweep).name == part.name


# -- tiny end-to-end runs -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tabm", "kan-vs-mlp"])
def test_tiny_protocol_runs_writes_and_resumes(tmp_path, name):
    out = tmp_path / name
    v = mlplab.repro(name, out=out, protocol=TINY[name], workers=0)
    assert v.outcome in OUTCOMES and v.comparisons and not v.table.empty
    text = (out / "verdict.md").read_text()
    assert v.claim in text and v.figures[0] in text and f"**Verdict: {v.outcome}**" in text
    data = json.loads((out / "verdict.json").read_text())
    assert data["outcome"] == v.outcome and data["info"]["protocol"]["seeds"] == TINY[name]["seeds"]
    assert (out / "verdict.png").stat().st_size > 0
    part = v.info["parts"][0]
    assert (out / "reports" / part / "report.html").is_file()
    res = load_results(out, part)  # an ordinary sweep in the store
    assert set(res.runs["seed"]) == set(TINY[name]["seeds"])
    done = len(res.trials)
    again = mlplab.repro(name, out=out, protocol=TINY[name], workers=0, reports=False)
    assert len(load_results(out, part).trials) == done  # nothing re-run
    assert again.outcome == v.outcome
    grown = mlplab.repro(name, out=out, protocol={**TINY[name], "seeds": [0, 1, 2, 3]},
                         workers=0, reports=False)  # more seeds: only the new trials run
    assert set(load_results(out, part).runs["seed"]) == {0, 1, 2, 3}
    assert all(x.seeds == 4 for c in grown.comparisons for x in c.cells)


def test_worker_processes_run_a_tiny_protocol_like_in_process(tmp_path):
    """Two spawned workers (the default path) finish every trial, as `workers=0` does."""
    v = mlplab.repro("tabm", out=tmp_path / "procs", protocol=TINY["tabm"], workers=2,
                     reports=False)
    assert v.outcome in OUTCOMES and not v.table.empty
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "procs" / "lab.sqlite")) as db:
        statuses = [row[0] for row in db.execute("select status from lab_trials")]
    assert statuses and set(statuses) == {"done"}


def test_kan_protocol_includes_the_bspline_control_on_formulas():
    parts = get("kan-vs-mlp").parts(get("kan-vs-mlp").protocol())
    formulas = [p for p in parts if p.tags["domain"] == "formula"]
    assert len(formulas) >= 12 and {p.tags["match"] for p in parts} == {"params", "flops"}
    assert all("mlp-bspline" in p.sweep["family"] for p in formulas)
    assert not any("mlp-bspline" in p.sweep["family"] for p in parts if p not in formulas)
    assert {p.tags["domain"] for p in parts} == {"vision", "tabular", "formula"}
    assert len({p.label for p in parts if p.tags["domain"] == "tabular"}) >= 3


def test_cli_lists_runs_and_refuses(tmp_path, capsys):
    assert cli(["repro", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "tabm" in listed and "kan-vs-mlp" in listed
    assert cli(["repro", "tabn"]) == 2
    assert "unknown reproduction 'tabn'" in capsys.readouterr().err
    sets = ["--set", "tables=['churn']", "--set", "seeds=[0, 1]", "--set", "max_rows=200",
            "--set", "width=8", "--set", "k=2", "--set", "epochs=1"]
    assert cli(["repro", "tabm", "--out", str(tmp_path / "r"), "--workers", "0", "--quiet",
                *sets]) == 0
    printed = capsys.readouterr().out
    assert "TabM beats the plain MLP" in printed and "verdict: " in printed
    assert (tmp_path / "r" / "verdict.md").is_file()


# -- the default protocols (minutes each) -----------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["tabm", "kan-vs-mlp"])
def test_default_protocol_computes_a_verdict(tmp_path, name):
    v = mlplab.repro(name, out=tmp_path / name)
    assert v.outcome in OUTCOMES
    counted = [c for c in v.comparisons if c.counts]
    assert counted and all(c.pairs >= 3 and not np.isnan(c.effect) for c in counted)
