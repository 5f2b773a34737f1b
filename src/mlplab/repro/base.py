"""A reproduction: a paper's claim, its figures, the sweeps that test it and its verdict.

A `Reproduction` builds its protocol as `Part`s, each one ordinary sweep (a sweep spec dict,
stored under its own name in the run directory's `lab.sqlite`), tagged (`domain`, `match`,
...) so that each `Claim` can pick the cells it is judged on. The verdict comes from the
measured final runs through the one rule in `mlplab.repro.verdict`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import SpecError
from mlplab.messages import did_you_mean
from mlplab.repro.verdict import Comparison, Verdict, combine, compare

RUN_COLUMNS = ("part", "label", "family", "budget", "seed", "quality", "higher", "metric",
               "params", "flops", "train_seconds")


@dataclass(frozen=True)
class Part:
    """One sweep of a protocol: `sweep` is a sweep spec dict named `name`; `label` names its
    dataset in tables; `tags` (e.g. `{"domain": "tabular", "match": "params"}`) select it."""

    name: str
    label: str
    sweep: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """"`better` beats `worse`" on the parts whose tags include `where`; `paper` is what the
    paper reports for it; `counts = False` marks a comparison shown only for information."""

    text: str
    better: str
    worse: str
    where: dict[str, str] = field(default_factory=dict)
    paper: str = ""
    counts: bool = True


@dataclass(frozen=True)
class Reproduction:
    """A registered reproduction. `build(protocol)` returns the parts, `claims(protocol)` the
    claims; `protocols` holds the `default` and `full` protocol objects (frozen dataclasses,
    so fields can be overridden with `protocol={...}`)."""

    name: str
    paper: str
    claim: str
    figures: tuple[str, ...]
    minutes: float  # measured wall minutes of the default protocol on this 2-core machine
    full_minutes: float
    protocols: dict[str, Any]
    build: Callable[[Any], list[Part]]
    claims: Callable[[Any], list[Claim]]
    # optional: `finish(verdict, results, parts, out)` adds notes/info/files from the measured
    # sweeps (e.g. a frontier plot) before the outputs are written
    finish: Callable[[Verdict, dict[str, Any], list[Part], Any], None] | None = None

    def protocol(self, full: bool = False, overrides: dict[str, Any] | None = None) -> Any:
        """The default (or full) protocol with `overrides` applied; unknown keys are errors."""
        base = self.protocols["full" if full else "default"]
        overrides = dict(overrides or {})
        names = [f.name for f in dataclasses.fields(base)]
        for key in overrides:
            if key not in names:
                hint = did_you_mean(key, names)
                raise SpecError(f"protocol: {self.name} has no setting {key!r}; "
                                f"{hint + ' ' if hint else ''}choose from {', '.join(names)}")
        values = {k: _checked(k, v, getattr(base, k)) for k, v in overrides.items()}
        return dataclasses.replace(base, **values)

    def parts(self, protocol: Any) -> list[Part]:
        parts = self.build(protocol)
        if not parts:
            raise SpecError(f"protocol: {self.name} selects no datasets; name at least one")
        return parts

    def verdict(self, runs: pd.DataFrame, protocol: Any) -> Verdict:
        """Judge every claim on `runs` (rows as `collect` makes them) and combine the counted
        ones into the reproduction's outcome."""
        comparisons = [judge(runs, claim) for claim in self.claims(protocol)]
        outcome = combine([c.outcome for c in comparisons if c.counts])
        return Verdict(self.name, self.paper, self.claim, outcome, comparisons,
                       measured_table(runs), list(self.figures))


def _checked(key: str, value: Any, default: Any) -> Any:
    """`value` in the type of the protocol's `default` (lists become tuples), or `SpecError`."""
    if isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(
            isinstance(x, type(default[0])) or (isinstance(default[0], float)
                                                and isinstance(x, int)) for x in value) \
            if default else isinstance(value, list | tuple)
        if ok:
            return tuple(float(x) if default and isinstance(default[0], float) else x
                         for x in value)
        want = f"a list of {type(default[0]).__name__}s" if default else "a list"
    elif isinstance(default, bool) or isinstance(value, bool):
        if type(value) is type(default):
            return value
        want = type(default).__name__
    elif isinstance(default, int | float) or default is None:
        if (value is None and default is None) or (isinstance(value, int | float)
                                                   and not isinstance(value, bool)):
            return value
        want = "a number" + (" or none" if default is None else "")
    else:
        if isinstance(value, type(default)):
            return value
        want = type(default).__name__
    raise SpecError(f"protocol.{key}: expected {want}, got {value!r}")


