"""`mlplab.lab.processes`: the worker supervision that `mlplab sweep` and `mlplab repro` share,
and `Worker.run_once`, the claim step both of their worker loops are made of."""

from __future__ import annotations

import signal

import pytest

from mlplab.lab.processes import replace_dead, supervised
from mlplab.lab.worker import Step, Worker, interrupt


class FakeProcess:
    def __init__(self, alive: bool = True, exitcode: int | None = None) -> None:
        self.alive, self.exitcode = alive, exitcode
        self.terminated = self.joined = False

    def is_alive(self) -> bool:
        return self.alive

    def terminate(self) -> None:
        self.terminated = True

    def join(self) -> None:
        self.joined = True


def test_replace_dead_drops_exited_workers_and_restarts_failed_ones_within_the_budget():
    ok, failed, other, running = FakeProcess(False, 0), FakeProcess(False, 1), \
        FakeProcess(False, -15), FakeProcess()
    procs = [ok, failed, other, running]
    fresh: list[FakeProcess] = []

    def start() -> FakeProcess:
        fresh.append(FakeProcess())
        return fresh[-1]

    assert replace_dead(procs, start, budget=1) == 1  # two failed, one restart allowed
    assert procs == [running, fresh[0]]
    running.alive = False
    running.exitcode = 1
    assert replace_dead(procs, start, budget=0) == 0 and procs == [fresh[0]]  # no work left


def test_supervised_terminates_and_joins_every_worker_on_an_interrupt():
    before = signal.getsignal(signal.SIGTERM)
    procs = [FakeProcess(), FakeProcess()]
    with pytest.raises(KeyboardInterrupt), supervised(procs) as watched:
        assert signal.getsignal(signal.SIGTERM) is interrupt  # SIGTERM acts like Ctrl-C
        watched.append(FakeProcess())  # a restart inside the block is supervised too
        raise KeyboardInterrupt
    assert all(p.terminated and p.joined for p in procs) and len(procs) == 3
    assert signal.getsignal(signal.SIGTERM) is before
    calm = [FakeProcess()]
    with supervised(calm):
        pass
    assert calm[0].joined and not calm[0].terminated


def test_run_available_and_run_are_made_of_run_once_steps():
    steps = [Step(False, True, True), Step(False, True, False), Step(False, False, False),
             Step(False, True, True), Step(True, False, False)]
    worker = Worker.__new__(Worker)  # no store: run_once is replaced
    worker.poll = 0.0
    queue = list(steps)
    worker.run_once = lambda: queue.pop(0)  # type: ignore[method-assign]
    assert worker.run_available() == (1, False)  # stops at the first step that claimed nothing
    assert worker.run_available() == (1, True)
    queue[:] = list(steps)
    assert worker.run() == 2  # waits through the idle step, stops once all are finished
