"""scikit-learn's own estimator test suite, run on every mlplab estimator.

The instances are small (few epochs, narrow blocks) so the ~60 checks per estimator run in
seconds; the checks themselves are unchanged. Expected failures come from
`mlplab.estimators.expected_failed_checks` (each with its reason, listed in the README).
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

import mlplab
from mlplab.estimators import EXPECTED_FAILED_CHECKS, expected_failed_checks

SMALL = dict(d_block=32, max_epochs=30, lr=1e-2, batch_size=64, random_state=0)

ESTIMATORS = [
    mlplab.MLPClassifier(**SMALL),
    mlplab.MLPRegressor(**SMALL),
    mlplab.TabMClassifier(k=4, **SMALL),
    mlplab.TabMRegressor(k=4, num_embeddings="ple", **SMALL),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_every_expected_failure_has_a_reason() -> None:
    assert EXPECTED_FAILED_CHECKS
    assert all(len(reason) > 20 for reason in EXPECTED_FAILED_CHECKS.values())
