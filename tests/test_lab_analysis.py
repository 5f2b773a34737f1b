"""Analysis on known answers: Pareto frontiers of hand-made points, and a scaling-law fit that
recovers the (E, A, alpha) used to make synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab.lab.pareto import frontier_of, pareto_mask
from mlplab.lab.scaling import fit_power_law, fit_scaling


def test_pareto_higher_is_better():
    cost = [1, 2, 3, 4, 2, 5]
    quality = [0.5, 0.7, 0.6, 0.9, 0.65, 0.9]
    # 3 is beaten by 2 (cheaper, better); 4 beats 5 at equal quality; 2 beats its twin 4
    assert pareto_mask(cost, quality).tolist() == [True, True, False, True, False, False]
    assert frontier_of(cost, quality) == [0, 1, 3]


def test_pareto_lower_is_better_duplicates_and_nan():
    cost = [10, 10, 20, 5, np.nan, 30]
    loss = [0.3, 0.3, 0.2, 0.4, 0.0, 0.25]
    mask = pareto_mask(cost, loss, higher_is_better=False)
    assert mask.tolist() == [True, False, True, True, False, False]
    assert frontier_of(cost, loss, higher_is_better=False) == [3, 0, 2]


def test_pareto_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="equally long"):
        pareto_mask([1, 2], [1.0])


def test_scaling_fit_recovers_known_law():
    rng = np.random.default_rng(0)
    true_e, true_a, true_alpha = 0.12, 8.0, 0.45
    n = np.geomspace(1e3, 1e6, 7)
    losses = [true_e + true_a * ni ** -true_alpha + rng.normal(0, 0.002, size=3) for ni in n]
    fit = fit_scaling(n, losses, n_boot=100)
    assert fit.E == pytest.approx(true_e, abs=0.01)
    assert fit.alpha == pytest.approx(true_alpha, rel=0.08)
    assert fit.A == pytest.approx(true_a, rel=0.35)
    for name, truth in (("E", true_e), ("alpha", true_alpha)):
        lo, hi = fit.ci[name]
        assert lo <= truth <= hi and lo < hi
    assert fit.n_points == 21
    assert fit.predict([1e4])[0] == pytest.approx(true_e + true_a * 1e4 ** -true_alpha, rel=0.02)


def test_scaling_fit_exact_data_and_too_few_sizes():
    n = np.array([1e2, 1e3, 1e4, 1e5])
    e, a, alpha = fit_power_law(n, 0.5 + 3.0 * n ** -0.7)
    assert (e, a, alpha) == pytest.approx((0.5, 3.0, 0.7), rel=1e-3)
    with pytest.raises(ValueError, match="3 or more distinct sizes"):
        fit_power_law([10, 10, 100], [1.0, 1.1, 0.5])
