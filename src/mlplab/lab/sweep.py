"""`mlplab.sweep(spec)`: plan the trials into the store, then run them with N worker processes.

Workers are separate processes (spawned, so each starts its own torch) that share the
machine's cores: `workers x threads <= cores`, with `OMP_WAIT_POLICY=PASSIVE` so an idle
OpenMP pool does not spin. A worker that dies is replaced; its trial is reclaimed once its
lease expires. Running the same sweep again skips finished trials; another machine joins
by running the same spec against the same `--store` URL.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlplab.errors import SpecError
from mlplab.lab.plan import plan, prepare
from mlplab.lab.processes import replace_dead, supervised
from mlplab.lab.spec import SweepSpec, load_sweep, parse_sweep
from mlplab.lab.store import STORE_FILE, Store
from mlplab.lab.worker import Worker, worker_main


@dataclass
class SweepResult:
    """What a sweep call did: status counts over all trials, and where things are."""

    name: str
    out: Path
    store_url: str
    counts: dict[str, int]
    wall_seconds: float
    workers: int
    threads: int
    errors: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return set(self.counts) <= {"done", "failed"}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_starter(target: Callable[..., None], args: tuple[Any, ...],
                   threads: int) -> Callable[[], mp.Process]:
    """`start()` launches one spawned worker process running `target(*args)` with the cores
    split (`OMP_NUM_THREADS` / `MKL_NUM_THREADS` = `threads`) and passive OpenMP waiting, set
    in the child's environment before it imports torch; restarts get the same environment."""
    ctx = mp.get_context("spawn")

    def start() -> mp.Process:
        with _env(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads),
                  MKL_NUM_THREADS=str(threads)):
            process = ctx.Process(target=target, args=args, daemon=False)
            process.start()
        return process

    return start


def as_sweep_spec(spec: SweepSpec | dict[str, Any] | str | Path,
                  overrides: list[str] | None = None) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        from mlplab.spec import apply_overrides

        return parse_sweep(apply_overrides(spec, overrides or []))
    return load_sweep(spec, overrides)


def default_store(out: Path) -> str:
    return str(out / STORE_FILE)


def _progress_loop(store: Store, sweep_id: int, procs: list[mp.Process], start: Any,
                   console: Console | None, max_restarts: int) -> None:
    restarts = 0
    bar = None
    if console is not None:
        bar = Progress(TextColumn("trials"), MofNCompleteColumn(), BarColumn(),
                       TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
        bar.start()
        task = bar.add_task("", total=None)
    try:
        while True:
            counts = store.status_counts(sweep_id)
            total = sum(counts.values())
            finished = counts.get("done", 0) + counts.get("failed", 0)
            if bar is not None:
                bar.update(task, total=total, completed=finished,
                           description=f"running {counts.get('running', 0)}  "
                                       f"failed {counts.get('failed', 0)}")
            budget = max_restarts - restarts if finished < total else 0
            restarts += replace_dead(procs, start, budget)
            if not procs:
                return
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.stop()


def sweep(spec: SweepSpec | dict[str, Any] | str | Path, *, out: str | Path | None = None,
          store: str | None = None, workers: int = 1, retry_failed: bool = False,
          overrides: list[str] | None = None, quiet: bool = True) -> SweepResult:
    """Run (or resume, or join) a sweep; returns when no trial is left pending or running.

    `spec` is a sweep file path, a dict or a `SweepSpec`. `out` (default `runs/<name>`) holds
    the trial directories and, unless `store` names a database URL, `lab.sqlite`.
    `workers=0` runs trials in this process (no subprocesses).
    """
    if workers < 0:
        raise SpecError(f"--workers: expected 0 or more, got {workers}")
    sweep_spec = as_sweep_spec(spec, overrides)
    out_dir = Path(out) if out is not None else Path("runs") / sweep_spec.name
    t0 = time.time()
    planned = plan(sweep_spec)  # every budget is checked before anything is written
    db = Store(store or default_store(out_dir))
    try:
        sweep_id = prepare(db, sweep_spec, planned)
        if retry_failed:
            db.requeue_failed(sweep_id)
        n = max(workers, 1)
        threads = max(1, cores() // n)
        if set(db.status_counts(sweep_id)) <= {"done", "failed"}:
            pass  # nothing left to run: do not start workers
        elif workers == 0:
            import torch

            Worker(db, sweep_spec.name, out_dir).run()
            threads = torch.get_num_threads()
        else:
            start = worker_starter(worker_main, (db.url, sweep_spec.name, str(out_dir), threads),
                                   threads)
            with supervised([start() for _ in range(n)]) as procs:
                _progress_loop(db, sweep_id, procs, start,
                               None if quiet else Console(stderr=True), max_restarts=3 * n)
        counts = db.status_counts(sweep_id)
        errors = [r["error"] for r in db.trials(sweep_id, "error", "status")
                  if r["status"] == "failed" and r["error"]]
        return SweepResult(sweep_spec.name, out_dir, db.display_url, counts, time.time() - t0,
                           workers, threads, errors)
    finally:
        db.close()
