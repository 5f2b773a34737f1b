"""Budget matching: solve `model.width` so the *built* model has a given parameter or FLOP count.

Counts always come from `mlplab.count` on the real model (one example batch of the real data),
never from formulas. The search is a secant iteration on log(count) vs log(width) between
measured points, finished by a bracketing bisection over integer widths; widths are tried
at most once each. A model whose count does not depend on `model.width` (the forecast kind's
DLinear) cannot be matched: `solve_spec` leaves it at its own size (`Solved.fixed`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mlplab.count import count
from mlplab.data.bins import ple_bins
from mlplab.data.dataset import Dataset, FeatureSchema
from mlplab.domains import build_data, build_run_model, run_task
from mlplab.errors import SpecError
from mlplab.spec import ModelSpec, RunSpec


@dataclass
class Solved:
    """A solved budget: the width and what the real model measured."""

    width: int
    params: int
    flops: int
    error: float  # (measured - budget) / budget
    fixed: bool = False  # the model has no width: kept at its own size, not matched


class ModelMeter:
    """Builds models for one data spec and measures them: `measure(spec) -> counts`.

    The dataset is built once (the first spec's data, task and seed); every measured spec
    must share them. Example batch: up to 64 training rows. PLE bin edges are fitted on the
    training rows as `mlplab.train` fits them, once per (`ple_bins`, `ple_method`).
    """

    def __init__(self, spec: RunSpec) -> None:
        self.data: Dataset = build_data(spec)
        self.seed = spec.seed
        self.task = run_task(spec, self.data)
        self.batch = self.data.train.inputs(slice(0, min(64, len(self.data.train))))
        self._bins: dict[tuple[int, str], list[list[float]] | None] = {}

    def schema(self, model: ModelSpec) -> FeatureSchema:
        """The data's schema, with the bin edges `model` needs when it uses PLE."""
        if model.num_embeddings != "ple":
            return self.data.schema
        key = (model.ple_bins, model.ple_method)
        if key not in self._bins:
            self._bins[key] = ple_bins(self.data, model, seed=self.seed)
        return dataclasses.replace(self.data.schema, bins=self._bins[key])

    def measure(self, spec: RunSpec) -> dict[str, int]:
        with torch.random.fork_rng():
            model = build_run_model(self.data.kind, spec.model, self.schema(spec.model),
                                    self.task.d_out)
        return count(model, self.batch)


class Meters:
    """`meters(spec)`: one `ModelMeter` per distinct (data, task, seed), built on first use.

    Axes or searched fields may change the data (`data.max_rows`, `data.source`, ...), and
    with it the input width and so the counts; every spec is measured on its own data.
    """

    def __init__(self) -> None:
        self._meters: dict[str, ModelMeter] = {}

    def __call__(self, spec: RunSpec) -> ModelMeter:
        key = json.dumps([spec.data.model_dump(mode="json"), spec.task.model_dump(mode="json"),
                          spec.seed], sort_keys=True)
        if key not in self._meters:
            self._meters[key] = ModelMeter(spec)
        return self._meters[key]


def solve_width(measure: Callable[[int], dict[str, int]], budget: float, *, kind: str = "params",
                tolerance: float = 0.05, max_width: int = 8192, what: str = "") -> Solved:
    """The integer width whose measured `kind` count is closest to `budget` (secant + bisection).

    Raises `SpecError` naming the budget when no width in `[1, max_width]` lands within
    `tolerance` (relative).
    """
    key = "params" if kind == "params" else "flops_per_sample"
    seen: dict[int, float] = {}

    def value(w: int) -> float:
        if w not in seen:
            seen[w] = float(measure(w)[key])
        return seen[w]

    def best() -> int:
        return min(seen, key=lambda w: abs(seen[w] - budget))

    name = f"budget.{kind} = {budget:g}{f' for {what}' if what else ''}"
    lo_w, hi_w = 1, max_width
    if value(lo_w) > budget * (1 + tolerance):
        raise SpecError(f"{name} is impossible: the smallest model (width 1) already has "
                        f"{value(lo_w):,.0f} {kind}")
    a, b = 8 if max_width >= 16 else 1, min(64, max_width)
    for _ in range(20):
        w = best()
        if abs(seen[w] - budget) <= 0.01 * budget:
            break
        va, vb = value(a), value(b)
        if a == b or va == vb:
            break
        slope = (math.log(vb) - math.log(va)) / (math.log(b) - math.log(a))
        guess = math.exp(math.log(b) + (math.log(budget) - math.log(vb)) / max(slope, 0.1))
        nxt = min(max_width, max(1, round(guess)))
        if nxt in seen:
            break
        a, b = b, nxt
    # bracket: largest measured width below the budget, smallest above; bisect the gap
    below = [w for w in seen if seen[w] <= budget]
    above = [w for w in seen if seen[w] > budget]
    lo = max(below) if below else lo_w
    hi = min(above) if above else hi_w
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) <= budget:
            lo = mid
        else:
            hi = mid
    value(lo), value(hi)
    w = best()
    error = (seen[w] - budget) / budget
    if abs(error) > tolerance:
        if w >= max_width and seen[w] < budget:
            raise SpecError(f"{name} is impossible: even width {max_width} (budget.max_width) "
                            f"gives only {seen[w]:,.0f} {kind}")
        raise SpecError(f"{name} cannot be met within {tolerance:.0%}: the closest width {w} "
                        f"gives {seen[w]:,.0f} {kind}")
    counts = measure(w)
    return Solved(w, counts["params"], counts["flops_per_sample"], error)


def solve_spec(meter: ModelMeter, spec: RunSpec, budget: float, *, kind: str,
               tolerance: float = 0.05, max_width: int = 8192, what: str = "") -> tuple[RunSpec, Solved]:
    """`spec` with `model.width` solved for the budget, and the measured counts (a model whose
    counts do not change with the width is returned as it is, `Solved.fixed`)."""
    def measure(width: int) -> dict[str, int]:
        return meter.measure(spec.model_copy(update={"model": spec.model.model_copy(
            update={"width": width})}))

    key = "params" if kind == "params" else "flops_per_sample"
    if max_width > 1 and measure(1) == measure(min(64, max_width)):
        counts = measure(spec.model.width)
        return spec, Solved(spec.model.width, counts["params"], counts["flops_per_sample"],
                            (counts[key] - budget) / budget, fixed=True)

    solved = solve_width(measure, budget, kind=kind, tolerance=tolerance, max_width=max_width,
                         what=what)
    model = spec.model.model_copy(update={"width": solved.width})
    return spec.model_copy(update={"model": model}), solved
