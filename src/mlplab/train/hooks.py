"""Epoch hooks: scheduled work that plugs into the one training loop.

A hook has `on_epoch_start(trainer)` (before the epoch's first step; `trainer.state.epoch`
epochs are done) and `on_epoch_end(trainer)` (after the epoch's validation and curve entry,
before its checkpoint). A hook that replaces parameters calls `trainer.reset_optimizer()`.
Hooks must be deterministic functions of the trainer's state, so that a resumed run repeats
them exactly; the checkpoint of epoch E is written before the hooks scheduled after E epochs.

`GridSchedule` is the grid schedule of `train.grid_update_epochs` / `train.grid_extend` (KAN
knots; RBF centres are moved by the updates too).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor, nn

from mlplab.nn.registry import UNITS

if TYPE_CHECKING:
    from mlplab.spec import ModelSpec, TrainSpec
    from mlplab.train.trainer import Trainer

GRID_SAMPLE_ROWS = 4096  # training rows whose activations place the knots
# How far (a share of each input's range) a scheduled grid reaches beyond the training
# inputs: test rows, and hidden activations of test rows, land a little outside them. On the
# hello formula (examples/formula_refine.toml, seeds 0-4) the worst test RMSE was 1.1e-3 at
# 0.01, 7.5e-4 at 0.03 and 2.2e-3 at 0.05 (coarser intervals).
GRID_MARGIN = 0.03


class EpochHook(Protocol):
    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer) -> None: ...


class Hook:
    """An `EpochHook` that does nothing; subclasses override what they need."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        return None

    def on_epoch_end(self, trainer: Trainer) -> None:
        return None


def hooks_from_spec(spec: TrainSpec) -> list[EpochHook]:
    """The hooks a train spec schedules."""
    if spec.grid_update_epochs or spec.grid_extend:
        return [GridSchedule(spec.grid_update_epochs, spec.grid_extend)]
    return []


class GridSchedule(Hook):
    """Grid work on every unit with `update_grid(x)` (KAN, RBF) / `extend_grid(grid, x)` (KAN).

    After `e` epochs for each `e` in `update_epochs`, each such unit moves its knots (KAN) or
    centres (RBF) to its own inputs on (up to `GRID_SAMPLE_ROWS` evenly spaced) training rows,
    and after `e` epochs for each `e: grid` in `extend`, each unit with `extend_grid` refines
    its grid to `grid` intervals;
    both refit the coefficients by least squares so the function is kept; the grid reaches
    `margin` of the inputs' range beyond them (`GRID_MARGIN`). Units go in the
    order they run, each seeing inputs produced by the already-updated units before it. The
    optimizer is reset afterwards (its state belongs to the old coefficients or shapes).
    """

    def __init__(self, update_epochs: Iterable[int] = (), extend: dict[int, int] | None = None,
                 *, rows: int = GRID_SAMPLE_ROWS, margin: float = GRID_MARGIN) -> None:
        self.update_epochs = set(update_epochs)
        self.extend = dict(extend or {})
        self.rows, self.margin = rows, margin

    def on_epoch_start(self, trainer: Trainer) -> None:
        epoch = trainer.state.epoch
        update, grid = epoch in self.update_epochs, self.extend.get(epoch)
        if not update and grid is None:
            return
        changed = False
        for unit in grid_units(trainer.model):
            if update:
                unit.update_grid(unit_inputs(trainer, unit, self.rows), margin=self.margin)
                changed = True
            if grid is not None and hasattr(unit, "extend_grid") and grid != unit.grid:
                unit.extend_grid(grid, unit_inputs(trainer, unit, self.rows),
                                 margin=self.margin)
                changed = True
        if changed:
            trainer.reset_optimizer()


def grid_units(model: nn.Module) -> Iterator[nn.Module]:
    """The modules of `model` with a grid to update from the data (`update_grid`)."""
    for module in model.modules():
        if callable(getattr(module, "update_grid", None)):
            yield module


class _Captured(Exception):
    """Stops the forward pass once the watched unit's input is captured."""


def unit_inputs(trainer: Trainer, unit: nn.Module, rows: int) -> Tensor:
    """The input `unit` receives, `(n, ..., d_in)`, in eval mode on up to `rows` evenly spaced
    training rows (no dropout, batch-norm statistics untouched, no RNG drawn)."""
    train = trainer.data.train
    n = len(train)
    idx = torch.linspace(0, n - 1, min(n, rows)).round().long().unique()
    x, x_cat = train.inputs(idx)
    seen: list[Tensor] = []

    def capture(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        seen.append(args[0].detach().float())
        raise _Captured

    model, was_training = trainer.model, trainer.model.training
    handle = unit.register_forward_pre_hook(capture)
    model.eval()
    try:
        with torch.no_grad():
            model(x, x_cat)
    except _Captured:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    if not seen:
        raise RuntimeError(f"{type(unit).__name__} did not run in the model's forward pass")
    return seen[0]


def check_grid_schedule(model: ModelSpec, train: TrainSpec) -> None:
    """A grid schedule needs a unit with a grid (extension: a spline grid), and extension goes
    coarse -> fine:
    raises ValueError naming the field otherwise (the spec turns it into a SpecError)."""
    fields = [(name, method) for name, method, value in (
        ("train.grid_update_epochs", "update_grid", train.grid_update_epochs),
        ("train.grid_extend", "extend_grid", train.grid_extend)) if value]
    if not fields:
        return
    unit = UNITS.get(model.unit)
    for name, method in fields:
        if not callable(getattr(unit, method, None)):
            with_grid = [n for n in UNITS.names() if callable(getattr(UNITS.get(n), method, None))]
            what = "a spline grid" if method == "extend_grid" else "a grid"
            raise ValueError(f"{name} needs a unit with {what} (model.unit = "
                             f"{' or '.join(map(repr, with_grid))}), not {model.unit!r}")
    if train.grid_extend:
        start = model.unit_options.get("grid", _default(unit, "grid"))
        first = next(iter(train.grid_extend.values()))
        if isinstance(start, int) and first <= start:
            raise ValueError(f"train.grid_extend: the first grid ({first}) must be finer than "
                             f"the model's (model.unit_options.grid = {start})")


def _default(cls: type, name: str) -> object:
    param = inspect.signature(cls).parameters.get(name)
    return None if param is None else param.default
