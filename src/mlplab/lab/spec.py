"""The sweep spec: a run spec plus `seeds`, `axes`, `budget`, `search`, `analysis`, `execution`.

A sweep file is a run file (the same `[data]`, `[model]`, `[train]`, ... sections) with
extra sections. The run sections form the *base* spec every trial starts from:

```toml
name = "quickstart"
seeds = [0, 1]
[data]
source = "sklearn:digits"
[axes]                      # grid over any dotted run-spec field; one family per combination
"model.block" = ["standard", "hourglass"]
[budget]                    # per family, solve model.width so params (or flops) hit each budget
params = [3e3, 1e4]
[search]                    # optional: Optuna TPE per family x budget, on the validation metric
n_trials = 6
space = { "train.lr" = { low = 3e-4, high = 1e-2, log = true } }
```

Instead of `[axes]`, named families list exactly the variants to compare (no grid):
`[family.mlp]` (empty: the base spec), `[family.tabm]` with `"model.ensemble" = "tabm"`, ...
"""

from __future__ import annotations

import itertools
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlplab.errors import SpecError
from mlplab.messages import did_you_mean, name_list
from mlplab.spec import RunSpec, _format_error, apply_overrides, parse_spec, read_spec_file

SWEEP_KEYS = ("name", "seeds", "axes", "family", "budget", "search", "analysis", "execution")
FAMILY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,59}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetSpec(_Section):
    """Parameter or FLOP budgets; `model.width` is solved per family to land within `tolerance`."""

    params: list[float] | None = Field(None, description="total parameter counts to match")
    flops: list[float] | None = Field(None, description="forward FLOPs per sample to match")
    tolerance: float = Field(0.05, gt=0.0, lt=1.0, description="allowed relative miss")
    max_width: int = Field(8192, ge=1, description="widest model the solver may build")

    @model_validator(mode="after")
    def _one_kind(self) -> BudgetSpec:
        if (self.params is None) == (self.flops is None):
            raise ValueError("give exactly one of budget.params or budget.flops")
        values = self.values
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"budget.{self.kind} must be a non-empty list of positive numbers")
        if len(set(values)) != len(values):
            raise ValueError(f"budget.{self.kind} lists a budget twice")
        return self

    @property
    def kind(self) -> str:
        return "params" if self.params is not None else "flops"

    @property
    def values(self) -> list[float]:
        return list(self.params if self.params is not None else self.flops or [])


class SearchParam(_Section):
    """One searched field: a range (`low`, `high`, optional `log`, `int`) or `choices`."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchParam:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either non-empty choices or low/high, not both")
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("a searched range needs low < high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class SearchSpec(_Section):
    """Optuna TPE search per family x budget; the best trial's values are used for every seed."""

    n_trials: int = Field(ge=1, description="search trials per family and budget")
    space: dict[str, SearchParam] = Field(
        default_factory=lambda: {"train.lr": SearchParam(low=3e-4, high=1e-2, log=True)})
    startup_trials: int | None = Field(None, ge=1, description="random trials before TPE")
    seed: int | None = Field(None, description="data/model seed of search trials (default seeds[0])")


class AnalysisSpec(_Section):
    """Which stored metrics the analysis ranks and fits (`split.metric`)."""

    metric: str | None = Field(None, description="quality, default test.<monitor>")
    loss: str | None = Field(None, description="scaling-law loss, default test.log_loss / test.rmse")


class ExecutionSpec(_Section):
    """How trials are claimed: a claim is a lease renewed by a heartbeat."""

    lease_seconds: float = Field(60.0, gt=0.5, description="a silent claim expires after this")
    keep_checkpoints: bool = Field(False, description="keep each trial's epoch checkpoints")
    nproc: int = Field(1, ge=1, description="processes per trial: > 1 trains each trial "
                       "data-parallel (DDP via torchrun, the worker's threads split between them)")


class SweepSpec(_Section):
    """A whole sweep: the base run spec plus the grid, seeds, budgets and search."""

    name: str
    base: RunSpec
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    family: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named families {name: {dotted.field: value}}, "
        "instead of the grid of axes")
    budget: BudgetSpec | None = None
    search: SearchSpec | None = None
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    def families(self) -> list[dict[str, Any]]:
        """Every family's values `{field: value}`: the named `family` tables, else every
        combination of the axes' values (one empty dict without axes)."""
        return [values for _, values in self.labelled_families()]

    def labelled_families(self) -> list[tuple[str, dict[str, Any]]]:
        """`(label, values)` per family: a named family's label is its name."""
        if self.family:
            return list(self.family.items())
        keys = list(self.axes)
        grid = [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(self.axes[k] for k in keys))]
        return [(family_label(values), values) for values in grid]

    def label_of(self, values: dict[str, Any]) -> str:
        """The label of the family with these values (a named family's name)."""
        return next((name for name, v in self.family.items() if v == values),
                    family_label(values))


