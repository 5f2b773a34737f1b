"""Pareto frontiers: the points no other point beats on both cost (lower) and quality."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(cost: Sequence[float], quality: Sequence[float], *,
                higher_is_better: bool = True) -> np.ndarray:
    """`(n,) bool`: True where no other point has cost <= and quality >= (one strictly better).

    Of exact duplicates only the first is kept. NaN points are never on the frontier.
    """
    c = np.asarray(cost, dtype=float)
    q = np.asarray(quality, dtype=float)
    if c.shape != q.shape or c.ndim != 1:
        raise ValueError(f"cost and quality must be 1-d and equally long, got {c.shape}, {q.shape}")
    if not higher_is_better:
        q = -q
    mask = np.zeros(len(c), dtype=bool)
    valid = np.flatnonzero(~(np.isnan(c) | np.isnan(q)))
    # cheapest first; among equal costs best quality first; stable for duplicates
    order = valid[np.lexsort((valid, -q[valid], c[valid]))]
    best = -np.inf
    for i in order:
        if q[i] > best:
            mask[i] = True
            best = q[i]
    return mask


def frontier_of(cost: Sequence[float], quality: Sequence[float], *,
                higher_is_better: bool = True) -> list[int]:
    """Indices of the frontier points, ordered by cost."""
    mask = pareto_mask(cost, quality, higher_is_better=higher_is_better)
    idx = np.flatnonzero(mask)
    return [int(i) for i in idx[np.argsort(np.asarray(cost, dtype=float)[idx], kind="stable")]]
