"""`mlplab.train(spec)`: spec -> data -> task -> model -> trainer -> `RunResult` (+ run directory).

A run directory holds `spec.json` (the resolved spec), `model.json` (what rebuilds the model
and its preprocessing), `checkpoint/` (per epoch, for `--resume`), and at the end
`model.safetensors` (best weights) and `metrics.json`; a diverged run leaves `failed.json`.
Input is fully validated before the directory is created, so bad input leaves nothing on
disk. One process at a time trains in a directory: `train` holds its `.lock` (fcntl).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlplab.count import count
from mlplab.data.bins import fit_bins
from mlplab.data.dataset import Dataset, FeatureSchema
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.domains import build_data, build_run_model, run_task
from mlplab.errors import SpecError, TrainingError
from mlplab.inspect.track import tracking_hooks
from mlplab.predictions import BATCH_SIZE, FramePredictor
from mlplab.rundir import RECORD_KEYS, SUMMARY_KEYS, read_record, read_spec, rebuild
from mlplab.spec import RunSpec, parse_spec
from mlplab.tasks import Task
from mlplab.train import checkpoint as ckpt
from mlplab.train import distributed as ddp
from mlplab.train.device import resolve_device
from mlplab.train.lock import run_lock
from mlplab.train.threads import default_threads
from mlplab.train.trainer import Trainer


@dataclass
class RunResult:
    """What a run produced. `metrics` has `train`, `val` and `test` sections."""

    spec: RunSpec
    metrics: dict[str, dict[str, float]]
    counts: dict[str, int]
    timings: dict[str, Any]  # seconds, samples/s, and the precision the steps ran at
    curves: list[dict[str, Any]]
    best_epoch: int
    epochs: int
    stopped_early: bool
    model: nn.Module = field(repr=False)
    run_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON-able part, as stored in `metrics.json`."""
        return {"train": self.metrics["train"], "val": self.metrics["val"],
                "test": self.metrics["test"], "counts": self.counts, "timings": self.timings,
                "best_epoch": self.best_epoch, "epochs": self.epochs,
                "stopped_early": self.stopped_early, "curves": self.curves}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(spec: RunSpec, root: str | Path = "runs") -> Path:
    """`runs/<name>-<timestamp>`, with a `-2`, `-3`, ... suffix if that directory exists."""
    base = Path(root) / f"{spec.run_name()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare_data(spec: RunSpec) -> tuple[Dataset, Task]:
    """The run's `Dataset` (numeric bins fitted for the model) and `Task`, built and seeded
    exactly as `train` builds them: the same split, preprocessing and target coding."""
    seed_everything(spec.seed)
    data = build_data(spec)
    fit_bins(data, spec.model, seed=spec.seed)
    task = run_task(spec, data)
    task.check_monitor(spec.train.monitor)
    return data, task


def prepare_run(spec: RunSpec, threads: int | None = None
                ) -> tuple[Dataset, Task, nn.Module, dict[str, int]]:
    """Everything `train` does before its first epoch: threads, data, task, the freshly
    initialised model and its parameter/FLOP counts."""
    torch.set_num_threads(spec.train.threads or threads or default_threads())
    data, task = prepare_data(spec)
    torch.manual_seed(spec.seed)
    model = build_run_model(data.kind, spec.model, data.schema, task.d_out)
    counts = count(model, data.train.inputs(slice(0, min(64, len(data.train)))))
    return data, task, model, counts


def model_record(spec: RunSpec, data: Dataset, d_out: int) -> dict[str, Any]:
    """Everything needed to rebuild the model and its preprocessing without the data, plus the
    torch thread count the run started with (a resume reuses it: results depend on it in the
    last bits, and `train.threads = None` picks it from the free cores)."""
    record = {"model": spec.model.model_dump(mode="json"), "schema": data.schema.to_dict(),
              "d_out": d_out, "features": data.features.to_dict(),
              "target": data.target.to_dict(), "threads": torch.get_num_threads()}
    if data.kind != data.target.kind:
        record["task_kind"] = data.kind  # a registered kind beyond the target's coding
    return record


def _recorded_threads(run_dir: Path) -> int | None:
    """The thread count a run directory's `model.json` recorded (None for older runs)."""
    threads = ckpt.read_json(run_dir / "model.json", keys=RECORD_KEYS).get("threads")
    return threads if isinstance(threads, int) and threads >= 1 else None


