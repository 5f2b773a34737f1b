"""`inspect.track = "sparsity"`: activation statistics per epoch, recorded by the one trainer.

`SparsityTracker` is an epoch hook (`mlplab.train.hooks`). Before the first epoch and after
every epoch it runs the model in eval mode (no dropout, no RNG drawn, batch-norm statistics
untouched, so training is unchanged) on a fixed probe batch of `rows` evenly spaced training
rows and appends one record per block to `<run_dir>/inspect/sparsity.json` (written
atomically). On resume it reads that file back and drops records past the checkpoint's epoch
(they are recomputed, identically), so a resumed run ends with the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlplab.errors import RunFileError
from mlplab.inspect.capture import evenly_spaced
from mlplab.inspect.stats import SMOOTH_THRESHOLD, activation_stats
from mlplab.train import checkpoint as ckpt
from mlplab.train import distributed as ddp
from mlplab.train.hooks import Hook

if TYPE_CHECKING:
    from mlplab.spec import InspectSpec
    from mlplab.train.trainer import Trainer

SPARSITY_FILE = Path("inspect") / "sparsity.json"
PROBE_ROWS = 128


class SparsityTracker(Hook):
    """Record `activation_stats` on a fixed probe batch at epoch 0 and after every epoch.

    `records` holds one dict per (epoch, block); with a `run_dir` they are also written to
    `SPARSITY_FILE` after each epoch.
    """

    def __init__(self, run_dir: str | Path | None = None, *, rows: int = PROBE_ROWS,
                 smooth_threshold: float = SMOOTH_THRESHOLD) -> None:
        self.path = Path(run_dir) / SPARSITY_FILE if run_dir is not None else None
        self.rows, self.smooth_threshold = rows, smooth_threshold
        self.records: list[dict[str, Any]] = []
        self._started = False

    def _start(self, trainer: Trainer) -> None:
        self._started = True
        done = trainer.state.epoch
        if done > 0 and self.path is not None and self.path.is_file():
            saved = ckpt.read_json(self.path, keys=("records",))["records"]
            self.records = [r for r in saved if r["epoch"] <= done]
        if not any(r["epoch"] == done for r in self.records):
            self._record(trainer)

    def _record(self, trainer: Trainer) -> None:
        split = trainer.data.train
        x, x_cat = split.inputs(evenly_spaced(split, self.rows))
        for s in activation_stats(trainer.model, [(x, x_cat)],
                                  smooth_threshold=self.smooth_threshold):
            self.records.append({"epoch": trainer.state.epoch, **s.row()})
        self._write()

    def _write(self) -> None:
        if self.path is not None and ddp.is_main():  # one writer under torchrun
            ckpt.write_json(self.path, {"rows": self.rows, "records": self.records})

    def on_epoch_start(self, trainer: Trainer) -> None:
        if not self._started:
            self._start(trainer)

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._record(trainer)


def tracking_hooks(spec: InspectSpec | None, run_dir: str | Path | None) -> list[Hook]:
    """The epoch hooks an `inspect` spec section asks for (none by default)."""
    if spec is None or spec.track == "none":
        return []
    return [SparsityTracker(run_dir, rows=spec.probe_rows,
                            smooth_threshold=spec.smooth_threshold)]


def read_sparsity(run_dir: str | Path) -> pd.DataFrame | None:
    """The tracked per-epoch statistics of a run (`SPARSITY_FILE`), or None if not tracked."""
    path = Path(run_dir) / SPARSITY_FILE
    if not path.exists():
        return None
    records = ckpt.read_json(path, keys=("records",))["records"]
    if not isinstance(records, list):
        raise RunFileError(f"{path}: 'records' is not a list; delete the file or train again")
    return pd.DataFrame(records)
