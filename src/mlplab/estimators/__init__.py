"""scikit-learn compatible estimators over mlplab's Model + Trainer."""

from mlplab.estimators.checks import EXPECTED_FAILED_CHECKS, expected_failed_checks
from mlplab.estimators.forecaster import MLPForecaster
from mlplab.estimators.models import MLPClassifier, MLPRegressor, TabMClassifier, TabMRegressor
from mlplab.estimators.persist import load, save_estimator
from mlplab.estimators.specs import ARCHS

__all__ = ["ARCHS", "MLPClassifier", "MLPForecaster", "MLPRegressor", "TabMClassifier", "TabMRegressor", "load",
           "save_estimator", "EXPECTED_FAILED_CHECKS", "expected_failed_checks"]
