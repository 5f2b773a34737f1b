"""How many torch threads to train with when none are set: the free cores, not all cores.

On a machine whose other cores are busy, one OpenMP thread per core makes every parallel
region wait for a core that is not there (a 4.6 s run took 46 s). So the default is the
cores this process may run on minus the busy ones (the 1-minute load average, less this
process's own share of it), at least 1. An `OMP_NUM_THREADS` in the environment (set by the
user, or by `mlplab sweep` for its workers) wins. The choice is made once per process, so two
fits in one process use the same count (results depend on it in the last bits).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Iterator

import torch

LOAD_WINDOW_S = 60.0  # the time constant of the kernel's 1-minute load average
_STARTED = (time.monotonic(), time.process_time())


def free_cores(cores: int, load: float, own: float = 0.0) -> int:
    """`cores` minus the rounded load of other processes (`load - own`), at least 1."""
    return max(1, cores - round(max(0.0, load - own)))


def _own_load() -> float:
    """This process's share of the 1-minute load average: its CPU rate since mlplab was
    imported, weighted the way the kernel's exponential average weights that span."""
    wall = time.monotonic() - _STARTED[0]
    if wall <= 0:
        return 0.0
    rate = (time.process_time() - _STARTED[1]) / wall
    return rate * (1.0 - math.exp(-wall / LOAD_WINDOW_S))


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def default_threads() -> int:
    """Threads for `train.threads = None` / `threads=None`: `OMP_NUM_THREADS` if set, else the
    free cores (see the module docstring); computed once per process."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        load = 0.0
    return free_cores(_cores(), load, _own_load())


@contextlib.contextmanager
def using_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
