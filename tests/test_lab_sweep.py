"""Running sweeps: budgets are met, re-runs skip finished trials, failures are recorded and do
not stop the sweep, concurrent workers never run a trial twice, and a worker killed with
SIGKILL mid-trial loses nothing: its trial is reclaimed and finished exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from lab_util import done_events, tiny_sweep, toml_text

import mlplab
from mlplab.lab.store import Store, is_expired
from mlplab.lab.worker import claimable


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished in-process tiny sweep: 2 families x 3 budgets x 2 seeds."""
    out = tmp_path_factory.mktemp("lab") / "tiny"
    result = mlplab.sweep(tiny_sweep(), out=out, workers=0)
    return out, result


def test_every_trial_done_within_budget(finished):
    out, result = finished
    assert result.counts == {"done": 12} and result.finished
    db = Store(out / "lab.sqlite")
    rows = db.trials(1)
    for row in rows:
        assert abs(row["params"] - row["budget"]) <= 0.05 * row["budget"]
        assert row["spec"]["model"]["block"] == row["family"]
        assert (out / "trials").is_dir() and (os.path.isfile(os.path.join(row["run_dir"],
                                                                           "metrics.json")))
        assert row["metrics"]["test"]["accuracy"] > 0 and len(row["curves"]) == 2
    assert done_events(out / "lab.sqlite") == {r["id"]: 1 for r in rows}


def test_rerun_skips_finished_trials(finished):
    out, _ = finished
    before = len(Store(out / "lab.sqlite").events(1))
    again = mlplab.sweep(tiny_sweep(), out=out, workers=2)  # no worker is even started
    assert again.counts == {"done": 12}
    assert len(Store(out / "lab.sqlite").events(1)) == before


def test_changed_spec_under_the_same_name_is_refused(finished):
    out, _ = finished
    with pytest.raises(mlplab.SpecError, match="already holds a sweep 'tiny' with a different"):
        mlplab.sweep(tiny_sweep(train={"epochs": 3}), out=out, workers=0)


def test_a_grown_grid_runs_only_the_new_trials(tmp_path):
    spec = tiny_sweep(name="grow", budget={"params": [3e3]}, seeds=[0])
    mlplab.sweep(spec, out=tmp_path / "g", workers=0)
    store = Store(tmp_path / "g" / "lab.sqlite")
    first = {r["key"]: r["finished_at"] for r in store.trials(1)}
    assert len(first) == 2
    grown = tiny_sweep(name="grow", budget={"params": [3e3, 6e3]}, seeds=[0, 1])
    result = mlplab.sweep(grown, out=tmp_path / "g", workers=0)
    assert result.counts == {"done": 8}
    rows = store.trials(1)
    assert all(first[r["key"]] == r["finished_at"] for r in rows if r["key"] in first)
    assert done_events(tmp_path / "g" / "lab.sqlite") == {r["id"]: 1 for r in rows}
    assert store.get_sweep("grow")["spec"]["seeds"] == [0, 1]


def test_failures_are_recorded_and_do_not_stop_the_sweep(tmp_path):
    # roc_auc is not a metric of 10-class digits: those two trials fail inside mlplab.train
    spec = tiny_sweep(axes={"train.monitor": ["accuracy", "roc_auc"]}, budget={"params": [3e3]},
                      seeds=[0])
    result = mlplab.sweep(spec, out=tmp_path / "f", workers=0)
    assert result.counts == {"done": 2, "failed": 2}
    assert len(result.errors) == 2
    assert all(e.startswith("SpecError: train.monitor: 'roc_auc'") for e in result.errors)
    # --retry-failed runs them again (and they fail again, with the same error)
    again = mlplab.sweep(spec, out=tmp_path / "f", workers=0, retry_failed=True)
    assert again.counts == {"done": 2, "failed": 2}
    failed = [e for e in Store(tmp_path / "f" / "lab.sqlite").events(1) if e["kind"] == "failed"]
    assert len(failed) == 4


