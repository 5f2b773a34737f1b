"""One writer per run directory: an exclusive `fcntl.flock` on `<run_dir>/.lock`.

The lock is held for the whole of `mlplab.train` (and `--resume`); the operating system
releases it when the process exits, even after `kill -9`, so a lock is never stale. The
holder writes its pid into the file and deletes the file when it is done (a killed holder
leaves it behind, harmless: the next writer locks it again). A writer that locked a file
someone deleted meanwhile notices (the path names another inode) and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from mlplab.errors import RunBusyError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's lock within the block; `RunBusyError` if another process
    (or another `train` in this process) holds it. `run_dir` must exist."""
    path = Path(run_dir) / LOCK_FILE
    fd = _acquire(path, run_dir)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it; then closing releases it
        os.close(fd)


def _acquire(path: Path, run_dir: str | Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunBusyError(
                f"run directory {str(run_dir)!r} is being trained by another process{who}; "
                "wait for it to finish (then --resume if it was stopped) or train into "
                "another --out") from None
        except BaseException:
            os.close(fd)
            raise
        mine = os.fstat(fd)
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the holder deleted the file between our open and lock: again
