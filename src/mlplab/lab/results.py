"""A sweep's results as tables: one row per trial, per family x budget, frontiers, wins, fits.

Quality is `analysis.metric` (default `test.<monitor>`), the scaling loss `analysis.loss`;
both are read from each trial's stored metrics. Final runs (`kind = "run"`) are analysed;
search trials only inform the tuned values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import MlplabError
from mlplab.lab.pareto import pareto_mask
from mlplab.lab.scaling import ScalingFit, fit_scaling
from mlplab.lab.store import STORE_FILE, Store

COSTS = {"params": "params", "flops": "FLOPs/sample", "train_seconds": "train s"}


@dataclass
class SweepResults:
    """Everything the report shows, read from the store."""

    name: str
    spec: dict[str, Any]
    info: dict[str, Any]
    trials: pd.DataFrame  # every trial (all kinds and statuses)
    events: list[dict[str, Any]]

    @property
    def metric(self) -> str:
        return self.info["metric"]

    @property
    def loss(self) -> str:
        return self.info["loss"]

    def higher(self, metric: str) -> bool:
        return bool(self.info["higher_is_better"][metric.split(".", 1)[1]])

    @property
    def runs(self) -> pd.DataFrame:
        """Finished final runs."""
        t = self.trials
        return t[(t["kind"] == "run") & (t["status"] == "done")].copy()


def open_store(target: str | Path, name: str | None = None) -> tuple[Store, str]:
    """A sweep's store from a run directory (holding lab.sqlite) or a database URL, and its name."""
    text = str(target)
    if "://" not in text:
        path = Path(text)
        if path.is_dir():
            path = path / STORE_FILE
        if not path.is_file():
            raise MlplabError(f"{text!r} is not a sweep directory (with {STORE_FILE}), a run "
                              "directory (with spec.json) or a store URL")
        text = str(path)
    store = Store(text)
    names = store.sweep_names()
    if name is None:
        if len(names) != 1:
            store.close()
            raise MlplabError(f"the store holds {len(names)} sweeps ({', '.join(names) or 'none'}); "
                              "pass --name")
        name = names[0]
    elif name not in names:
        store.close()
        raise MlplabError(f"the store has no sweep {name!r} (it has: {', '.join(names) or 'none'})")
    return store, name


def load_results(target: str | Path, name: str | None = None) -> SweepResults:
    """A sweep's `SweepResults`: `.trials` is a DataFrame, one row per trial of every kind and
    status, with the store's columns (`key`, `kind`, `family`, `budget`, `seed`, `spec`,
    `params`, `flops`, `metrics`, `curves`, `timings`, `status`, `host`, ...) plus `quality`
    (`analysis.metric`), `loss` (`analysis.loss`), `objective` (`val.<monitor>`) and
    `train_seconds`; `.runs` holds the finished final runs, `.spec`/`.info`/`.events` the rest.
    """
    store, name = open_store(target, name)
    try:
        row = store.get_sweep(name)
        assert row is not None
        info = row["info"]
        trials = pd.DataFrame(store.trials(int(row["id"])))
        events = store.events(int(row["id"]))
    finally:
        store.close()

    def metric(m: dict | None, path: str) -> float:
        split, _, key = path.partition(".")
        return float(m[split].get(key, np.nan)) if isinstance(m, dict) and split in m else np.nan

    trials["quality"] = [metric(m, info["metric"]) for m in trials["metrics"]]
    trials["loss"] = [metric(m, info["loss"]) for m in trials["metrics"]]
    trials["objective"] = [metric(m, f"val.{info['monitor']}") for m in trials["metrics"]]
    trials["train_seconds"] = [t.get("train_seconds", np.nan) if isinstance(t, dict) else np.nan
                               for t in trials["timings"]]
    return SweepResults(name, row["spec"], info, trials, events)


