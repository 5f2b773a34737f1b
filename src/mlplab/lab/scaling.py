"""Scaling-law fits `L(N) = E + A * N^(-alpha)` with bootstrap confidence intervals over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit


@dataclass
class ScalingFit:
    """Fitted `E + A * N^(-alpha)`; `ci` maps each name to a (low, high) percentile interval."""

    E: float
    A: float
    alpha: float
    n_points: int
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, n: Sequence[float] | float) -> np.ndarray:
        return self.E + self.A * np.asarray(n, dtype=float) ** (-self.alpha)


def fit_power_law(n: Sequence[float], loss: Sequence[float], *,
                  start: tuple[float, float, float] | None = None) -> tuple[float, float, float]:
    """Least-squares `(E, A, alpha)` with `0 <= E <= min(loss)`, `A > 0`, `0 < alpha <= 4`.

    Fitted in `N / N0` (N0 the geometric mean) so the problem is well scaled; needs at
    least 3 distinct `n`. `start` (a previous fit's `(E, A, alpha)`) replaces the grid of
    starting points.
    """
    x = np.asarray(n, dtype=float)
    y = np.asarray(loss, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 3:
        raise ValueError("a scaling fit needs losses at 3 or more distinct sizes")
    n0 = float(np.exp(np.mean(np.log(x))))
    u = x / n0
    lo_e, hi_e = 0.0, max(float(y.min()), 1e-12)

    def model(u: np.ndarray, e: float, b: float, alpha: float) -> np.ndarray:
        return e + b * u ** (-alpha)

    if start is not None:
        e_s, a_s, alpha_s = start
        starts = [(min(max(e_s, lo_e), hi_e), max(a_s / n0 ** alpha_s, 1e-9),
                   min(max(alpha_s, 1e-4), 4.0))]
    else:
        starts = [(e0, max(float(np.mean(y)) - e0, 1e-6), alpha0)
                  for alpha0 in (0.2, 0.5, 1.0) for e0 in (0.0, 0.5 * hi_e, 0.9 * hi_e)]
    best = None
    for e0, b0, alpha0 in starts:
        try:
            p, _ = curve_fit(model, u, y, p0=(e0, b0, alpha0), maxfev=5000,
                             bounds=([lo_e, 1e-12, 1e-4], [hi_e, np.inf, 4.0]))
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((model(u, *p) - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, p)
    if best is None:
        raise ValueError("the scaling fit did not converge")
    e, b, alpha = (float(v) for v in best[1])
    return e, b * n0 ** alpha, alpha


def fit_scaling(n: Sequence[float], losses: Sequence[Sequence[float]], *, n_boot: int = 200,
                level: float = 0.9, seed: int = 0) -> ScalingFit:
    """Fit on every (size, seed) loss; CIs from resampling each size's seeds with replacement.

    `n (k,)` sizes; `losses[i]` the per-seed losses at `n[i]`.
    """
    xs = np.concatenate([[ni] * len(li) for ni, li in zip(n, losses, strict=True)])
    ys = np.concatenate([np.asarray(li, dtype=float) for li in losses])
    e, a, alpha = fit_power_law(xs, ys)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        yb = np.concatenate([rng.choice(np.asarray(li, dtype=float), size=len(li), replace=True)
                             for li in losses])
        try:
            draws.append(fit_power_law(xs, yb, start=(e, a, alpha)))
        except ValueError:
            continue
    ci = {}
    if draws:
        arr = np.asarray(draws)
        lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
        for j, name in enumerate(("E", "A", "alpha")):
            ci[name] = (float(np.percentile(arr[:, j], lo)), float(np.percentile(arr[:, j], hi)))
    return ScalingFit(e, a, alpha, len(ys), ci)
