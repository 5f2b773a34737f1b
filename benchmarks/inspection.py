"""Inspect: the cost of `inspect.track = "sparsity"`, and a transcoder on a digits block.

(Not `benchmarks/inspect.py`: run as a script, that name would shadow the standard library's
`inspect` module, which torch imports.)

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/inspection.py [--reps 3] [--threads 1] [--rows 256 128] [--parts cost transcoder]

1. Tracking cost. `examples/digits.toml` (40 epochs, no early stop) trained into a run
   directory with and without tracking, interleaved `--reps` times in this process; the
   figure is the median wall time of `mlplab.train` with tracking over the median without,
   and the seconds spent inside the tracking hook over the tracked run's wall time.
2. Transcoder. The digits run's block 2 (width 256) replaced by a TopK transcoder with 8x
   expansion (2048 latents) and k = 32, with and without the skip connection: held-out L0,
   variance explained, test accuracy with the block replaced, dead latents.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mlplab
from mlplab.inspect import track
from mlplab.spec import load_spec

SPEC = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"


class TimedTracker(track.SparsityTracker):
    seconds = 0.0

    def _record(self, trainer) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        super()._record(trainer)
        TimedTracker.seconds += time.perf_counter() - t0


def tracking_cost(reps: int, rows: tuple[int, ...]) -> list[str]:
    base = ["train.patience=1000", f"train.threads={torch.get_num_threads()}"]
    walls: dict[str, list[float]] = {"off": [], **{f"{r} rows": [] for r in rows}}
    hook: dict[str, list[float]] = {k: [] for k in walls}
    original = track.SparsityTracker
    track.SparsityTracker = TimedTracker  # tracking_hooks builds this class
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(reps):
                for key in walls:
                    extra = [] if key == "off" else [
                        "inspect.track=sparsity", f"inspect.probe_rows={key.split()[0]}"]
                    spec = load_spec(SPEC, base + extra)
                    TimedTracker.seconds = 0.0
                    t0 = time.perf_counter()
                    mlplab.train(spec, out=Path(tmp) / f"{key}-{rep}".replace(" ", ""))
                    walls[key].append(time.perf_counter() - t0)
                    hook[key].append(TimedTracker.seconds)
    finally:
        track.SparsityTracker = original
    off = statistics.median(walls["off"])
    lines = ["| tracking | wall s (median) | vs off | hook s | hook / wall |", "|---|---|---|---|---|"]
    for key, values in walls.items():
        wall = statistics.median(values)
        h = statistics.median(hook[key])
        lines.append(f"| {key} | {wall:.2f} | {wall / off:.3f}x | {h:.2f} | {h / wall:.1%} |")
    return lines


def transcoder_figures(epochs: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        run = mlplab.train(load_spec(SPEC), out=Path(tmp) / "digits")
        lines = ["| skip | latents | k | L0 (test) | variance explained (test) | (train) | "
                 "test accuracy: block replaced / intact | dead latents | epochs | train s |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for skip in (True, False):
            t0 = time.perf_counter()
            report = mlplab.inspect(run.run_dir, what=[], transcoder={
                "block": 2, "expansion": 8, "k": 32, "skip": skip, "epochs": epochs})
            t = report.transcoder
            lines.append(
                f"| {'yes' if skip else 'no'} | {t.latents} | {t.k} | {t.l0:.1f} | "
                f"{1 - t.fvu:.1%} | {1 - t.fvu_train:.1%} | "
                f"{t.task_metrics['accuracy']:.4f} / {t.intact_metrics['accuracy']:.4f} | "
                f"{t.dead} | {t.epochs} | {time.perf_counter() - t0:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--transcoder-epochs", type=int, default=300)
    parser.add_argument("--parts", nargs="+", default=["cost", "transcoder"],
                        choices=["cost", "transcoder"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if "cost" in args.parts:
        print("\n".join(tracking_cost(args.reps, tuple(args.rows))), flush=True)
        print()
    if "transcoder" in args.parts:
        print("\n".join(transcoder_figures(args.transcoder_epochs)))


if __name__ == "__main__":
    main()