def train(spec: RunSpec | dict[str, Any], *, out: str | Path | None = None,
          resume: bool = False, quiet: bool = True,
          stop: Callable[[], bool] | None = None) -> RunResult:
    """Train one run. With `out`, write a run directory there (resumable after a kill).

    `resume=True` continues the run in `out` from its latest checkpoint; the resumed run
    ends with exactly the metrics an uninterrupted run gets. `stop()` is polled after each
    epoch: True raises `TrainingStopped` before that epoch's checkpoint is written.
    """
    spec = parse_spec(spec)
    ddp.init_from_env(resolve_device(spec.train.device))  # under torchrun: join the group
    ddp.check_supported(spec.train.optimizer)
    main = ddp.is_main()  # data-parallel: rank 0 alone writes the run directory
    run_dir = Path(out) if out is not None else None
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise SpecError(f"run directory {str(run_dir)!r} is a file; choose another --out")
    if run_dir is not None and resume and not (run_dir / "spec.json").is_file():
        raise SpecError(f"run directory {str(run_dir)!r} holds no run to resume (no spec.json)")
    if main:
        _refuse_existing_run(run_dir, resume)
    with contextlib.ExitStack() as held:
        if run_dir is not None and resume and main:  # before the data: a second writer fails fast
            held.enter_context(run_lock(run_dir))
        data, task, model, counts = prepare_run(
            spec, _recorded_threads(run_dir) if run_dir is not None and resume else None)
        trainer = Trainer(model, task, data, spec.train, seed=spec.seed, run_dir=run_dir,
                          quiet=quiet, flops_per_sample=counts["matmul_flops_per_sample"],
                          stop=stop, hooks=tracking_hooks(spec.inspect, run_dir if main else None))
        if run_dir is not None and not main:  # other ranks only read the checkpoint
            if resume:
                trainer.resume()
        elif run_dir is not None:
            if not resume:
                run_dir.mkdir(parents=True, exist_ok=True)
                held.enter_context(run_lock(run_dir))
                _refuse_existing_run(run_dir, resume)  # again, now that no one else writes
            ckpt.remove_stale_temp_files(run_dir)
            if not resume:
                # spec.json marks a run directory, so it is written last: a kill in between
                # never leaves a resumable run without its model.json
                ckpt.write_json(run_dir / "model.json", model_record(spec, data, task.d_out))
                ckpt.write_json(run_dir / "spec.json", spec.model_dump(mode="json"))
            else:
                read_record(run_dir)  # load_run needs it afterwards: refuse a corrupt one now
                (run_dir / ckpt.FAILED_FILE).unlink(missing_ok=True)
                trainer.resume()
        state = trainer.fit()
        metrics = {name: trainer.evaluate(getattr(data, name), fp32=True)
                   for name in ("train", "val", "test")}
        model.cpu()  # the result's model predicts on the CPU wherever it trained
        if sum(p.numel() for p in model.parameters() if p.requires_grad) != counts[
                "trainable_params"]:
            # train.grid_extend resized the model: count it as it ends (the best epoch's grid)
            counts = count(model, data.train.inputs(slice(0, min(64, len(data.train)))))
        result = RunResult(spec, metrics, counts, trainer.timings(), state.curves,
                           state.best_epoch, state.epoch, state.stopped_early, model, run_dir)
        if run_dir is not None and main:
            _write_final(run_dir, result)
            task.write_artifacts(run_dir, model, data, state.curves)
    return result


def _refuse_existing_run(run_dir: Path | None, resume: bool) -> None:
    if run_dir is not None and not resume and (run_dir / "spec.json").exists():
        raise SpecError(f"run directory {str(run_dir)!r} already holds a run; "
                        "use --resume to continue it or choose another --out")


def _write_final(run_dir: Path, result: RunResult) -> None:
    try:
        ckpt.write_tensors(run_dir / "model.safetensors", result.model.state_dict())
        ckpt.write_json(run_dir / "metrics.json", result.summary())
    except OSError as err:
        raise TrainingError(
            f"cannot write the final files of {run_dir} ({err.strerror or err}); all "
            f"{result.epochs} epochs are checkpointed: free space and run "
            f"`mlplab train --resume {run_dir}` to write them") from err


def resume(run_dir: str | Path, *, quiet: bool = True) -> RunResult:
    """Continue a killed run from its directory (its saved `spec.json` is the spec)."""
    run_dir = Path(run_dir)
    if not (run_dir / "spec.json").is_file():
        raise SpecError(f"{str(run_dir)!r} is not a run directory (no spec.json)")
    return train(read_spec(run_dir), out=run_dir, resume=True, quiet=quiet)


@dataclass
class LoadedRun:
    """A finished run read back from disk: the model with its best weights and preprocessing."""

    spec: RunSpec
    model: nn.Module
    features: FeaturePreprocessor
    target: TargetCoder
    schema: FeatureSchema
    metrics: dict[str, Any] | None

    def predictor(self) -> FramePredictor:
        """What `predict` and `predict_proba` run (shared with `mlplab predict`)."""
        kind = self.spec.task.kind
        return FramePredictor(self.model, self.features, self.target, self.schema,
                              kind if kind != "auto" else None)

    def predict(self, frame: pd.DataFrame, *, raw: bool = False,
                batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Predictions `(n,)` for the raw rows of `frame` (the feature columns; others ignored):
        class labels in the original values, or values in the target's units with the
        standardisation and `data.target_transform` undone (`raw=True`: on the transformed
        scale, e.g. log, where the run's metrics are computed). Ensemble members are
        combined; a missing feature column raises DataError."""
        return self.predictor().predict(frame, raw=raw, batch_size=batch_size)

    def predict_proba(self, frame: pd.DataFrame, *, raw: bool = False,
                      batch_size: int = BATCH_SIZE) -> pd.DataFrame:
        """Class probabilities `(n, n_classes)`: one column per class, in class order, indexed
        like `frame` (`raw=True`: log-probabilities). Classification runs only."""
        return self.predictor().predict_proba(frame, raw=raw, batch_size=batch_size)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild a run's model from `model.json` and load `model.safetensors` (no pickle)."""
    run_dir = Path(run_dir)
    for name in ("spec.json", "model.json", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise SpecError(f"{str(run_dir)!r} is not a finished run directory (no {name})")
    spec, record, model = rebuild(run_dir)
    ckpt.load_weights(model, run_dir / "model.safetensors")
    model.eval()
    metrics = (ckpt.read_json(run_dir / "metrics.json", keys=SUMMARY_KEYS)
               if (run_dir / "metrics.json").is_file() else None)
    return LoadedRun(spec, model, record.features, record.target, record.schema, metrics)
