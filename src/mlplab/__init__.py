"""mlplab: build, train, compare and inspect multi-layer perceptrons and their family."""

from mlplab import nn  # noqa: F401  (registers every layer before specs are validated)
from mlplab.build import build_model
from mlplab.count import count
from mlplab.data import build_dataset
from mlplab.errors import DataError, MlplabError, SpecError, TrainingError
from mlplab.estimators import (
    MLPClassifier,
    MLPForecaster,
    MLPRegressor,
    TabMClassifier,
    TabMRegressor,
    load,
)
from mlplab.infer import predict
from mlplab.run import LoadedRun, RunResult, load_run, resume, train
from mlplab.spec import RunSpec, load_spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "train", "resume", "load_run", "LoadedRun", "RunResult", "RunSpec", "load_spec", "parse_spec",
    "build_model", "build_dataset", "count", "MlplabError", "SpecError", "DataError",
    "TrainingError", "__version__", "MLPClassifier", "MLPRegressor", "TabMClassifier",
    "TabMRegressor", "MLPForecaster", "load", "sweep", "report", "SweepResult", "predict",
    "repro", "inspect",
]


def __getattr__(name: str):  # the lab (Optuna, SQLAlchemy, matplotlib) loads on first use
    import importlib

    if name in ("repro", "inspect"):  # callable modules: mlplab.repro("tabm"), mlplab.inspect(run)
        return importlib.import_module(f"mlplab.{name}")
    where = {"sweep": "mlplab.lab.sweep", "SweepResult": "mlplab.lab.sweep",
             "report": "mlplab.lab.report"}
    if name not in where:
        raise AttributeError(f"module 'mlplab' has no attribute {name!r}")
    return getattr(importlib.import_module(where[name]), name)