def family_label(values: dict[str, Any]) -> str:
    """`{"model.block": "hourglass"}` -> `"hourglass"`; several axes -> `"block=a depth=2"`."""
    if not values:
        return "base"
    if len(values) == 1:
        return str(next(iter(values.values())))
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in values.items())


def field_exists(path: str) -> bool:
    """Is `a.b` a field of `RunSpec` (through its nested sections)? One key inside a dict
    field counts too (`task.options.h`, `model.block_options.tokens`): its value is checked
    when the family's spec is parsed (by the task kind's options model, the block, ...)."""
    model: Any = RunSpec
    parts = path.split(".")
    for i, part in enumerate(parts):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
        if typing.get_origin(model) is dict and i < len(parts) - 1:
            return i == len(parts) - 2  # a key of the dict, not deeper
    return True


def with_values(base: RunSpec, values: dict[str, Any], *, where: str) -> RunSpec:
    """The base spec with dotted fields set; a bad value raises `SpecError` naming `where`."""
    data = base.model_dump(mode="json")
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {}) if node.get(part) is None else node[part]
        node[leaf] = value
    try:
        return parse_spec(data)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _check_family_names(spec: SweepSpec) -> None:
    if spec.family and spec.axes:
        raise SpecError("family: give either [axes] or named [family.<name>] tables, not both")
    for name in spec.family:
        if not FAMILY_NAME.fullmatch(name):
            raise SpecError(f"family: name {name!r} must be 1-60 letters, digits or . _ + - "
                            "(starting with a letter or digit)")


def _check_fields(spec: SweepSpec) -> None:
    _check_family_names(spec)
    named = [(f"family.{n}", v) for n, v in spec.family.items()]
    for source, keys in (("axes", spec.axes), *named,
                         ("search.space", spec.search.space if spec.search else {})):
        for key in keys:
            if not field_exists(key):
                raise SpecError(f"{source}: {key!r} is not a run-spec field (e.g. 'model.block')")
            if key in ("seed", "name"):
                raise SpecError(f"{source}: {key!r} cannot vary; use seeds = [...] for seeds")
            if spec.budget is not None and key == "model.width":
                raise SpecError(f"{source}: 'model.width' is solved from the budget; "
                                "remove it or remove [budget]")
    for key, values in spec.axes.items():
        if not values:
            raise SpecError(f"axes: {key!r} needs at least one value")
    if spec.search:
        varied = set(spec.axes).union(*spec.family.values())
        both = varied & set(spec.search.space)
        if both:
            raise SpecError(f"search.space: {sorted(both)[0]!r} is already an axis or a "
                            "family's field")
    for label, family in spec.labelled_families():
        with_values(spec.base, family, where=f"{'family' if spec.family else 'axes'} {label!r}")


def is_sweep(data: dict[str, Any]) -> bool:
    """Does a spec dict describe a sweep (rather than one run)?"""
    return any(k in data for k in ("seeds", "axes", "family", "budget", "search"))


def parse_sweep(data: dict[str, Any]) -> SweepSpec:
    """Validate a sweep dict (run sections at the top level) into a `SweepSpec`."""
    data = dict(data)
    if "seed" in data:
        raise SpecError("seed: a sweep takes seeds = [...] (a list), not seed")
    top = {k: data.pop(k) for k in SWEEP_KEYS if k in data}
    known = [k for k in RunSpec.model_fields if k != "seed"] + list(SWEEP_KEYS)
    for key in data:
        if key not in RunSpec.model_fields:
            hint = did_you_mean(str(key), known)
            raise SpecError(f"{key}: unknown key; {hint or 'expected one of ' + name_list(known)}")
    if not top.get("name"):
        raise SpecError("name: a sweep needs a name (it names the store and the run directory)")
    if not {"budget", "search", "axes", "family"} & set(top):
        raise SpecError("a sweep needs at least one of [axes], [family.<name>], [budget] or "
                        "[search]")
    base = parse_spec({**data, "name": top["name"], "seed": 0})
    try:
        spec = SweepSpec.model_validate({**top, "base": base})
    except ValidationError as err:
        raise SpecError(_format_error(err, SweepSpec)) from None
    _check_fields(spec)
    return spec


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a TOML/YAML/JSON sweep file (with `--set key=value` overrides) and validate it."""
    data = apply_overrides(read_spec_file(path), overrides or [])
    data.setdefault("name", Path(path).stem)
    return parse_sweep(data)