def test_concurrent_sqlite_workers_run_each_trial_once(tmp_path):
    out = tmp_path / "c"
    result = mlplab.sweep(tiny_sweep(name="conc"), out=out, workers=2)
    assert result.counts == {"done": 12} and result.workers == 2 and result.threads >= 1
    rows = Store(out / "lab.sqlite").trials(1)
    assert done_events(out / "lab.sqlite") == {r["id"]: 1 for r in rows}
    assert all(r["attempts"] == 1 for r in rows)


def test_expired_lease_is_claimable_and_blocked_finals_wait():
    now = time.time()
    base = {"kind": "run", "family": "a", "budget": 1.0, "seed": 0, "spec": {}, "host": "elsewhere",
            "pid": 1, "worker": "w"}
    rows = [
        {**base, "id": 1, "status": "running", "lease_until": now - 1},  # expired
        {**base, "id": 2, "status": "running", "lease_until": now + 60},  # alive elsewhere
        {**base, "id": 3, "status": "done", "lease_until": None},
        {**base, "id": 4, "status": "pending", "lease_until": None, "kind": "search"},
        {**base, "id": 5, "status": "pending", "lease_until": None, "spec": None},  # waits for 4
    ]
    assert is_expired(rows[0], now) and not is_expired(rows[1], now)
    assert [r["id"] for r in claimable(rows, now)] == [4, 1]
    rows[3]["status"] = "done"
    assert [r["id"] for r in claimable(rows, now)] == [1, 5]


