"""A worker: claim a trial, run it through `mlplab.train`, record the result; repeat.

Claims are leases kept alive by a heartbeat thread. A worker that dies mid-trial stops
beating; once its lease expires (or, on the same host, once its process is gone) another
worker reclaims the trial and resumes it from its last epoch checkpoint. A worker whose
claim was taken over (its heartbeat finds another token) stops training after the current
epoch, records nothing and logs a `lost` event. Failures are recorded with their error text
and never stop the sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from mlplab.errors import MlplabError, TrainingStopped
from mlplab.lab import search
from mlplab.lab.budget import Meters
from mlplab.lab.plan import trial_spec
from mlplab.lab.spec import SweepSpec
from mlplab.lab.store import FINISHED, Store, is_expired, worker_id
from mlplab.spec import RunSpec, parse_spec

ROW_COLUMNS = ("id", "key", "kind", "family", "family_values", "budget", "seed", "search_index",
               "status", "token", "worker", "host", "pid", "lease_until", "optuna_trial", "spec")


class Heartbeat(threading.Thread):
    """Renews a claim's lease every `lease / 4` seconds until stopped; sets `lost` (and stops
    beating) once another worker has taken the claim over."""

    def __init__(self, store: Store, trial_id: int, token: str, lease: float) -> None:
        super().__init__(daemon=True)
        self.store, self.trial_id, self.token, self.lease = store, trial_id, token, lease
        self.stopped = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.lease / 4):
            try:
                if not self.store.heartbeat(self.trial_id, self.token, self.lease):
                    self.lost.set()
                    return
            except Exception:  # a transient database error: try again next beat
                continue

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def claimable(rows: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Rows a worker may claim now, best first: search trials, then big budgets first.

    A final run of a searched family x budget waits until all of its search trials finished.
    """
    open_search = {(r["family"], r["budget"]) for r in rows
                   if r["kind"] == "search" and r["status"] not in FINISHED}
    ready = [r for r in rows if (r["status"] == "pending" or is_expired(r, now))
             and not (r["kind"] == "run" and r["spec"] is None
                      and (r["family"], r["budget"]) in open_search)]
    return sorted(ready, key=lambda r: (r["kind"] != "search", -(r["budget"] or 0), r["seed"],
                                        r["id"]))


class Step(NamedTuple):
    """What one `Worker.run_once` did."""

    finished: bool  # every trial of the sweep is done or failed: nothing was claimed
    claimed: bool  # a trial was claimed and run
    recorded: bool  # ... and its result (done or failed) was recorded by this worker


