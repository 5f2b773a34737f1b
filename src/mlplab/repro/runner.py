"""Run a reproduction: plan all its sweeps into one store, drain them with N worker processes,
then write each sweep's lab report, `verdict.md`, `verdict.json` and `verdict.png`.

Every part is an ordinary sweep in `<out>/lab.sqlite` (so `mlplab report/compare <out>
--name <part>` work, and running again skips finished trials). The workers are the lab's
own (`mlplab.lab.worker.Worker`: claim, `mlplab.train`, record) taking trials from any part
with work left, so no core idles at the tail of one part while another has trials.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from mlplab.errors import MlplabError
from mlplab.lab.plan import plan, prepare
from mlplab.lab.results import load_results
from mlplab.lab.spec import parse_sweep
from mlplab.lab.store import FINISHED, STORE_FILE, Store
from mlplab.lab.sweep import cores, worker_starter
from mlplab.lab.worker import ROW_COLUMNS, Worker, claimable, interrupt
from mlplab.repro.base import Part, Reproduction, collect
from mlplab.repro.verdict import Verdict


class PartWorker(Worker):
    """A lab worker that returns when its sweep has nothing claimable instead of waiting."""

    def run_available(self) -> tuple[int, bool]:
        """Run claimable trials until none is left: `(trials run, sweep finished)`."""
        done = 0
        while True:
            rows = self.store.trials(self.sweep_id, *ROW_COLUMNS)
            if all(r["status"] in FINISHED for r in rows):
                return done, True
            for row in claimable(rows, self.store.now()):
                token = self.store.try_claim(row, self.me, self.lease)
                if token is not None:
                    done += self.execute(row, token)
                    break
            else:
                return done, False


def drain(store: Store, names: list[str], out: Path, *, poll: float = 1.0) -> int:
    """Run the trials of the sweeps `names` until all are finished; returns how many ran here."""
    workers = [PartWorker(store, name, out) for name in names]
    total = 0
    while True:
        ran, finished = 0, True
        for worker in workers:
            n, done = worker.run_available()
            ran, finished = ran + n, finished and done
        total += ran
        if finished:
            return total
        if not ran:
            time.sleep(poll)  # others hold the last trials; their leases may still expire


def _worker_main(store_url: str, names: list[str], out: str, threads: int) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    import torch

    torch.set_num_threads(threads)
    store = Store(store_url)
    try:
        drain(store, names, Path(out))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _counts(store: Store, ids: list[int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for sweep_id in ids:
        for status, n in store.status_counts(sweep_id).items():
            total[status] = total.get(status, 0) + n
    return total


def _run_processes(store: Store, ids: list[int], names: list[str], out: Path, workers: int,
                   console: Console | None) -> None:
    threads = max(1, cores() // workers)
    start = worker_starter(_worker_main, (store.url, names, str(out), threads), threads)
    procs = [start() for _ in range(workers)]
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    restarts, last = 0, ""
    try:
        while procs:
            counts = _counts(store, ids)
            finished = sum(counts.get(s, 0) for s in FINISHED)
            line = (f"trials {finished}/{sum(counts.values())} (running "
                    f"{counts.get('running', 0)}, failed {counts.get('failed', 0)})")
            if console is not None and line != last:
                console.print(line)
                last = line
            for p in list(procs):
                if not p.is_alive():
                    procs.remove(p)
                    if p.exitcode != 0 and finished < sum(counts.values()) and \
                            restarts < 3 * workers:
                        restarts += 1
                        procs.append(start())
            time.sleep(0.5 if procs else 0)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for p in procs:
            p.join()


def run_parts(parts: list[Part], out: Path, *, workers: int, quiet: bool = True) -> None:
    """Plan every part (all budgets checked before anything is written), register them in
    `<out>/lab.sqlite`, and run what is left with `workers` processes (0: in this process)."""
    specs = [parse_sweep(part.sweep) for part in parts]
    planned = [plan(spec) for spec in specs]
    out.mkdir(parents=True, exist_ok=True)
    store = Store(str(out / STORE_FILE))
    try:
        ids = [prepare(store, spec, p) for spec, p in zip(specs, planned, strict=True)]
        names = [spec.name for spec in specs]
        console = None if quiet else Console(stderr=True, highlight=False)
        if set(_counts(store, ids)) <= set(FINISHED):
            return
        if workers == 0:
            drain(store, names, out)
        else:
            _run_processes(store, ids, names, out, workers, console)
        counts = _counts(store, ids)
        if not set(counts) <= set(FINISHED):
            raise MlplabError("some trials are unfinished (workers kept dying); run the "
                              "reproduction again")
    finally:
        store.close()


def run_reproduction(repro: Reproduction, protocol: Any, out: Path, *, workers: int,
                     quiet: bool = True, reports: bool = True) -> Verdict:
    """Run (or resume) the protocol's sweeps, judge the claims, write the outputs."""
    from mlplab.repro.report import write_outputs

    parts = repro.parts(protocol)
    t0 = time.time()
    run_parts(parts, out, workers=workers, quiet=quiet)
    wall = time.time() - t0
    results = {part.name: load_results(out, part.name) for part in parts}
    verdict = repro.verdict(collect(parts, results), protocol)
    verdict.info.update(out=str(out), wall_seconds=round(wall, 1), workers=workers,
                        parts=[p.name for p in parts], protocol=_protocol_dict(protocol))
    if repro.finish is not None:
        repro.finish(verdict, results, parts, out)
    write_outputs(verdict, results, parts, out, reports=reports)
    return verdict


def _protocol_dict(protocol: Any) -> dict[str, Any]:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(protocol).items()}
