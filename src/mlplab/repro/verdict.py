"""The one verdict rule of every reproduction: a paired comparison in units of the seed spread.

A claim says family `better` beats family `worse`. The measured data are final runs in
*cells* (a dataset, or a dataset at one matched budget), each repeated over seeds; a seed
fixes the split and the initialisation, so the two families' runs with the same seed in the
same cell form a pair. Per pair the difference `d` is taken in the claim's direction
(positive = `better` is better, whichever way the metric points), and divided by the cell's
seed spread, the pooled standard deviation `sqrt((s_better^2 + s_worse^2) / 2)` over seeds,
so cells with different metrics and scales can be pooled; each standardised difference is
clipped to +-10 (one cell cannot outweigh the rest). Over all pairs of all cells:

- **agrees**: the 95% t-interval of the mean standardised difference lies above zero;
- **disagrees**: it lies below zero;
- **inconclusive within noise**: it contains zero, or there are fewer than 3 pairs (a cell
  needs 2 seeds for its spread).

A reproduction with several claims agrees when every claim agrees, disagrees when any claim
disagrees, and is inconclusive otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

AGREES, DISAGREES, INCONCLUSIVE = "agrees", "disagrees", "inconclusive within noise"
OUTCOMES = (AGREES, DISAGREES, INCONCLUSIVE)
CLIP = 10.0
LEVEL = 0.95
MIN_PAIRS = 3


@dataclass
class Cell:
    """One cell of a comparison: both families' mean and std over the paired seeds."""

    where: str
    better_mean: float
    better_std: float
    worse_mean: float
    worse_std: float
    seeds: int
    difference: float  # mean paired difference, claim direction positive, metric units
    spread: float  # pooled seed std of the two families
    effect: float  # difference / spread (clipped); nan with one seed

    @property
    def relative(self) -> float:
        """The difference relative to the worse family's mean (0.05 = 5% better)."""
        return self.difference / abs(self.worse_mean) if self.worse_mean else math.nan

    @property
    def mark(self) -> str:
        """Difference of the means against one seed std: ahead / behind / within noise."""
        if math.isnan(self.effect):
            return "one seed"
        return "ahead" if self.effect > 1 else ("behind" if self.effect < -1 else "within noise")


@dataclass
class Comparison:
    """One claim's test: `better` beats `worse`, over the pooled pairs of its cells."""

    claim: str
    better: str
    worse: str
    cells: list[Cell]
    effect: float  # mean standardised paired difference (seed stds)
    low: float  # its 95% t-interval
    high: float
    pairs: int
    outcome: str
    paper: str = ""
    counts: bool = True  # False: shown for information, not part of the paper's claim

    @property
    def relative(self) -> float:
        """Mean relative difference over the cells (claim direction positive)."""
        values = [c.relative for c in self.cells if not math.isnan(c.relative)]
        return float(np.mean(values)) if values else math.nan

    def interval(self) -> str:
        if math.isnan(self.effect):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.effect:+.2f} (fewer than {MIN_PAIRS} pairs: no interval)"
        return f"{self.effect:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


@dataclass
class Verdict:
    """What a reproduction measured and concluded; `outcome` is one of `OUTCOMES`."""

    name: str
    paper: str
    claim: str
    outcome: str
    comparisons: list[Comparison]
    table: pd.DataFrame  # measured: one row per part x budget, `mean ± std` per family
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # protocol, wall seconds, out dir

    def lines(self) -> list[str]:
        """The verdict in a few plain lines (what the CLI prints)."""
        out = [f"{self.name}: {self.paper}", f"claim: {self.claim}"]
        for c in self.comparisons:
            tag = "" if c.counts else " (extra, not the paper's claim)"
            rel = "" if math.isnan(c.relative) else f", mean relative {c.relative:+.1%}"
            out.append(f"  {c.claim}{tag}: {c.outcome} (effect {c.interval()} seed stds over "
                       f"{c.pairs} pairs{rel})" + (f"; paper: {c.paper}" if c.paper else ""))
        out.append(f"verdict: {self.outcome}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def combine(outcomes: list[str]) -> str:
    """All agree -> agrees; any disagrees -> disagrees; otherwise inconclusive."""
    if outcomes and all(o == AGREES for o in outcomes):
        return AGREES
    return DISAGREES if DISAGREES in outcomes else INCONCLUSIVE


def decide(z: np.ndarray) -> tuple[float, float, float, str]:
    """`(mean, low, high, outcome)` of standardised paired differences `z (n,)`."""
    z = np.clip(np.asarray(z, dtype=float), -CLIP, CLIP)
    if len(z) < MIN_PAIRS:
        return (float(z.mean()) if len(z) else math.nan), math.nan, math.nan, INCONCLUSIVE
    mean = float(z.mean())
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(z) - 1) * z.std(ddof=1) / math.sqrt(len(z)))
    low, high = mean - half, mean + half
    outcome = AGREES if low > 0 else (DISAGREES if high < 0 else INCONCLUSIVE)
    return mean, low, high, outcome


def _cell(where: str, pair: pd.DataFrame, sign: float) -> tuple[Cell, np.ndarray]:
    b, w = pair["better"].to_numpy(float), pair["worse"].to_numpy(float)
    d = sign * (b - w)
    n = len(d)
    if n < 2:
        spread, z = math.nan, np.array([])
    else:
        spread = math.sqrt((b.var(ddof=1) + w.var(ddof=1)) / 2)
        floor = 1e-12 + 1e-9 * max(abs(b.mean()), abs(w.mean()))
        z = np.where(d == 0, 0.0, d / max(spread, floor))
    effect = float(np.clip(z.mean(), -CLIP, CLIP)) if len(z) else math.nan
    cell = Cell(where, float(b.mean()), float(b.std(ddof=1)) if n > 1 else math.nan,
                float(w.mean()), float(w.std(ddof=1)) if n > 1 else math.nan, n,
                float(d.mean()) if n else math.nan, spread, effect)
    return cell, z


def compare(runs: pd.DataFrame, better: str, worse: str, *, claim: str, paper: str = "",
            counts: bool = True) -> Comparison:
    """Test "`better` beats `worse`" on `runs`: one row per final run with columns `cell`,
    `family`, `seed`, `quality` and `higher` (True when a larger quality is better).

    Pairs are the two families' runs with the same cell and seed; cells keep their order of
    first appearance. See the module docstring for the rule.
    """
    cells: list[Cell] = []
    zs: list[np.ndarray] = []
    for where in dict.fromkeys(runs["cell"]):
        part = runs[(runs["cell"] == where) & runs["family"].isin([better, worse])]
        table = part.pivot_table(index="seed", columns="family", values="quality")
        if better not in table or worse not in table:
            continue
        pair = table[[better, worse]].dropna().set_axis(["better", "worse"], axis=1)
        if pair.empty:
            continue
        sign = 1.0 if bool(part["higher"].iloc[0]) else -1.0
        cell, z = _cell(str(where), pair, sign)
        cells.append(cell)
        zs.append(z)
    z_all = np.concatenate(zs) if zs else np.array([])
    mean, low, high, outcome = decide(z_all)
    return Comparison(claim, better, worse, cells, mean, low, high, len(z_all), outcome,
                      paper, counts)
