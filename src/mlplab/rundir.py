"""Reading a run directory back, every file checked: a malformed, truncated or mismatched file
is a `RunFileError` naming it (never a KeyError or a torch traceback).

Used by `load_run`, `resume` and `mlplab info` (`check_run`, which reads no weights, only
the safetensors headers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.domains import build_run_model
from mlplab.spec import RunSpec, parse_spec
from mlplab.train import checkpoint as ckpt
from mlplab.train.trainer import STATE

SUMMARY_KEYS = ("train", "val", "test", "counts", "timings", "best_epoch", "epochs")
RECORD_KEYS = ("schema", "d_out", "features", "target")


@dataclass
class Record:
    """`model.json`, parsed: what rebuilds the model and its preprocessing."""

    schema: FeatureSchema
    d_out: int
    features: FeaturePreprocessor
    target: TargetCoder
    task_kind: str | None = None  # a registered task kind beyond the target's (newer runs)


def read_spec(run_dir: Path) -> RunSpec:
    path = run_dir / "spec.json"
    with ckpt.reading(path):
        return parse_spec(ckpt.read_json(path, keys=("data",)))


def read_record(run_dir: Path) -> Record:
    path = run_dir / "model.json"
    raw = ckpt.read_json(path, keys=RECORD_KEYS)
    with ckpt.reading(path):
        return Record(FeatureSchema.from_dict(raw["schema"]), int(raw["d_out"]),
                      FeaturePreprocessor.from_dict(raw["features"]),
                      TargetCoder.from_dict(raw["target"]), raw.get("task_kind"))


def rebuild(run_dir: Path) -> tuple[RunSpec, Record, nn.Module]:
    """spec.json + model.json -> `(spec, record, untrained model)`."""
    spec, record = read_spec(run_dir), read_record(run_dir)
    with ckpt.reading(run_dir / "model.json"):
        kind = record.task_kind or record.target.kind
        return spec, record, build_run_model(kind, spec.model, record.schema, record.d_out)


def check_run(run_dir: str | Path) -> None:
    """Check every file of a run directory without loading the weights: the JSON files parse
    and hold what they should, and each safetensors header (the final model's, or the latest
    checkpoint's) names exactly the model's tensors and shapes and covers its file."""
    run_dir = Path(run_dir)
    _, _, model = rebuild(run_dir)
    if (run_dir / "metrics.json").exists():
        ckpt.read_json(run_dir / "metrics.json", keys=SUMMARY_KEYS)
        ckpt.check_fits(model, run_dir / "model.safetensors")  # a KAN at its saved grid size
        return
    if (run_dir / ckpt.FAILED_FILE).exists():
        ckpt.read_json(run_dir / ckpt.FAILED_FILE, keys=("error",))
    last = ckpt.latest_checkpoint(run_dir)
    if last is not None:
        with ckpt.reading(last / "state.json"):
            STATE.validate_python(ckpt.read_json(last / "state.json"))
        for name in ("model.safetensors", "best.safetensors"):
            ckpt.check_fits(model, last / name)
        for name in ("optimizer.safetensors", "rng.safetensors"):
            ckpt.tensor_shapes(last / name)
        ckpt.read_json(last / "optimizer.json", keys=("param_groups", "scalars"))
