"""Planning: a sweep spec -> the stored list of trials (family x budget x seed, plus search).

Grid trials get their full run spec (width solved for the budget) now, so an impossible
budget is a `SpecError` before anything trains. Search trials, and the final runs that use
the search's best values, get their spec when a worker claims them.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

from mlplab.errors import SpecError
from mlplab.lab import search
from mlplab.lab.budget import Meters, ModelMeter, solve_spec
from mlplab.lab.spec import SweepSpec, with_values
from mlplab.lab.store import Store
from mlplab.spec import RunSpec


def trial_key(kind: str, family: str, budget: float | None, seed: int, index: int | None) -> str:
    b = "-" if budget is None else f"{budget:g}"
    return f"{kind}/{family}/{b}/seed={seed}" + (f"/{index}" if index is not None else "")


def sweep_info(spec: SweepSpec, meter: ModelMeter) -> dict[str, Any]:
    """What analysis needs to know without the data: task kind, metrics and their directions."""
    task = meter.task
    kind = meter.data.target.kind
    monitor = task.check_monitor(spec.base.train.monitor)
    metric = spec.analysis.metric or f"test.{monitor}"
    loss = spec.analysis.loss or ("test.log_loss" if kind == "classification" else "test.rmse")
    for field, value in (("analysis.metric", metric), ("analysis.loss", loss)):
        split, _, name = value.partition(".")
        if split not in ("train", "val", "test") or name not in task.higher_is_better:
            raise SpecError(f"{field}: expected <train|val|test>.<metric> with a metric among "
                            + ", ".join(repr(m) for m in task.higher_is_better) + f", got {value!r}")
    from mlplab import __version__

    return {"task": kind, "monitor": monitor, "metric": metric, "loss": loss,
            "higher_is_better": task.higher_is_better, "budget_kind":
            spec.budget.kind if spec.budget else None,
            "environment": {"python": platform.python_version(), "torch": torch.__version__,
                            "mlplab": __version__, "platform": platform.platform(),
                            "processor": platform.processor() or platform.machine()}}


def family_spec(spec: SweepSpec, values: dict[str, Any]) -> RunSpec:
    where = f"{'family' if spec.family else 'axes'} {spec.label_of(values)!r}"
    return with_values(spec.base, values, where=where)


def trial_spec(spec: SweepSpec, meters: Meters, values: dict[str, Any], budget: float | None,
               seed: int, extra: dict[str, Any] | None = None) -> tuple[RunSpec, dict[str, int]]:
    """The run spec of one trial: family values + searched values, width solved, seed set."""
    run = family_spec(spec, {**values, **(extra or {})})
    run = run.model_copy(update={"seed": seed, "name": spec.name})
    meter = meters(run)
    if budget is None or spec.budget is None:
        return run, meter.measure(run)
    run, solved = solve_spec(meter, run, budget, kind=spec.budget.kind,
                             tolerance=spec.budget.tolerance, max_width=spec.budget.max_width,
                             what=f"family {spec.label_of(values)!r}")
    return run, {"params": solved.params, "flops_per_sample": solved.flops}


def plan_rows(spec: SweepSpec, meters: Meters) -> list[dict[str, Any]]:
    rows = []
    budgets: list[float | None] = list(spec.budget.values) if spec.budget else [None]
    for label, values in spec.labelled_families():
        for budget in budgets:
            common = {"family": label, "family_values": values, "budget": budget}
            run, counts = trial_spec(spec, meters, values, budget, spec.seeds[0])
            if spec.search is not None:
                seed = spec.search.seed if spec.search.seed is not None else spec.seeds[0]
                for i in range(spec.search.n_trials):
                    rows.append({**common, "kind": "search", "seed": seed, "search_index": i,
                                 "key": trial_key("search", label, budget, seed, i)})
            for seed in spec.seeds:
                row = {**common, "kind": "run", "seed": seed,
                       "key": trial_key("run", label, budget, seed, None)}
                if spec.search is None:
                    seeded = run.model_copy(update={"seed": seed})
                    row.update(spec=seeded.model_dump(mode="json"), params=counts["params"],
                               flops=counts["flops_per_sample"])
                rows.append(row)
    return rows


def plan(spec: SweepSpec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`(info, trial rows)`: checks every budget and metric; writes nothing."""
    meters = Meters()
    return sweep_info(spec, meters(spec.base)), plan_rows(spec, meters)


def prepare(store: Store, spec: SweepSpec,
            planned: tuple[dict[str, Any], list[dict[str, Any]]] | None = None) -> int:
    """Register the sweep and its trials in the store (idempotent); returns the sweep id."""
    info, rows = planned if planned is not None else plan(spec)
    sweep_id = store.ensure_sweep(
        spec.name, spec.model_dump(mode="json"), info,
        normalise=lambda stored: type(spec).model_validate(stored).model_dump(mode="json"))
    if spec.search is not None:
        direction = "maximize" if info["higher_is_better"][info["monitor"]] else "minimize"
        for row in rows:
            if row["kind"] == "search" and row["search_index"] == 0:
                search.create_study(store.url, search.study_name(spec.name, row["family"],
                                                                 row["budget"]), direction)
    store.add_trials(sweep_id, rows)
    return sweep_id
