"""Saving and loading fitted estimators: `estimator.json` + `model.safetensors`, never pickle.

`estimator.json` holds the class name, the constructor parameters, the learning curves
(`curves_`) and the model record (model spec, feature schema incl. PLE bins, preprocessing
state, target coding) in the same layout as a run directory's `model.json`, so
`mlplab export` reads both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import TargetCoder
from mlplab.errors import SpecError
from mlplab.spec import ModelSpec
from mlplab.tasks import make_task
from mlplab.train import checkpoint as ckpt

FORMAT = "mlplab-estimator"
RECORD = "estimator.json"
WEIGHTS = "model.safetensors"


def _json_param(value: Any) -> Any:
    if isinstance(value, np.random.RandomState):
        return None
    return value.item() if isinstance(value, np.generic) else value


def save_estimator(est: Any, path: str | Path) -> None:
    """Write a fitted estimator to the directory `path` (created if needed)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    path = Path(path)
    names = getattr(est, "feature_names_in_", None)
    record = {
        "format": FORMAT, "version": 1, "class": type(est).__name__,
        "params": {k: _json_param(v) for k, v in est.get_params().items()},
        "model": est.model_spec_.model_dump(mode="json"), "schema": est.schema_.to_dict(),
        "d_out": est.task_.d_out, "features": est.features_.to_dict(),
        "target": est.target_.to_dict(), "columns": est._columns,
        "feature_names_in": [str(n) for n in names] if names is not None else None,
        "n_iter": est.n_iter_, "best_epoch": est.best_epoch_, "curves": est.curves_,
        "precision": getattr(est, "precision_", None),
    }
    path.mkdir(parents=True, exist_ok=True)
    ckpt.write_tensors(path / WEIGHTS, est.model_.state_dict())
    ckpt.write_json(path / RECORD, record)


def read_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model a saved estimator or a finished run holds: `(model, record)`."""
    path = Path(path)
    if (path / RECORD).is_file():
        source = path / RECORD
    elif (path / "model.json").is_file() and (path / "model.safetensors").is_file():
        source = path / "model.json"
    else:
        raise SpecError(f"{str(path)!r} is neither a saved estimator ({RECORD}) nor a finished "
                        "run directory (model.json + model.safetensors)")
    record = ckpt.read_json(source, keys=("model", "schema", "d_out", "target"))
    with ckpt.reading(source):
        model = build_model(ModelSpec.model_validate(record["model"]),
                            FeatureSchema.from_dict(record["schema"]), record["d_out"])
    ckpt.load_weights(model, path / WEIGHTS)
    model.eval()
    return model, record


def load(path: str | Path) -> Any:
    """Load an estimator saved with `est.save(path)`; it predicts exactly as before saving."""
    from mlplab import estimators

    path = Path(path)
    if (path / "forecaster.json").is_file():  # an MLPForecaster (mlplab.estimators.forecaster)
        from mlplab.estimators.forecaster import MLPForecaster

        return MLPForecaster.load(path)
    if not (path / RECORD).is_file():
        hint = "; it is a run directory: use mlplab.load_run" if (path / "spec.json").is_file() \
            else ""
        raise SpecError(f"{str(path)!r} holds no saved estimator (no {RECORD}){hint}")
    model, record = read_model(path)
    if record.get("format") != FORMAT:
        raise SpecError(f"{str(path / RECORD)!r} is not an mlplab estimator file")
    cls = getattr(estimators, record["class"], None)
    if cls is None:
        raise SpecError(f"{str(path / RECORD)!r} names an unknown estimator {record['class']!r}")
    est = cls(**record["params"])
    target = TargetCoder.from_dict(record["target"])
    est._restore(model, make_task(target.kind, target), record)
    return est