def _budget_text(budget: float, match: str | None) -> str:
    if budget is None or (isinstance(budget, float) and math.isnan(budget)):
        return ""
    unit = {"params": " params", "flops": " FLOPs"}.get(match or "", "")
    return f"{budget:,.0f}{unit}"


def cells_of(runs: pd.DataFrame) -> pd.Series:
    """`label`, or `label @ budget` when the part matched a budget."""
    match = runs["match"] if "match" in runs else pd.Series([None] * len(runs), index=runs.index)
    return pd.Series([lab + (f" @ {b}" if (b := _budget_text(bud, m)) else "")
                      for lab, bud, m in zip(runs["label"], runs["budget"], match, strict=True)],
                     index=runs.index, dtype=object)


def judge(runs: pd.DataFrame, claim: Claim) -> Comparison:
    """One claim on the runs of the parts whose tags match `claim.where`."""
    mask = pd.Series(True, index=runs.index)
    for key, value in claim.where.items():
        mask &= runs[key] == value if key in runs else False
    part = runs[mask].copy()
    part["cell"] = cells_of(part) if len(part) else []
    return compare(part, claim.better, claim.worse, claim=claim.text, paper=claim.paper,
                   counts=claim.counts)


def collect(parts: list[Part], results: dict[str, Any]) -> pd.DataFrame:
    """One row per finished final run of every part, restricted to the protocol's seeds,
    budgets and families: `RUN_COLUMNS` plus each part's tags. `results` maps a part's name to
    its `SweepResults`."""
    frames = []
    for part in parts:
        res = results.get(part.name)
        if res is None or res.runs.empty:
            continue
        runs = res.runs
        keep = runs["seed"].isin(part.sweep.get("seeds", [0]))
        budget = part.sweep.get("budget") or {}
        values = budget.get("params") or budget.get("flops")
        if values:
            keep &= runs["budget"].isin([float(v) for v in values])
        names = list(part.sweep.get("family") or {})
        if names:
            keep &= runs["family"].isin(names)
        runs = runs[keep]
        frame = pd.DataFrame({
            "part": part.name, "label": part.label, "family": runs["family"].astype(str),
            "budget": runs["budget"].astype(float), "seed": runs["seed"].astype(int),
            "quality": runs["quality"].astype(float), "higher": res.higher(res.metric),
            "metric": res.metric, "params": runs["params"].astype(float),
            "flops": runs["flops"].astype(float),
            "train_seconds": runs["train_seconds"].astype(float)})
        for key, value in part.tags.items():
            frame[key] = value
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def measured_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per part x budget: the metric and `mean ± std (n)` of every family."""
    if runs.empty:
        return pd.DataFrame()
    runs = runs.assign(cell=cells_of(runs))
    families = list(dict.fromkeys(runs["family"]))
    rows = []
    for (cell, metric), part in runs.groupby(["cell", "metric"], sort=False):
        row: dict[str, Any] = {"cell": cell, "metric": metric}
        for fam in families:
            q = part.loc[part["family"] == fam, "quality"].to_numpy(float)
            row[fam] = mean_std(q)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(values: np.ndarray, *, digits: int = 4) -> str:
    """`mean ± std` (sample std) of one family's values to `digits` significant digits; the
    mean alone for one value or identical values (a deterministic baseline)."""
    if len(values) == 0:
        return ""
    mean = values.mean()
    if len(values) == 1 or not values.std() > 1e-9 * abs(mean):  # equal up to rounding
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {values.std(ddof=1):.2g}"


@dataclass(frozen=True)
class ScriptReproduction(Reproduction):
    """A reproduction measured by a short script on the public API instead of sweeps:
    `script(protocol, out, workers=, quiet=, reports=) -> Verdict` (`mlplab.repro.run` calls
    it)."""

    script: Callable[..., Verdict] | None = None

    def parts(self, protocol: Any) -> list:
        """No sweeps: `build(protocol)` only checks the protocol."""
        self.build(protocol)
        return []
