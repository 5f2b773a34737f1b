"""Run a reproduction: plan all its sweeps into one store, drain them with N worker processes,
then write each sweep's lab report, `verdict.md`, `verdict.json` and `verdict.png`.

Every part is an ordinary sweep in `<out>/lab.sqlite` (so `mlplab report/compare <out>
--name <part>` work, and running again skips finished trials). The workers are the lab's
own (`mlplab.lab.worker.Worker.run_available`: claim, `mlplab.train`, record) taking trials
from any part with work left, so no core idles at the tail of one part while another has
trials; `mlplab.lab.processes.supervised` watches them as it does a sweep's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from mlplab.errors import MlplabError
from mlplab.lab.plan import plan, prepare
from mlplab.lab.processes import replace_dead, supervised
from mlplab.lab.results import load_results
from mlplab.lab.spec import parse_sweep
from mlplab.lab.store import FINISHED, STORE_FILE, Store
from mlplab.lab.sweep import cores, worker_starter
from mlplab.lab.worker import Worker, serve
from mlplab.repro.base import Part, Reproduction, collect
from mlplab.repro.verdict import Verdict


def drain(store: Store, names: list[str], out: Path, *, poll: float = 1.0) -> int:
    """Run the trials of the sweeps `names` until all are finished; returns how many ran here."""
    workers = [Worker(store, name, out) for name in names]
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
    serve(store_url, threads, lambda store: drain(store, names, Path(out)))


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
    restarts, last = 0, ""
    with supervised([start() for _ in range(workers)]) as procs:
        while procs:
            counts = _counts(store, ids)
            finished = sum(counts.get(s, 0) for s in FINISHED)
            line = (f"trials {finished}/{sum(counts.values())} (running "
                    f"{counts.get('running', 0)}, failed {counts.get('failed', 0)})")
            if console is not None and line != last:
                console.print(line)
                last = line
            budget = 3 * workers - restarts if finished < sum(counts.values()) else 0
            restarts += replace_dead(procs, start, budget)
            time.sleep(0.5 if procs else 0)


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


def finish_script(verdict: Verdict, protocol: Any, out: Path, started: float) -> Verdict:
    """A script reproduction's last step: the run's facts in `verdict.info` (wall seconds
    since `started`), then verdict.md/json/png in `out`."""
    from mlplab.repro.report import write_outputs

    verdict.info.update(out=str(out), wall_seconds=round(time.time() - started, 1), workers=0,
                        parts=[], protocol=_protocol_dict(protocol))
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(verdict, {}, [], out, reports=False)
    return verdict


def _protocol_dict(protocol: Any) -> dict[str, Any]:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(protocol).items()}
