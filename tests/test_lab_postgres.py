"""Many machines, one store: a real PostgreSQL server (initdb into a temp dir, loopback port)
and two independent `mlplab sweep` processes against one sweep -- every trial completes
exactly once, and the Optuna studies live in the same database."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from lab_util import tiny_sweep, toml_text

from mlplab.cli import run
from mlplab.lab.store import Store


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server; yields `postgresql://lab@127.0.0.1:<port>/lab`."""
    import psycopg

    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make test installs the Debian package "
                    "'postgresql'; it could not be installed here)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="mlplab-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root: use the package's system user
        try:
            shutil.chown(root, user="postgres", group="postgres")
        except (LookupError, PermissionError):
            pytest.skip("running as root and there is no 'postgres' system user for initdb")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    port = _free_port()
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "lab",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60",
                    "start"], check=True, capture_output=True)
    base = f"postgresql://lab@127.0.0.1:{port}"
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE lab")
        yield f"{base}/lab"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_machines_one_postgres_store(postgres_url, tmp_path):
    spec = tiny_sweep(name="pg", budget={"params": [3e3, 6e3]}, search={"n_trials": 2},
                      train={"epochs": 3})
    path = tmp_path / "pg.toml"
    path.write_text(toml_text(spec))
    procs = [subprocess.Popen([sys.executable, "-m", "mlplab.cli", "sweep", str(path), "--store",
                               postgres_url, "--out", str(tmp_path / f"machine{i}"),
                               "--workers", "1", "--quiet"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    store = Store(postgres_url)
    try:
        assert store.sweep_names() == ["pg"]
        rows = store.trials(1)
        # 2 families x 2 budgets x (2 search trials + 2 seeds)
        assert len(rows) == 16 and all(r["status"] == "done" for r in rows)
        done = [e["trial_id"] for e in store.events(1) if e["kind"] == "done"]
        assert sorted(done) == sorted(r["id"] for r in rows)  # each exactly once
        assert all(r["attempts"] == 1 for r in rows)
        for r in rows:
            assert abs(r["params"] - r["budget"]) <= 0.05 * r["budget"]
        # the Optuna studies are in the same database
        import optuna

        studies = optuna.get_all_study_names(storage=store.url)
        assert sorted(studies) == sorted({f"pg/{r['family']}/{r['budget']:g}" for r in rows})
        searched = [r for r in rows if r["kind"] == "search"]
        assert sorted(r["optuna_trial"] for r in searched) == [0, 0, 0, 0, 1, 1, 1, 1]
    finally:
        store.close()
    assert "16 done" in outputs[0] and "16 done" in outputs[1]
    # the report and the table read straight from the database
    assert run(["report", postgres_url, "--name", "pg", "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").read_text().count("data:image/png;base64,") >= 4
    assert run(["compare", postgres_url]) == 0  # the store holds one sweep: no --name needed


def test_leases_follow_the_database_clock(postgres_url, monkeypatch):
    """Machines with skewed clocks: an hour-slow one still holds a live lease in database time,
    and an hour-fast one can neither see it as expired nor take it."""
    import types

    import psycopg

    from mlplab.lab import store as store_mod
    from mlplab.lab.worker import ROW_COLUMNS, claimable

    base = postgres_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE clock")
    store = Store(f"{base}/clock")
    try:
        sweep_id = store.ensure_sweep("clock", {"name": "clock"}, {})
        store.add_trials(sweep_id, [{"key": "run/a/-/seed=0", "kind": "run", "family": "a",
                                     "family_values": {}, "budget": None, "seed": 0}])

        def skew(seconds: float) -> None:
            clock = types.SimpleNamespace(time=lambda: time.time() + seconds, sleep=time.sleep)
            monkeypatch.setattr(store_mod, "time", clock)

        skew(-3600)  # the claiming machine is an hour slow
        (row,) = store.trials(sweep_id, *ROW_COLUMNS)
        token = store.try_claim(row, "slow:1", 60)
        assert token is not None
        (held,) = store.trials(sweep_id, *ROW_COLUMNS)
        assert held["lease_until"] > store.now() + 30  # 60 s from the database's now
        assert store.heartbeat(held["id"], token, 60)
        (held,) = store.trials(sweep_id, *ROW_COLUMNS)
        assert held["lease_until"] > store.now() + 30
        skew(+3600)  # another machine is an hour fast: by its own clock the lease ran out
        assert store_mod.is_expired(held, store_mod.time.time())
        assert claimable([held], store.now()) == []
        assert store.try_claim(held, "fast:2", 60) is None
        assert [e["kind"] for e in store.events(sweep_id)] == ["claimed"]
    finally:
        store.close()
