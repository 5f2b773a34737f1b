"""The `field` task kind: fit a signal's values from its coordinates (`task.kind = "field"`).

`data.source` names the signal (`mlplab.fields.signals`); `task.options` set `split`
("all": train on every sample; "every-second": train on the samples whose grid index is even
along every axis, as the Fourier-features paper does), `size`, `channels`, `alpha`, `val_fraction` and the
FreSh candidates. Rows are grid samples: `x (n, d_coord)` coordinates in [-1, 1] (x then y),
`y (n, channels)` values in [0, 1] (a 1-D signal in [-1, 1] is stored as `(v + 1) / 2`, and
decoded back). Splits with "all": train every sample, val every second sample along each
axis offset by one (a quarter of the grid, also trained on: a fit needs no held-out pixels);
test the whole grid. With "every-second" the held-out samples are test pixels only: val is a
seeded random `val_fraction` of the *training* lattice (1/16 by default), held back from
training, so early stopping and the best-epoch weights never look at a held-out sample; the
model trains on the rest of the lattice (`val_fraction = 0`: on all of it, validated on it);
test is the whole grid. `output_tv` adds the output's total variation at random coordinates
to the training loss (`mlplab.fields.output_tv`).
The metric is PSNR (clipped predictions, range 1: on a [-1, 1] signal that is PSNR with
range 2); the default monitor is validation PSNR. A `"fresh"` scale in
`model.adapter_options` is chosen here, on the training samples, and recorded in
`model.json` (`schema.info["fresh"]`). At the end a run writes `reconstruction.png` (or
`signal.png`), `error_map.png`, `psnr_curve.png` and `fields.json` (PSNR, held-out PSNR, SSIM,
parameters per sample, FreSh's candidates) into its directory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torch.nn import functional as F

from mlplab.data.dataset import Dataset, FeatureSchema, Split
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.domains import TaskKind, parse_options, register_task
from mlplab.fields.metrics import mse_to_psnr
from mlplab.fields.output_tv import OutputTotalVariation
from mlplab.fields.signals import Signal, load_signal
from mlplab.tasks import Task, refuse_label_smoothing

DEFAULT_ENCODING = "hashgrid"
SPLITS = ("all", "every-second")
COORD_NAMES = {1: ["t"], 2: ["x", "y"], 3: ["x", "y", "z"]}
CHANNEL_NAMES = {1: ["value"], 3: ["r", "g", "b"]}


class FieldOptions(BaseModel):
    """`task.options` of a field run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    split: Literal["all", "every-second"] = "all"
    size: int | None = Field(None, ge=2, description="resize: longer image side / samples")
    channels: Literal["auto", "gray", "rgb"] = "auto"
    alpha: Literal["white", "black", "error"] = "white"
    fresh_candidates: list[float] | None = Field(
        None, description="values FreSh tries (default per option, mlplab.fields.fresh)")
    fresh_inits: int = Field(3, ge=1, le=20, description="initialisations averaged per value")
    fresh_result: dict[str, Any] | None = Field(
        None, description="FreSh's choice as a run records it (written into the run's spec "
        "the first time; reused on resume and by every data-parallel rank)")
    val_fraction: float = Field(
        1 / 16, ge=0.0, lt=0.5, description="every-second: the share of the training lattice "
        "held back (seeded) for validation, so model selection never sees a held-out sample; "
        "0: none held back, validation is the training lattice itself (a final fit on every "
        "training sample, once the settings were chosen with a share held back)")
    output_tv: float = Field(
        0.0, ge=0.0, description="weight of the total variation of the model's output over "
        "one sample spacing at random coordinates, added to the training loss "
        "(mlplab.fields.output_tv): the prior that lets every-second fits interpolate")
    output_tv_points: int = Field(
        4096, ge=1, le=1_000_000, description="random coordinates per step for output_tv")
    artifacts: bool = Field(True, description="write reconstruction/error map/curve PNGs")


