"""`mlplab train SPEC --nproc N`: the same command under `torch.distributed.run` (torchrun).

The parent resolves the run directory (so every rank writes to the same one), splits the
free cores between the ranks (`OMP_NUM_THREADS`, unless set or `train.threads` is given) and
runs `python -m torch.distributed.run --standalone --nproc-per-node N -m mlplab train ...`.
torchrun stops every rank when one dies (kill -9 included); the run then continues from its
last whole checkpoint with `mlplab train --resume RUN_DIR --nproc N`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlplab.errors import MlplabError
from mlplab.train.threads import default_threads


def torchrun_command(nproc: int, args: list[str]) -> list[str]:
    """The argv that runs `mlplab <args>` in `nproc` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "mlplab", *args]


def launch(nproc: int, args: list[str], run_dir: Path) -> None:
    """Run `mlplab <args>` in `nproc` processes and wait; an `MlplabError` if any failed."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, default_threads() // nproc)))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("PYTHONUNBUFFERED", "1")
    code = subprocess.call(torchrun_command(nproc, args), env=env)
    if code != 0:
        raise MlplabError(
            f"the {nproc} training processes stopped (torchrun exit code {code}); the run in "
            f"{run_dir} continues from its last checkpoint with `mlplab train --resume "
            f"{run_dir} --nproc {nproc}`")
