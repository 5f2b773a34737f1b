"""`mlplab.inspect(run_or_model, data, what=[...])`: every analysis of a trained model at once.

```python
report = mlplab.inspect("runs/digits-...", what=["sparsity", "ablation", "probes"])
report.sparsity      # DataFrame: block, kind, units, frac_active, dead, ... (+ epoch if tracked)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from mlplab.errors import MlplabError, SpecError
from mlplab.inspect import ablation as abl
from mlplab.inspect import probes as prb
from mlplab.inspect.capture import batches
from mlplab.inspect.stats import SMOOTH_THRESHOLD, BlockStats, activation_stats, stats_frame

ANALYSES = ("sparsity", "ablation", "probes", "bilinear", "transcoder")
DEFAULT_WHAT = ("sparsity", "ablation", "probes")


@dataclass
class InspectReport:
    """What `inspect` measured. DataFrames are None for analyses not asked for.

    `sparsity`: one row per block on the inspected split; `tracked`: per epoch and block when
    the run was trained with `inspect.track = "sparsity"`; `ablation` (every block x mode) and
    `importance` (ranked); `probes`; `bilinear` (`Decomposition`s); `transcoder`
    (`TranscoderResult`).
    """

    name: str
    model: nn.Module = field(repr=False)
    data: Any = field(repr=False)
    task: Any = field(repr=False)
    split: str = "test"
    run_dir: Path | None = None
    block_stats: list[BlockStats] = field(default_factory=list, repr=False)
    sparsity: pd.DataFrame | None = None
    tracked: pd.DataFrame | None = None
    ablation: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    bilinear: list[Any] | None = None
    bilinear_top: int = 8
    transcoder: Any = None

    def write(self, out: str | Path | None = None) -> Path:
        """Write `inspect.html`, `inspect.md` and `plots/*.png` into `out` (default: the run
        directory); returns the path of `inspect.html`."""
        from mlplab.inspect.report import write_report

        where = Path(out) if out is not None else self.run_dir
        if where is None:
            raise SpecError("inspect: name a directory to write the report to (out=...)")
        return write_report(self, where)


def _open_run(run_dir: Path) -> tuple[nn.Module, Any, Any, str]:
    from mlplab.run import load_run, prepare_data

    if not run_dir.is_dir():
        raise MlplabError(f"{str(run_dir)!r} is not a run directory (it does not exist)")
    loaded = load_run(run_dir)  # missing or corrupt files: a clear RunFileError/SpecError
    data, task = prepare_data(loaded.spec)
    return loaded.model, data, task, loaded.spec.run_name()


def inspect(run: str | Path | nn.Module, data: Any = None, *, task: Any = None,
            what: Sequence[str] = DEFAULT_WHAT, split: str = "test",
            smooth_threshold: float = SMOOTH_THRESHOLD, bilinear_top: int = 8,
            transcoder: dict[str, Any] | None = None, probe_labels: Any = None,
            name: str | None = None) -> InspectReport:
    """Inspect a finished run directory (its data is rebuilt from its spec) or a model with
    its `Dataset` (`data`; `task` defaults to the data's). `what` picks analyses from
    `ANALYSES`; `split` is the split statistics and ablations are measured on ("train",
    "val", "test"); `transcoder` holds `train_transcoder`'s options (`block` is required) and
    adds "transcoder" to `what`."""
    what = list(what) + (["transcoder"] if transcoder is not None and
                         "transcoder" not in what else [])
    for item in what:
        if item not in ANALYSES:
            raise SpecError(f"inspect: unknown analysis {item!r}; choose from "
                            + ", ".join(ANALYSES))
    if split not in ("train", "val", "test"):
        raise SpecError(f"inspect: split must be 'train', 'val' or 'test', not {split!r}")
    run_dir = None
    if isinstance(run, str | Path):
        run_dir = Path(run)
        model, data, task, run_name = _open_run(run_dir)
        name = name or run_name
    else:
        if data is None:
            raise SpecError("inspect: a model needs its data (a mlplab Dataset)")
        model = run
        if task is None:
            from mlplab.tasks import make_task

            task = make_task(data.target.kind, data.target)
    model.eval()
    report = InspectReport(name or type(model).__name__, model, data, task, split, run_dir,
                           bilinear_top=bilinear_top)
    part = getattr(data, split)
    if "sparsity" in what:
        report.block_stats = activation_stats(model, batches(part),
                                              smooth_threshold=smooth_threshold)
        report.sparsity = stats_frame(report.block_stats)
        if run_dir is not None:
            from mlplab.inspect.track import read_sparsity

            report.tracked = read_sparsity(run_dir)
    if "ablation" in what:
        report.ablation = abl.ablation(model, task, part)
        report.importance = abl.importance(report.ablation)
    if "probes" in what:
        report.probes = prb.probes(model, data.train, part,
                                   classification=data.target.kind == "classification",
                                   labels=probe_labels)
    if "bilinear" in what:
        from mlplab.inspect.bilinear import decompose_model

        classes = getattr(data.target, "classes", None) or None
        report.bilinear = decompose_model(model, [str(c) for c in classes] if classes else None)
    if "transcoder" in what:
        from mlplab.inspect.transcoder import train_transcoder

        options = dict(transcoder or {})
        if "block" not in options:
            raise SpecError("inspect: transcoder needs block=N (the block to replace)")
        report.transcoder = train_transcoder(model, task, data, **options)
    return report