def test_sigkill_mid_trial_reclaims_and_finishes_exactly_once(tmp_path):
    spec = tiny_sweep(name="kill", data={"source": "sklearn:digits", "max_rows": None},
                      train={"epochs": 40, "batch_size": 32}, budget={"params": [2e4]},
                      execution={"lease_seconds": 30})
    path = tmp_path / "kill.toml"
    path.write_text(toml_text(spec))
    out = tmp_path / "k"
    proc = subprocess.Popen([sys.executable, "-m", "mlplab.cli", "sweep", str(path), "--workers",
                             "2", "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    db = out / "lab.sqlite"
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if not db.exists():
            continue
        try:
            with sqlite3.connect(db, timeout=10) as conn:
                rows = conn.execute("SELECT id, pid FROM lab_trials WHERE status = 'running' "
                                    "AND started_at < ?", (time.time() - 0.5,)).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            continue
        if rows:
            victim = rows[0]
            os.kill(victim[1], signal.SIGKILL)
    output, _ = proc.communicate(timeout=240)
    assert victim is not None, output
    assert proc.returncode == 0, output
    store = Store(db)
    rows = {r["id"]: r for r in store.trials(1)}
    assert all(r["status"] == "done" for r in rows.values())
    events = store.events(1)
    reclaimed = {e["trial_id"] for e in events if e["kind"] == "reclaimed"}
    assert len(reclaimed) == 1  # the trial the killed worker held (normally victim[0])
    tid = reclaimed.pop()
    mine = [e for e in events if e["trial_id"] == tid]
    assert [e["kind"] for e in mine] == ["claimed", "reclaimed", "done"]
    assert mine[0]["worker"].endswith(f":{victim[1]}") and rows[tid]["pid"] != victim[1]
    assert rows[tid]["attempts"] == 2
    assert sum(r["attempts"] for r in rows.values()) == len(rows) + 1
    assert done_events(db) == {i: 1 for i in rows}


def test_impossible_budget_fails_before_anything_is_written(tmp_path):
    budget = {"params": [3e3, 1e6], "max_width": 64}
    with pytest.raises(mlplab.SpecError, match=r"budget.params = 1e\+06 for family 'standard' "
                                               r"is impossible: even width 64"):
        mlplab.sweep(tiny_sweep(budget=budget), out=tmp_path / "x", workers=0)
    assert not (tmp_path / "x").exists()


def test_depth_search_resolves_width_per_trial(tmp_path):
    # depth is searched; every trial's width is solved again so the budget still holds
    spec = tiny_sweep(name="depth", axes={"model.block": ["swiglu"]}, budget={"params": [1e4]},
                      seeds=[0], search={"n_trials": 3, "space": {
                          "model.depth": {"low": 1, "high": 3, "int": True}}})
    result = mlplab.sweep(spec, out=tmp_path / "d", workers=0)
    assert result.counts == {"done": 4}
    rows = Store(tmp_path / "d" / "lab.sqlite").trials(1)
    for row in rows:
        assert 1 <= row["spec"]["model"]["depth"] <= 3
        assert abs(row["params"] - 1e4) <= 0.05 * 1e4
    widths = {r["spec"]["model"]["depth"]: r["spec"]["model"]["width"] for r in rows}
    assert all(widths[a] > widths[b] for a in widths for b in widths if a < b)


def test_axes_over_the_data_measure_each_family_on_its_own_data(tmp_path):
    # digits (64 inputs, 10 classes) and wine (13 inputs, 3 classes) need different widths
    spec = tiny_sweep(name="data", axes={"data.source": ["sklearn:digits", "sklearn:wine"]},
                      data={"max_rows": None}, budget={"params": [5e3]}, seeds=[0],
                      train={"epochs": 1})
    result = mlplab.sweep(spec, out=tmp_path / "d", workers=0)
    assert result.counts == {"done": 4}  # x 2 blocks
    rows = Store(tmp_path / "d" / "lab.sqlite").trials(1)
    for row in rows:  # `params` is what mlplab.train counted on the trained model
        assert abs(row["params"] - 5e3) <= 0.05 * 5e3
    width = {(r["spec"]["data"]["source"], r["spec"]["model"]["block"]): r["spec"]["model"]["width"]
             for r in rows}
    assert width["sklearn:digits", "standard"] != width["sklearn:wine", "standard"]


def test_sigterm_releases_claims_and_the_rerun_finishes(tmp_path):
    spec = tiny_sweep(name="term", data={"source": "sklearn:digits", "max_rows": None},
                      train={"epochs": 40, "batch_size": 32}, budget={"params": [2e4]})
    path = tmp_path / "term.toml"
    path.write_text(toml_text(spec))
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "mlplab.cli", "sweep", str(path), "--workers", "2", "--out",
           str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    db = out / "lab.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(db, timeout=10) as conn:
                if conn.execute("SELECT count(*) FROM lab_trials WHERE status = 'running'"
                                ).fetchone()[0]:
                    break
        except sqlite3.OperationalError:
            continue
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in output
    store = Store(db)
    assert "running" not in store.status_counts(1)
    assert any(e["kind"] == "released" for e in store.events(1))
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert store.status_counts(1) == {"done": 4}
    assert done_events(db) == {r["id"]: 1 for r in store.trials(1)}


def test_tabm_with_ple_embeddings_plans_and_runs(tmp_path):
    # planning fits PLE bins on the training rows, per ple_bins value, as mlplab.train does
    spec = tiny_sweep(name="ple", data={"source": "sklearn:diabetes", "max_rows": None},
                      model={"depth": 1, "ensemble": "tabm", "k": 4, "num_embeddings": "ple"},
                      axes={"model.block": ["standard"], "model.ple_bins": [4, 16]}, budget={"params": [2e4]}, seeds=[0],
                      train={"epochs": 1})
    result = mlplab.sweep(spec, out=tmp_path / "p", workers=0)
    assert result.counts == {"done": 2}
    rows = Store(tmp_path / "p" / "lab.sqlite").trials(1)
    for row in rows:  # `params` is what mlplab.train counted on the trained model
        assert abs(row["params"] - 2e4) <= 0.05 * 2e4
        assert row["metrics"]["test"]["rmse"] > 0
    width = {r["spec"]["model"]["ple_bins"]: r["spec"]["model"]["width"] for r in rows}
    assert width[4] > width[16]  # fewer bins leave more of the budget to the backbone
