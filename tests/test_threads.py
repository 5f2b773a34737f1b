"""Threads on a busy machine: the default thread count follows the free cores, and the `mlplab`
command makes OpenMP threads wait passively (set before torch is imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from mlplab.train import threads


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    """`default_threads` recomputed on a machine with 8 usable cores and no own load."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(threads, "_own_load", lambda: 0.0)
    threads.default_threads.cache_clear()
    yield monkeypatch
    threads.default_threads.cache_clear()


@pytest.mark.parametrize(("load", "expected"), [(0.0, 8), (0.4, 8), (2.6, 5), (7.8, 1), (30.0, 1)])
def test_default_threads_are_the_free_cores(fresh, load: float, expected: int) -> None:
    fresh.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert threads.default_threads() == expected


def test_own_load_is_not_counted_as_busy(fresh) -> None:
    fresh.setattr(os, "getloadavg", lambda: (3.2, 0.0, 0.0))
    fresh.setattr(threads, "_own_load", lambda: 2.0)  # this process trained on 2 cores
    assert threads.default_threads() == 7
    assert threads.free_cores(2, load=1.0, own=0.02) == 1  # the other core is busy


def test_omp_num_threads_wins_and_the_choice_is_made_once(fresh) -> None:
    calls = []
    fresh.setattr(os, "getloadavg", lambda: calls.append(1) or (6.0, 0.0, 0.0))
    assert threads.default_threads() == 2
    fresh.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.default_threads() == 2 and len(calls) == 1  # one choice per process
    threads.default_threads.cache_clear()
    fresh.setenv("OMP_NUM_THREADS", "3")  # set by the user, or by `mlplab sweep` per worker
    assert threads.default_threads() == 3


def test_no_load_average_means_all_cores(fresh) -> None:
    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average")

    fresh.setattr(os, "getloadavg", unavailable)
    assert threads.default_threads() == 8


def test_using_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with threads.using_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_runs_use_the_default_thread_count(monkeypatch, tiny_spec) -> None:
    import mlplab

    monkeypatch.setattr("mlplab.run.default_threads", lambda: 1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        spec = tiny_spec(train={"threads": None, "epochs": 1})
        mlplab.train(spec)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_resume_reuses_the_thread_count_the_run_started_with(monkeypatch, tiny_spec,
                                                                tmp_path) -> None:
    import json

    from conftest import crash_after_checkpoint

    import mlplab
    from mlplab.train.trainer import Trainer

    spec = tiny_spec(train={"threads": None, "epochs": 3})
    seen: list[int] = []
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self: (seen.append(torch.get_num_threads()),
                                                      fit(self))[1])
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("mlplab.run.default_threads", lambda: 2)  # an idle machine
        with crash_after_checkpoint(1, KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
            mlplab.train(spec, out=tmp_path / "run")
        assert json.loads((tmp_path / "run" / "model.json").read_text())["threads"] == 2
        monkeypatch.setattr("mlplab.run.default_threads", lambda: 1)  # now a busy one
        mlplab.resume(tmp_path / "run")
        assert seen == [2, 2]
    finally:
        torch.set_num_threads(before)


SPY = """
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
sys.meta_path.insert(0, Spy())
import mlplab_launcher
sys.argv = ["mlplab", "--help"]
try:
    mlplab_launcher.main()
except SystemExit:
    pass
print("torch imported with", seen)
"""


@pytest.mark.parametrize(("env", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_cli_sets_passive_waiting_before_torch_loads(env: str | None, expected: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env is not None:
        environ["OMP_WAIT_POLICY"] = env  # a policy the user chose is kept
    proc = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True,
                          env=environ, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"torch imported with [{expected!r}]" in proc.stdout


def test_console_script_starts_at_the_launcher() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "mlplab"]
    assert script.value == "mlplab_launcher:main"
