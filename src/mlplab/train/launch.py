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


def train_processes(spec, run_dir: Path, *, nproc: int, resume: bool,  # noqa: ANN001 (RunSpec)
                    stop=None, poll: float = 0.5):  # noqa: ANN001  (() -> bool) -> RunResult
    """`mlplab.train(spec, out=run_dir, resume=resume)` in `nproc` processes (torchrun), for a
    sweep trial with `execution.nproc > 1`. Returns the `RunResult` read back from the run
    directory (`model` is None: the weights are in `run_dir/model.safetensors`). `stop()`
    is polled while it runs: True stops every process and raises `TrainingStopped`."""
    from mlplab.errors import TrainingStopped
    from mlplab.run import RunResult
    from mlplab.train.checkpoint import read_json, write_json

    run_dir = Path(run_dir)
    args = ["train", "--resume", str(run_dir)]
    spec_file = run_dir.parent / f".{run_dir.name}.spec.json"  # read once, at the launch
    if not resume:
        write_json(spec_file, spec.model_dump(mode="json"))
        args = ["train", str(spec_file), "--out", str(run_dir)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, default_threads() // nproc)))
    proc = subprocess.Popen([*torchrun_command(nproc, [*args, "--quiet"])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        while proc.poll() is None:
            if stop is not None and stop():
                os.killpg(proc.pid, 15)
                proc.wait()
                raise TrainingStopped("the trial's processes were stopped")
            try:
                proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        spec_file.unlink(missing_ok=True)
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        last = [line for line in output.splitlines() if line.startswith("error:")]
        raise MlplabError(last[-1].removeprefix("error: ") if last else
                          f"the {nproc} training processes failed (torchrun exit code "
                          f"{proc.returncode}): {output.strip().splitlines()[-1:]}")
    m = read_json(run_dir / "metrics.json")
    return RunResult(spec, {k: m[k] for k in ("train", "val", "test")}, m["counts"],
                     m["timings"], m["curves"], m["best_epoch"], m["epochs"],
                     m["stopped_early"], None, run_dir)  # type: ignore[arg-type]
