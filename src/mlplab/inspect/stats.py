"""Activation statistics of every block's hidden layer: how many units fire, which never do.

A hidden unit is *active* on an example when its activation is nonzero after a ReLU (or a
top-k, which leaves exact zeros), and when `|a| > SMOOTH_THRESHOLD` after a smooth
activation (GELU, SiLU, gates, bilinear products, KAN/FAN/RBF units), whose outputs are
rarely exactly zero. The unit axis is everything after the batch axis: `(hidden,)`, or
`(k, hidden)` for a TabM ensemble (each member's unit counts separately).

Per block: `frac_active` (mean over examples of the fraction of units active, as the
lazy-neuron paper reports it), its median and 90th percentile over examples, `dead` (units
active on no example of the data given), and each unit's activation frequency (share of
examples it is active on) for the histogram.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mlplab.inspect.capture import BlockSite, Recorder, blocks_of, run_model

SMOOTH_THRESHOLD = 1e-2  # |a| above this counts as active after a smooth activation


def exact_zeros(site: BlockSite) -> bool:
    """Whether the block's inactive units are exact zeros (ReLU, or top-k sparsity)."""
    block = site.block
    return isinstance(getattr(block, "act", None), nn.ReLU) or bool(getattr(block, "top_k", None))


def threshold_of(site: BlockSite, smooth: float = SMOOTH_THRESHOLD) -> float:
    """0 for exact-zero blocks (active = nonzero), else `smooth` (active = |a| > smooth)."""
    return 0.0 if exact_zeros(site) else smooth


@dataclass
class BlockStats:
    """The activation statistics of one block's hidden layer on `examples` rows."""

    number: int
    kind: str
    units: int
    threshold: float
    examples: int
    frac_active: float
    frac_active_median: float
    frac_active_p90: float
    dead: int
    frequency: np.ndarray  # (units,) share of examples each unit is active on

    @property
    def dead_frac(self) -> float:
        return self.dead / self.units if self.units else 0.0

    def row(self) -> dict[str, float | int | str]:
        return {"block": self.number, "kind": self.kind, "units": self.units,
                "threshold": self.threshold, "examples": self.examples,
                "frac_active": self.frac_active, "frac_active_median": self.frac_active_median,
                "frac_active_p90": self.frac_active_p90, "dead": self.dead,
                "dead_frac": self.dead_frac}


class _Accumulator:
    """Streaming counts for one block: per-unit active counts and per-example fractions."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.counts: Tensor | None = None
        self.per_example: list[Tensor] = []

    def add(self, hidden: Tensor) -> None:
        flat = hidden.flatten(1)  # (batch, units)
        active = (flat != 0 if self.threshold == 0 else flat.abs() > self.threshold).float()
        counts = active.sum(0).long()  # float sums: exact below 2**24 rows per batch
        self.counts = counts if self.counts is None else self.counts + counts
        self.per_example.append(active.mean(1))


def activation_stats(model: nn.Module, data: Iterable[tuple[Tensor, Tensor | None]], *,
                     smooth_threshold: float = SMOOTH_THRESHOLD,
                     sites: list[BlockSite] | None = None) -> list[BlockStats]:
    """Statistics of every block's hidden layer over `(x, x_cat)` batches, in eval mode.

    The hooks are removed afterwards and the model's mode restored.
    """
    sites = blocks_of(model) if sites is None else sites
    acc = {s.number: _Accumulator(threshold_of(s, smooth_threshold)) for s in sites}
    with Recorder(sites, ("hidden",), reduce=lambda n, kind, t: acc[n].add(t)):
        run_model(model, data)
    result = []
    for site in sites:
        a = acc[site.number]
        if a.counts is None:
            raise RuntimeError(f"{site.label} did not run in the model's forward pass")
        per_example = torch.cat(a.per_example).numpy()
        n = len(per_example)
        freq = a.counts.numpy() / max(n, 1)
        result.append(BlockStats(
            site.number, site.kind, int(a.counts.numel()), a.threshold, n,
            float(per_example.mean()), float(np.median(per_example)),
            float(np.quantile(per_example, 0.9)), int((a.counts == 0).sum()), freq))
    return result


def stats_frame(stats: list[BlockStats]) -> pd.DataFrame:
    """One row per block (see `BlockStats.row`)."""
    return pd.DataFrame([s.row() for s in stats])


def frequency_histogram(stats: BlockStats, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Counts of units per log10(activation frequency) bin, dead units left out:
    `(counts (bins,), edges (bins + 1,))` over [log10(1/examples), 0]."""
    freq = stats.frequency[stats.frequency > 0]
    low = np.log10(1.0 / max(stats.examples, 1))
    return np.histogram(np.log10(freq), bins=bins, range=(min(low, -1e-9), 0.0))
