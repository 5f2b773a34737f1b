"""Supervising worker processes: the part `mlplab sweep` and `mlplab repro` share.

`supervised(procs)` wraps the parent's wait for its workers: SIGTERM to the parent acts like
Ctrl-C, an interrupt terminates every worker (each gives its claimed trial back), and the
workers are always joined. `replace_dead(procs, start, budget)` is one round of the wait loop's
bookkeeping: drop the workers that exited, restart the ones that failed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Iterator

from mlplab.lab.worker import interrupt


@contextlib.contextmanager
def supervised(procs: list[mp.Process]) -> Iterator[list[mp.Process]]:
    """Within the block (which may add restarted workers to `procs`): SIGTERM raises
    KeyboardInterrupt in the main thread; on KeyboardInterrupt every worker is terminated
    (its SIGTERM handler releases its trial) and the interrupt goes on; on leaving, the
    previous SIGTERM handler is back and every worker in `procs` is joined."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        yield procs
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for p in procs:
            p.join()


def replace_dead(procs: list[mp.Process], start: Callable[[], mp.Process], budget: int) -> int:
    """Remove the workers of `procs` that exited (`is_alive()` also reaps them) and start a
    new one for each that failed (nonzero exit code), at most `budget` of them (0 once there
    is no work left). Returns how many were started."""
    started = 0
    for p in list(procs):
        if not p.is_alive():
            procs.remove(p)
            if p.exitcode != 0 and started < budget:
                started += 1
                procs.append(start())
    return started