def summary(res: SweepResults) -> pd.DataFrame:
    """One row per family x budget: mean/std quality and loss over seeds, mean costs, frontiers.

    `front_<cost>` marks the family's own Pareto frontier, `global_<cost>` the frontier over
    every family.
    """
    runs = res.runs
    if runs.empty:
        return pd.DataFrame()
    runs["budget"] = runs["budget"].fillna(-1.0)
    g = runs.groupby(["family", "budget"], sort=False)
    table = g.agg(params=("params", "mean"), flops=("flops", "mean"),
                  train_seconds=("train_seconds", "mean"), quality=("quality", "mean"),
                  quality_std=("quality", "std"), loss=("loss", "mean"),
                  loss_std=("loss", "std"), seeds=("seed", "count")).reset_index()
    table["budget"] = table["budget"].replace(-1.0, np.nan)
    hib = res.higher(res.metric)
    for cost in COSTS:
        table[f"global_{cost}"] = pareto_mask(table[cost], table["quality"], higher_is_better=hib)
        table[f"front_{cost}"] = False
        for _, idx in table.groupby("family", sort=False).groups.items():
            table.loc[idx, f"front_{cost}"] = pareto_mask(
                table.loc[idx, cost], table.loc[idx, "quality"], higher_is_better=hib)
    return table.sort_values(["family", "params"], kind="stable").reset_index(drop=True)


def win_table(res: SweepResults) -> pd.DataFrame:
    """Budgets x families: `mean ± std` quality over seeds, the best family per budget.

    Columns: `budget`, one per family (mean), `<family> std`, `winner`, `margin` (best minus
    runner-up, in the metric's units), `seed wins` (on how many seeds the winner is also the
    best family: a paired view, since every family sees the same split for a given seed).
    """
    table = summary(res)
    if table.empty or table["budget"].isna().all():
        return pd.DataFrame()
    hib = res.higher(res.metric)
    runs = res.runs
    per_seed = runs.pivot_table(index=["budget", "seed"], columns="family", values="quality")
    best_per_seed = per_seed.idxmax(axis=1) if hib else per_seed.idxmin(axis=1)
    families = list(dict.fromkeys(table["family"]))
    rows = []
    for budget, part in table.groupby("budget", sort=True):
        row: dict[str, Any] = {"budget": budget}
        for fam in families:
            hit = part[part["family"] == fam]
            row[fam] = float(hit["quality"].iloc[0]) if len(hit) else np.nan
            row[f"{fam} std"] = float(hit["quality_std"].iloc[0]) if len(hit) else np.nan
        values = pd.Series({f: row[f] for f in families}).dropna()
        ranked = values.sort_values(ascending=not hib)
        row["winner"] = ranked.index[0] if len(ranked) else ""
        row["margin"] = abs(ranked.iloc[0] - ranked.iloc[1]) if len(ranked) > 1 else np.nan
        seeds = best_per_seed.loc[budget] if budget in best_per_seed.index else pd.Series()
        row["seed wins"] = f"{int((seeds == row['winner']).sum())}/{len(seeds)}"
        rows.append(row)
    return pd.DataFrame(rows)


def scaling_fits(res: SweepResults, size: str = "params", *, n_boot: int = 200
                 ) -> dict[str, ScalingFit | str]:
    """Per family, `loss = E + A * size^(-alpha)` over its runs (or why it cannot be fitted)."""
    fits: dict[str, ScalingFit | str] = {}
    runs = res.runs.dropna(subset=["loss", size])
    for family, part in runs.groupby("family", sort=False):
        groups = part.groupby("budget" if part["budget"].notna().all() else size)
        n = [float(g[size].mean()) for _, g in groups]
        losses = [g["loss"].tolist() for _, g in groups]
        try:
            fits[str(family)] = fit_scaling(n, losses, n_boot=n_boot)
        except ValueError as err:
            fits[str(family)] = str(err)
    return fits


def best_search_values(res: SweepResults) -> pd.DataFrame:
    """Per family x budget, the searched values the final runs used (empty without search)."""
    t = res.trials
    runs = t[(t["kind"] == "run") & t["spec"].notna()]
    space = list((res.spec.get("search") or {}).get("space") or {})
    if not space or runs.empty:
        return pd.DataFrame()
    rows = []
    for (family, budget), part in runs.groupby(["family", "budget"], sort=False):
        spec = part["spec"].iloc[0]
        row = {"family": family, "budget": budget}
        for key in space:
            node: Any = spec
            for p in key.split("."):
                node = node[p]
            row[key] = node
        rows.append(row)
    return pd.DataFrame(rows)