class Worker:
    """Runs the trials of one sweep until none is left; `run()` returns how many it finished."""

    def __init__(self, store: Store, name: str, out: str | Path, *, poll: float = 1.0) -> None:
        self.store, self.out, self.poll = store, Path(out), poll
        row = store.get_sweep(name)
        if row is None:
            raise MlplabError(f"the store {store.display_url} has no sweep {name!r}")
        self.sweep_id = int(row["id"])
        self.spec = SweepSpec.model_validate(row["spec"])
        self.info = row["info"]
        self.lease = self.spec.execution.lease_seconds
        self.me = worker_id()
        self.meters = Meters()

    def run_once(self) -> Step:
        """Claim the best claimable trial (`claimable`; another worker may win a row, then
        the next is tried) and run it."""
        rows = self.store.trials(self.sweep_id, *ROW_COLUMNS)
        if all(r["status"] in FINISHED for r in rows):
            return Step(finished=True, claimed=False, recorded=False)
        for row in claimable(rows, self.store.now()):
            token = self.store.try_claim(row, self.me, self.lease)
            if token is not None:
                return Step(finished=False, claimed=True, recorded=self.execute(row, token))
        return Step(finished=False, claimed=False, recorded=False)

    def run(self) -> int:
        """Run trials until every one is finished, waiting `poll` seconds whenever the rest
        are held by other workers (their leases may expire): how many were recorded here."""
        done = 0
        while not (step := self.run_once()).finished:
            done += step.recorded
            if not step.claimed:
                time.sleep(self.poll)
        return done

    def run_available(self) -> tuple[int, bool]:
        """Run trials until none is claimable now, without waiting: `(trials recorded here,
        every trial finished)`."""
        done = 0
        while True:
            step = self.run_once()
            if not step.claimed:
                return done, step.finished
            done += step.recorded

    # -- one trial ------------------------------------------------------------------------

    def _study(self, row: dict[str, Any]) -> str:
        return search.study_name(self.spec.name, row["family"], row["budget"])

    def resolve(self, row: dict[str, Any], token: str) -> RunSpec:
        """The trial's run spec; search trials ask Optuna, final runs take the best values."""
        if row["spec"] is not None:
            return parse_spec(row["spec"])
        assert self.spec.search is not None
        if row["kind"] == "search":
            number, values = search.ask(self.store.url, self._study(row), self.spec.search,
                                        row["key"])
            row["optuna_trial"] = number
        else:
            values = search.best_params(self.store.url, self._study(row))
            if values is None:
                raise MlplabError(f"every search trial of family {row['family']!r} at budget "
                                  f"{row['budget']:g} failed; see their errors")
        run, counts = trial_spec(self.spec, self.meters, row["family_values"], row["budget"],
                                 row["seed"], values)
        self.store.update_claimed(row["id"], token, spec=run.model_dump(mode="json"),
                                  optuna_trial=row["optuna_trial"], params=counts["params"],
                                  flops=counts["flops_per_sample"])
        return run

    def run_dir(self, row: dict[str, Any]) -> Path:
        slug = row["key"].replace("/", "_").replace("=", "").replace(" ", "-")
        return self.out / "trials" / f"{row['id']:05d}-{slug}"

    def execute(self, row: dict[str, Any], token: str) -> bool:
        """Run one claimed trial; True when its result (done or failed) was recorded.

        When the heartbeat finds the claim taken over, training stops after its current
        epoch (before that epoch's checkpoint), nothing is recorded, and a `lost` event says why.
        """
        import mlplab

        beat = Heartbeat(self.store, row["id"], token, self.lease)
        beat.start()
        started = time.time()
        value: float | None = None
        try:
            spec = self.resolve(row, token)
            run_dir = self.run_dir(row)
            resume = _same_spec(run_dir, spec)
            if run_dir.exists() and not resume:
                shutil.rmtree(run_dir)
            if self.spec.execution.nproc > 1:  # this trial data-parallel, in N processes
                from mlplab.train.launch import train_processes

                result = train_processes(spec, run_dir, nproc=self.spec.execution.nproc,
                                         resume=resume, stop=beat.lost.is_set)
            else:
                result = mlplab.train(spec, out=run_dir, resume=resume, quiet=True,
                                      stop=beat.lost.is_set)
            if not self.store.heartbeat(row["id"], token, self.lease):
                raise TrainingStopped(f"training finished after epoch {result.epochs}")
            if not self.spec.execution.keep_checkpoints:
                shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            summary = result.summary()
            metrics = {k: summary[k] for k in ("train", "val", "test")}
            value = metrics["val"].get(self.info["monitor"])
            if row["kind"] == "search":
                search.tell(self.store.url, self._study(row), row["optuna_trial"], value)
            if self.store.finish(
                    row["id"], token, self.me, status="done", params=result.counts["params"],
                    trainable_params=result.counts["trainable_params"],
                    flops=result.counts["flops_per_sample"], metrics=metrics,
                    curves=result.curves, timings={**result.timings,
                                                   "best_epoch": result.best_epoch,
                                                   "epochs": result.epochs},
                    wall_seconds=time.time() - started, run_dir=str(run_dir)):
                return True
            self._lost(row, "training finished")
            return False
        except TrainingStopped as err:
            self._lost(row, str(err))
            return False
        except KeyboardInterrupt:
            self.store.release(row["id"], token, self.me)
            raise
        except Exception as err:  # recorded, never fatal to the sweep
            if beat.lost.is_set():  # not ours to record any more
                self._lost(row, f"training failed ({type(err).__name__})")
                return False
            text = f"{type(err).__name__}: {err}"
            if not isinstance(err, MlplabError):
                text += "\n" + "".join(traceback.format_exception(err)[-3:])
            if row["kind"] == "search" and row.get("optuna_trial") is not None:
                try:
                    search.tell(self.store.url, self._study(row), row["optuna_trial"], None)
                except Exception:
                    pass
            return self.store.finish(row["id"], token, self.me, status="failed", error=text,
                                     wall_seconds=time.time() - started, detail=str(err)[:200])
        finally:
            beat.stop()

    def _lost(self, row: dict[str, Any], what: str) -> None:
        """Log (event `lost`) that this worker gave up a trial whose claim another one took."""
        self.store.log_event(row["id"], "lost", self.me,
                             f"{what}: the claim had been taken over by "
                             f"{self.store.holder(row['id'])}; no result recorded")


def _same_spec(run_dir: Path, spec: RunSpec) -> bool:
    """Does `run_dir` hold a (partial) run of exactly this spec, so it can be resumed?"""
    path = run_dir / "spec.json"
    if not (path.is_file() and (run_dir / "model.json").is_file()):
        return False
    try:
        return json.loads(path.read_text()) == spec.model_dump(mode="json")
    except (OSError, ValueError):
        return False


def interrupt(signum: int, frame: Any) -> None:
    """Signal handler: stop like Ctrl-C does (the claimed trial is released, not lost)."""
    raise KeyboardInterrupt


def serve(store_url: str, threads: int, job: Callable[[Store], object]) -> None:
    """The body of a worker process: passive OpenMP waiting, SIGTERM/SIGINT as Ctrl-C (the
    claimed trial is released), `threads` torch threads, then `job(store)` until it returns
    or is interrupted."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, interrupt)  # terminate() from the parent: give the trial back
    signal.signal(signal.SIGINT, interrupt)  # also when started with SIGINT ignored
    import torch

    torch.set_num_threads(threads)
    store = Store(store_url)
    try:
        job(store)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def worker_main(store_url: str, name: str, out: str, threads: int) -> None:
    """Entry point of a worker process: split the cores, then run trials until none is left."""
    serve(store_url, threads, lambda store: Worker(store, name, out).run())
