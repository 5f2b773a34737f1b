"""The scikit-learn estimator checks mlplab's estimators are expected to fail, with reasons.

scikit-learn 1.9 declares these through `expected_failed_checks` (the `_xfail_checks` tag
of older versions is gone): pass `expected_failed_checks` to
`sklearn.utils.estimator_checks.parametrize_with_checks` or `check_estimator`.
"""

from __future__ import annotations

from typing import Any

EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch training with early stopping on a random holdout: weighting a row by 2 is "
        "not the same optimisation path as repeating it (sklearn's own SGD/MLP models fail "
        "it too)"),
}


def expected_failed_checks(estimator: Any = None) -> dict[str, str]:
    """`{check name: reason}` for `parametrize_with_checks(expected_failed_checks=...)`."""
    return dict(EXPECTED_FAILED_CHECKS)
