"""Task kinds, registered by name: how a kind's `Dataset` is built, its `Task`, its options.

A domain (tables, fields, forecasts, ...) registers one `TaskKind` subclass:

    @register_task("field")
    class FieldKind(TaskKind):
        Options = FieldOptions                     # a pydantic model: `task.options`
        @classmethod
        def build_dataset(cls, spec): ...          # RunSpec -> Dataset (same Dataset/Split types)
        @classmethod
        def make_task(cls, target, *, options=None, label_smoothing=0.0): ...   # -> Task
        # optional: the model a run of this kind trains (default: Adapter -> Backbone -> Head)
        @classmethod
        def build_model(cls, spec, schema, d_out): ...   # ModelSpec, FeatureSchema -> nn.Module

`task.kind` accepts any registered name (or "auto": the tabular builder infers
classification or regression). `task.options` is validated by the kind's `Options` model;
an unknown key is a `SpecError` naming `task.options.<key>` with the closest known key.
Modules that register kinds are imported by `task_kind` (add yours to `PLUGINS`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlplab.messages import did_you_mean, name_list
from mlplab.nn.options import OptionError
from mlplab.nn.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from mlplab.data.dataset import Dataset, FeatureSchema
    from mlplab.data.preprocess import TargetCoder
    from mlplab.spec import ModelSpec, RunSpec, TaskSpec
    from mlplab.tasks import Task

TASKS: Registry = Registry("task kind")
register_task = TASKS.register

# modules whose import registers task kinds (imported once, on the first lookup)
PLUGINS: list[str] = ["mlplab.tasks", "mlplab.fields.domain", "mlplab.forecast.domain"]
_loaded = False


class TaskOptionError(OptionError):
    """A bad key or value of `task.options`; `option` is its path inside the options."""

    section = "task.options"


class NoOptions(BaseModel):
    """A task kind without options: any key in `task.options` is unknown."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TaskKind:
    """Base of a registered task kind; every method is a classmethod (kinds hold no state)."""

    Options: type[BaseModel] = NoOptions

    @classmethod
    def build_dataset(cls, spec: RunSpec) -> Dataset:
        """The spec's data as a `Dataset` (default: the tabular builder, `build_dataset`)."""
        from mlplab.data.dataset import build_dataset

        return build_dataset(spec.data, task_kind=spec.task.kind, seed=spec.seed)

    @classmethod
    def make_task(cls, target: TargetCoder, *, options: BaseModel | None = None,
                  label_smoothing: float = 0.0) -> Task:
        """The `Task` for a fitted target coder (also used to rebuild saved runs)."""
        raise NotImplementedError

    @classmethod
    def example_task(cls, spec: TaskSpec, *, n_classes: int = 2) -> Task:
        """A `Task` built without data, for checking `train.monitor` at parse time."""
        raise NotImplementedError

    @classmethod
    def build_model(cls, spec: ModelSpec, schema: FeatureSchema, d_out: int) -> nn.Module:
        """The model a run of this kind trains, from `model` and the data's schema (default:
        Adapter -> Backbone -> Head from the registries, `mlplab.build.build_model`)."""
        from mlplab.build import build_model

        return build_model(spec, schema, d_out)


def _load_plugins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in PLUGINS:
            importlib.import_module(module)


def task_kind(name: str, *, field: str = "task.kind") -> type[TaskKind]:
    """The registered kind `name`; `SpecError` with a did-you-mean when there is none."""
    _load_plugins()
    return TASKS.get(name, field=field)


def task_kinds() -> list[str]:
    """Every registered task kind's name."""
    _load_plugins()
    return TASKS.names()


def parse_options(kind: str, options: dict[str, Any]) -> BaseModel:
    """`task.options` validated by the kind's `Options` model; `SpecError` naming
    `task.options.<key>` (unknown keys get the closest known key)."""
    model = task_kind(kind).Options
    try:
        return model.model_validate(options)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "options"
        if first["type"] == "extra_forbidden":
            known = list(model.model_fields)
            hint = did_you_mean(str(first["loc"][-1]), known) if known else ""
            detail = (f"unknown key; {hint}" if hint else
                      f"unknown key; task kind {kind!r} takes "
                      + (f"only {name_list(known)}" if known else "no options"))
        else:
            detail = first["msg"].removeprefix("Value error, ")
        raise TaskOptionError(key, detail) from None


def build_data(spec: RunSpec) -> Dataset:
    """The run's `Dataset`: the builder of `task.kind` (the tabular one for "auto")."""
    if spec.task.kind == "auto":
        return TaskKind.build_dataset(spec)
    data = task_kind(spec.task.kind).build_dataset(spec)
    if data.task_kind is None and data.target.kind != spec.task.kind:
        data.task_kind = spec.task.kind
    return data


def run_task(spec: RunSpec, data: Dataset) -> Task:
    """The `Task` a run trains: its kind's, built from the data's fitted target coder, with
    `task.options` validated by the kind's `Options`."""
    kind = data.kind
    options = parse_options(kind, spec.task.options) if spec.task.kind != "auto" else None
    return task_kind(kind).make_task(data.target, options=options,
                                     label_smoothing=spec.task.label_smoothing)


def build_run_model(kind: str | None, spec: ModelSpec, schema: FeatureSchema,
                    d_out: int) -> nn.Module:
    """The model of a run whose data has task kind `kind` (its `TaskKind.build_model`; the
    registry build for `None` or a kind nobody registered)."""
    _load_plugins()
    cls = TASKS.get(kind) if kind is not None and kind in TASKS else TaskKind
    return cls.build_model(spec, schema, d_out)