class FieldTask(Task):
    """MSE on values in [0, 1]; PSNR (predictions clipped to [0, 1]) and MSE.

    `out (batch, C)` (or `(batch, k, C)` ensembles: the mean of the members' losses),
    `y (batch, C)`.
    """

    monitor = "psnr"

    def __init__(self, coder: TargetCoder, *, artifacts: bool = True, output_tv: float = 0.0,
                 output_tv_points: int = 4096) -> None:
        self.coder = coder
        self.artifacts = artifacts
        self.output_tv, self.output_tv_points = float(output_tv), int(output_tv_points)
        self.d_out = max(1, len(coder.columns))
        self.higher_is_better = {"psnr": True, "mse": False, "loss": False}

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        if out.ndim == 3:
            y = y.unsqueeze(1).expand_as(out)
        if w is None:
            return F.mse_loss(out, y)
        per_row = (out - y).square().flatten(1).mean(1)
        return (per_row * w).sum() / w.sum().clamp_min(1e-12)

    def combine(self, out: Tensor) -> Tensor:
        out = out if out.dtype == torch.float64 else out.float()
        return out.mean(dim=1) if out.ndim == 3 else out

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        loss = float(self.loss(out.float(), y))
        pred = self.combine(out).clamp(0.0, 1.0).double()
        mse = float((pred - y.double()).square().mean()) if len(y) else float("nan")
        return {"loss": loss, "mse": mse, "psnr": mse_to_psnr(mse) if len(y) else float("nan")}

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        z = self.combine(out).double().numpy()
        values = z * np.asarray(self.coder.std) + np.asarray(self.coder.mean)
        return values[:, 0] if values.shape[1] == 1 else values

    def output_columns(self) -> list[str]:
        names = self.coder.columns
        return ["prediction"] if len(names) <= 1 else [f"prediction_{c}" for c in names]

    def training_penalty(self, data: Dataset, seed: int) -> OutputTotalVariation | None:
        """`output_tv > 0`: the output's total variation over the signal's sample spacing."""
        if not self.output_tv:
            return None
        return OutputTotalVariation(self.output_tv, self.output_tv_points,
                                    tuple(data.schema.info["shape"]), seed)

    def write_artifacts(self, run_dir: Path, model: torch.nn.Module, data: Dataset,
                        curves: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Called by `mlplab.train` at the end of a run with a directory."""
        return write_artifacts(run_dir, model, data, curves) if self.artifacts else None


def grid_masks(shape: tuple[int, ...], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Boolean `(n,)` masks (C order of `shape`) of the lattice a split learns from and of
    the rows it scores: "all": every row and the odd-odd quarter; "every-second": the
    even-even lattice and the held-out rest (the test pixels beyond the lattice)."""
    index = np.indices(shape).reshape(len(shape), -1)
    even = (index % 2 == 0).all(axis=0)
    odd = (index % 2 == 1).all(axis=0)
    if split == "all":
        return np.ones(index.shape[1], dtype=bool), odd
    return even, ~even


def train_val_masks(shape: tuple[int, ...], split: str, *, val_fraction: float = 1 / 16,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean `(n,)` masks of the train and val rows. "all": `grid_masks`; "every-second":
    val a seeded random `val_fraction` of the even-even lattice (at least one row), train the
    rest of it (`val_fraction` 0: train and val are the whole lattice); no held-out row is in
    either."""
    lattice, scored = grid_masks(shape, split)
    if split == "all":
        return lattice, scored
    if val_fraction == 0:  # nothing held back: validate on the training lattice
        return lattice, lattice
    rows = np.flatnonzero(lattice)
    n_val = min(len(rows) - 1, max(1, round(val_fraction * len(rows))))
    val = np.zeros_like(lattice)
    val[np.random.default_rng([seed, 2]).choice(rows, n_val, replace=False)] = True
    return lattice & ~val, val


def signal_coder(signal: Signal) -> tuple[TargetCoder, np.ndarray]:
    """The identity (images) or `[-1, 1] -> [0, 1]` (1-D) coding, and the coded values."""
    names = CHANNEL_NAMES.get(signal.channels, [f"c{i}" for i in range(signal.channels)])
    low = 0.0 if signal.value_range == 1.0 else -signal.value_range / 2
    coder = TargetCoder("regression", mean=[low] * signal.channels,
                        std=[signal.value_range] * signal.channels, columns=names)
    return coder, ((signal.flat() - low) / signal.value_range).astype(np.float32)


def field_schema(signal: Signal, options: FieldOptions) -> FeatureSchema:
    names = COORD_NAMES.get(signal.d_coord, [f"u{i}" for i in range(signal.d_coord)])
    info = {"d_coord": signal.d_coord, "shape": list(signal.shape),
            "channels": signal.channels, "source": signal.name, "split": options.split,
            "kind": signal.info.get("kind", "image")}
    return FeatureSchema(names, [], [], adapter=DEFAULT_ENCODING, info=info)


def fresh_inputs(spec: Any, options: FieldOptions, key: str) -> dict[str, Any]:
    """What a FreSh choice depends on (a recorded choice is reused only when all match)."""
    model = {k: v for k, v in spec.model.model_dump(mode="json").items()
             if k != "adapter_options"}
    return {"source": spec.data.source, "size": options.size, "split": options.split,
            "channels": options.channels, "alpha": options.alpha, "seed": spec.seed, "option": key,
            "candidates": options.fresh_candidates, "inits": options.fresh_inits,
            "model": model, "adapter_options": {k: v for k, v in
                                                spec.model.adapter_options.items() if k != key}}


def choose_fresh(spec: Any, schema: FeatureSchema, options: FieldOptions, coords: Tensor,
                 values: np.ndarray, shape: tuple[int, ...],
                 signal_shape: tuple[int, ...] | None = None) -> dict[str, Any] | None:
    """FreSh for the `"fresh"` option of `model.adapter_options`, on the training lattice
    `coords`/`values` (an image of `shape`): run once per run and recorded in the spec's
    `task.options.fresh_result` (so `spec.json` keeps it: a resume reuses it); under
    data parallelism rank 0 runs it and sends the choice to the other ranks.

    The spectra are compared over the band FreSh's rule sets for the *signal's* resolution
    (`signal_shape`, the grid the field is asked for: a quarter of its side in bins), capped at
    the lattice's Nyquist: training on a subset of the pixels does not change the band."""
    from mlplab.fields.fresh import default_spectrum_size, is_fresh

    keys = [k for k, v in spec.model.adapter_options.items() if is_fresh(v)]
    if not keys:
        return None
    key = keys[0]
    inputs = fresh_inputs(spec, options, key)
    recorded = options.fresh_result
    if recorded and recorded.get("inputs") == inputs and "chosen" in recorded:
        return recorded
    size = min(default_spectrum_size(key, signal_shape or shape), min(shape) // 2)
    result = _on_rank_zero(lambda: _run_fresh(spec, schema, options, key, coords, values,
                                              shape, size))
    result["inputs"] = inputs
    spec.task.options["fresh_result"] = result  # spec.json records it (see the docstring)
    return result


def _on_rank_zero(compute: Any) -> Any:
    """`compute()` on rank 0 of a data-parallel group, its result sent to every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return compute()
    box = [compute() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _run_fresh(spec: Any, schema: FeatureSchema, options: FieldOptions, key: str,
               coords: Tensor, values: np.ndarray, shape: tuple[int, ...],
               size: int) -> dict[str, Any]:
    from mlplab.build import build_model
    from mlplab.fields.fresh import fresh_select

    def make(value: float) -> torch.nn.Module:
        model_spec = spec.model.model_copy(
            update={"adapter_options": {**spec.model.adapter_options, key: value}})
        return build_model(model_spec, schema, values.shape[1])

    result = fresh_select(make, coords, values, shape, option=key,
                          candidates=options.fresh_candidates, n_inits=options.fresh_inits,
                          seed=spec.seed, spectrum_size=size)
    return {**result.to_dict(), "spectrum_size": size}


def build_field_dataset(spec: Any) -> Dataset:
    options = parse_options("field", spec.task.options)
    signal = load_signal(spec.data.source, size=options.size, channels=options.channels,
                         alpha=options.alpha, seed=spec.seed)
    coder, values = signal_coder(signal)
    coords = torch.from_numpy(signal.coords())
    y = torch.from_numpy(values)
    lattice, _ = grid_masks(signal.shape, options.split)
    train_mask, val_mask = train_val_masks(signal.shape, options.split,
                                           val_fraction=options.val_fraction, seed=spec.seed)
    schema = field_schema(signal, options)

    def split(mask: np.ndarray | None) -> Split:
        if mask is None:
            return Split(coords, None, y)
        rows = torch.from_numpy(np.flatnonzero(mask))
        return Split(coords[rows], None, y[rows])

    train = split(None if train_mask.all() else train_mask)
    # FreSh reads the whole training lattice (val rows included: no held-out sample) as an
    # image at its own resolution, and evaluates the untrained models on the same grid
    known = split(None if lattice.all() else lattice)
    known_shape = tuple((s + 1) // 2 for s in signal.shape) if options.split != "all" \
        else signal.shape
    fresh = choose_fresh(spec, schema, options, known.x, known.y.numpy(), known_shape,
                         signal.shape)
    if fresh is not None:
        schema.info["fresh"] = fresh
    features = FeaturePreprocessor(list(schema.numeric), [])
    return Dataset(schema, features, coder, train, split(val_mask), split(None),
                   task_kind="field")


@register_task("field")
class FieldKind(TaskKind):
    """Neural fields: coordinates -> values of an image or 1-D signal (`mlplab.fields`)."""

    Options = FieldOptions

    @classmethod
    def build_dataset(cls, spec: Any) -> Dataset:
        return build_field_dataset(spec)

    @classmethod
    def make_task(cls, target: TargetCoder, *, options: Any = None,
                  label_smoothing: float = 0.0) -> Task:
        refuse_label_smoothing(label_smoothing)
        if options is None:
            return FieldTask(target)
        return FieldTask(target, artifacts=options.artifacts, output_tv=options.output_tv,
                         output_tv_points=options.output_tv_points)

    @classmethod
    def example_task(cls, spec: Any, *, n_classes: int = 2) -> Task:
        return FieldTask(TargetCoder("regression", mean=[0.0], std=[1.0], columns=["value"]))


# --- what a finished field run leaves in its directory ------------------------------------

def reconstruct_rows(model: torch.nn.Module, x: Tensor, batch_size: int = 65536) -> np.ndarray:
    """The model's prediction at coordinates `x (n, d_coord)`, coded scale: `(n, C)`."""
    was = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(x[i: i + batch_size]).float() for i in range(0, len(x),
                                                                             batch_size)])
    model.train(was)
    return out.numpy()


def reconstruct(model: torch.nn.Module, data: Dataset, batch_size: int = 65536) -> np.ndarray:
    """The model's prediction on the whole grid, coded scale: `(*shape, C)`."""
    shape = tuple(data.schema.info["shape"])
    return reconstruct_rows(model, data.test.x, batch_size).reshape(*shape, -1)


def write_artifacts(run_dir: Path, model: torch.nn.Module, data: Dataset,
                    curves: list[dict[str, Any]]) -> dict[str, Any]:
    """`reconstruction.png`/`signal.png`, `error_map.png`, `psnr_curve.png`, `fields.json`."""
    from mlplab.fields.metrics import psnr, ssim
    from mlplab.fields.plots import save_error_map, save_image, save_psnr_curves, save_signal_plot
    from mlplab.train import checkpoint as ckpt

    info = data.schema.info
    shape = tuple(info["shape"])
    pred = reconstruct(model, data)
    target = data.test.y.numpy().reshape(*shape, -1)
    lattice, _ = grid_masks(shape, info.get("split", "all"))
    held = ~lattice  # every-second: the test pixels beyond the training lattice
    flat_p, flat_t = pred.reshape(-1, pred.shape[-1]), target.reshape(-1, target.shape[-1])
    params = sum(p.numel() for p in model.parameters())
    summary: dict[str, Any] = {
        "source": info.get("source"), "shape": list(shape), "split": info.get("split"),
        "psnr": psnr(flat_p, flat_t),
        "psnr_heldout": psnr(flat_p[held], flat_t[held]) if held.any() else None,
        "psnr_lattice": psnr(flat_p[lattice], flat_t[lattice]),  # train + val rows
        "psnr_val": psnr(reconstruct_rows(model, data.val.x), data.val.y.numpy())
        if len(data.val) else None,
        "ssim": ssim(pred, target) if len(shape) == 2 else None,
        "params": params, "params_per_sample": params / math.prod(shape),
        "fresh": info.get("fresh"),
    }
    if len(shape) == 2:
        save_image(pred, run_dir / "reconstruction.png")
        save_error_map(pred, target, run_dir / "error_map.png",
                       title=f"|error|, PSNR {summary['psnr']:.2f} dB")
    else:
        save_signal_plot(pred, target, run_dir / "signal.png")
    secs = np.cumsum([c.get("seconds", 0.0) for c in curves]).tolist()
    values = [c.get("val_psnr", float("nan")) for c in curves]
    if curves:
        save_psnr_curves({str(info.get("source")): (secs, values)}, run_dir / "psnr_curve.png",
                         title="validation PSNR during training", marks=[30, 35, 40])
    summary = {k: ((round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v)
               for k, v in summary.items()}
    ckpt.write_json(run_dir / "fields.json", summary)
    return summary
