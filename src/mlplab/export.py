"""ONNX export of a trained model (a `mlplab train` run directory or a saved estimator).

The exported graph takes the *preprocessed* inputs the model sees, `x_num (batch, n_num)
float32` (or images `(batch, C, H, W)`) and, with categorical features, `x_cat (batch, n_cat)
int64` (0 = unknown), and returns one prediction per row: class probabilities
`(batch, n_classes)` (the mean over ensemble members) or the regression value `(batch,)` in
the target's units (after any `target_transform`). The preprocessing state (medians, means,
stds, vocabularies, classes) is written next to it as `<out>.json`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import TargetCoder
from mlplab.errors import SpecError
from mlplab.estimators.persist import read_model
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
        self.mean, self.std = float(target.mean), float(target.std)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        out = self.task.combine(self.model(x, x_cat))
        if self.kind == "classification":
            return out.exp()
        return out.squeeze(-1) * self.std + self.mean


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
