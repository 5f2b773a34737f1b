"""ONNX export of a trained model (a `mlplab train` run directory or a saved estimator), and
running it on raw rows.

The exported graph takes the *preprocessed* inputs the model sees, `x_num (batch, n_num)
float32` (or images `(batch, C, H, W)`) and, with categorical features, `x_cat (batch, n_cat)
int64` (0 = unknown), and returns one prediction per row: class probabilities
`(batch, n_classes)` (the mean over ensemble members) or the regression value `(batch,)`
(`(batch, n_targets)` for several targets) in the target's own units (standardisation and `data.target_transform` undone: `exp` for log,
`expm1` for log1p). The preprocessing state (medians, means, stds, vocabularies, classes) is
written next to it as `<out>.json`; `onnx_inputs(frame, "<out>.json")` applies it to a
DataFrame of raw columns, and `OnnxPredictor` / `predict_onnx` run the file under
onnxruntime (an optional dependency) from raw rows.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.errors import MlplabError, SpecError
from mlplab.estimators.persist import read_model
from mlplab.predictions import APPLY_TRANSFORM, class_values, model_inputs
from mlplab.tasks import make_task
from mlplab.train import checkpoint as ckpt


class Predictor(nn.Module):
    """Model + the task's member averaging + target decoding.

    Shapes: `x (batch, n_num)`, `x_cat (batch, n_cat)` -> `(batch, n_classes)` probabilities
    or `(batch,)` values.
    """

    def __init__(self, model: nn.Module, target: TargetCoder) -> None:
        super().__init__()
        self.model = model
        self.task = make_task(target.kind, target)
        self.kind = target.kind
        self.multi = bool(target.columns)
        if self.multi:  # several targets: per-column scales as constant buffers
            self.register_buffer("mean_", torch.tensor(target.mean, dtype=torch.float32))
            self.register_buffer("std_", torch.tensor(target.std, dtype=torch.float32))
        else:
            self.mean, self.std = float(target.mean), float(target.std)
        self.transform = target.transform

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        out = self.task.combine(self.model(x, x_cat))
        if self.kind == "classification":
            return out.exp()
        if self.multi:
            value = out * self.std_ + self.mean_
        else:
            value = out.squeeze(-1) * self.std + self.mean
        if self.transform == "log":
            return value.exp()
        return value.expm1() if self.transform == "log1p" else value


def load_predictor(path: str | Path) -> tuple[Predictor, dict[str, Any]]:
    """The `Predictor` of a run directory or saved estimator, plus its model record."""
    model, record = read_model(path)
    return Predictor(model, TargetCoder.from_dict(record["target"])).eval(), record


def example_inputs(schema: FeatureSchema, batch: int = 2) -> tuple[Tensor, ...]:
    """Zero inputs of the right shapes: `(x,)` or `(x, x_cat)`."""
    shape = (batch, *schema.image_shape) if schema.image_shape else (batch, schema.n_num)
    x = torch.zeros(shape)
    if schema.categorical:
        return x, torch.zeros(batch, len(schema.categorical), dtype=torch.int64)
    return (x,)


def export_onnx(path: str | Path, out: str | Path) -> Path:
    """Export the model in `path` to the ONNX file `out` (+ `<out>.json` preprocessing)."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise SpecError(f"--onnx: the output file should end in .onnx, got {str(out)!r}")
    predictor, record = load_predictor(path)
    schema = FeatureSchema.from_dict(record["schema"])
    inputs = example_inputs(schema)
    names = ["x_num", "x_cat"][: len(inputs)]
    out.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {"x": {0: batch}} if len(inputs) == 1 else {"x": {0: batch}, "x_cat": {0: batch}}
    tmp = out.with_name(f".{out.name}.tmp")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(predictor, inputs, dynamo=True, dynamic_shapes=dynamic,
                                    input_names=names, output_names=["prediction"],
                                    verbose=False)
        program.save(str(tmp))
    tmp.replace(out)
    ckpt.write_json(out.with_name(out.name + ".json"), {
        "inputs": names, "output": "prediction", "kind": record["target"]["kind"],
        "schema": record["schema"], "features": record["features"], "target": record["target"]})
    return out


def _read_meta(meta: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(meta, dict):
        return meta
    if not Path(meta).is_file():
        raise SpecError(f"{str(meta)!r} does not exist; `mlplab export` writes it next to the "
                        ".onnx file")
    return ckpt.read_json(meta)


def onnx_inputs(frame: pd.DataFrame, meta: str | Path | dict[str, Any]) -> dict[str, np.ndarray]:
    """The exported graph's inputs for the raw rows of `frame`, preprocessed exactly as in
    training: `{"x_num": (n, n_num) float32 (images (n, C, H, W)), "x_cat": (n, n_cat) int64}`
    (`x_cat` only with categorical features). `meta` is `<out>.onnx.json` or its content."""
    record = _read_meta(meta)
    x, x_cat = model_inputs(frame, FeaturePreprocessor.from_dict(record["features"]),
                            FeatureSchema.from_dict(record["schema"]))
    arrays = [x.numpy()] + ([x_cat.numpy()] if x_cat is not None else [])
    return dict(zip(record["inputs"], arrays, strict=True))


class OnnxPredictor:
    """An exported `.onnx` file under onnxruntime, fed with raw rows: `predict` and
    `predict_proba` agree with `LoadedRun`'s within float32 noise.

    Reads `<path>.json` (written by `export_onnx`) for the preprocessing and the classes.
    onnxruntime is imported here, so mlplab itself does not depend on it.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MlplabError("running an ONNX file needs onnxruntime; "
                              "install it with `pip install onnxruntime`") from None
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"ONNX file {str(path)!r} does not exist")
        self.record = _read_meta(path.with_name(path.name + ".json"))
        self.target = TargetCoder.from_dict(self.record["target"])
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise SpecError(f"cannot load ONNX file {str(path)!r}: {first}") from None

    def outputs(self, frame: pd.DataFrame) -> np.ndarray:
        """The graph's output: `(n, n_classes)` probabilities or `(n,)` values in target units."""
        return self.session.run(None, onnx_inputs(frame, self.record))[0]

    def predict(self, frame: pd.DataFrame, *, raw: bool = False) -> np.ndarray:
        """`(n,)` class labels, or values in the target's units (`raw=True`: on the
        `target_transform` scale, as `LoadedRun.predict(raw=True)`). `raw` does not change
        class labels."""
        out = self.outputs(frame)
        if self.target.kind == "classification":
            return class_values(self.target.classes)[out.argmax(-1)]
        apply = APPLY_TRANSFORM.get(self.target.transform)
        return apply(out) if raw and apply is not None else out

    def predict_proba(self, frame: pd.DataFrame, *, raw: bool = False) -> pd.DataFrame:
        """`(n, n_classes)` probabilities, one column per class, indexed like `frame`;
        `raw=True` gives log-probabilities."""
        if self.target.kind != "classification":
            raise SpecError("predict_proba needs a classification model; this one is a "
                            "regression, use predict")
        out = self.outputs(frame)
        return pd.DataFrame(np.log(out) if raw else out, index=frame.index,
                            columns=list(self.target.classes))


def predict_onnx(path: str | Path, frame: pd.DataFrame) -> np.ndarray:
    """`OnnxPredictor(path).predict(frame)`: labels or values for the raw rows of `frame`."""
    return OnnxPredictor(path).predict(frame)
