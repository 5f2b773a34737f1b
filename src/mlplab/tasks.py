"""Tasks: the loss the trainer minimises and the metrics a run reports."""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm
from torch import Tensor
from torch.nn import functional as F

from mlplab.data.preprocess import TargetCoder
from mlplab.errors import SpecError


class Task:
    """Base: `d_out` model outputs; `loss(out, y)`; `metrics(out, y)`; a default monitor."""

    d_out: int
    monitor: str
    higher_is_better: dict[str, bool]

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        raise NotImplementedError

    def check_monitor(self, name: str | None) -> str:
        name = name or self.monitor
        if name not in self.higher_is_better:
            raise SpecError(f"train.monitor: {name!r} is not a metric of this task; choose one of "
                            + ", ".join(repr(m) for m in self.higher_is_better))
        return name


class Classification(Task):
    """Cross-entropy (optional label smoothing); accuracy, log-loss, and ROC-AUC when binary.

    `out (batch, n_classes)` logits, `y (batch,)` class indices.
    """

    monitor = "accuracy"

    def __init__(self, n_classes: int, *, label_smoothing: float = 0.0) -> None:
        self.d_out = n_classes
        self.label_smoothing = label_smoothing
        self.higher_is_better = {"accuracy": True, "log_loss": False, "loss": False}
        if n_classes == 2:
            self.higher_is_better["roc_auc"] = True

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(out, y, label_smoothing=self.label_smoothing)

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        out = out.float()
        logp = out.log_softmax(-1)
        result = {
            "loss": float(self.loss(out, y)),
            "accuracy": float((out.argmax(-1) == y).float().mean()),
            "log_loss": float(F.nll_loss(logp, y)),
        }
        if self.d_out == 2:
            labels = y.numpy()
            if len(np.unique(labels)) == 2:
                result["roc_auc"] = float(skm.roc_auc_score(labels, logp[:, 1].exp().numpy()))
        return result


class Regression(Task):
    """MSE on the standardised target; RMSE, MAE and R² in the target's own units.

    `out (batch, 1)`, `y (batch,)` standardised values.
    """

    monitor = "rmse"

    def __init__(self, coder: TargetCoder) -> None:
        self.d_out = 1
        self.coder = coder
        self.higher_is_better = {"rmse": False, "mae": False, "r2": True, "loss": False}

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(out.squeeze(-1), y)

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        out = out.float().squeeze(-1)
        pred = self.coder.decode_values(out.double().numpy())
        true = self.coder.decode_values(y.double().numpy())
        return {
            "loss": float(self.loss(out.unsqueeze(-1), y)),
            "rmse": float(np.sqrt(np.mean((pred - true) ** 2))),
            "mae": float(np.mean(np.abs(pred - true))),
            "r2": float(skm.r2_score(true, pred)),
        }


def make_task(kind: str, coder: TargetCoder, *, label_smoothing: float = 0.0) -> Task:
    if kind == "classification":
        return Classification(coder.n_classes, label_smoothing=label_smoothing)
    if label_smoothing:
        raise SpecError("task.label_smoothing applies to classification only")
    return Regression(coder)


def predict_batches(model: torch.nn.Module, split_inputs, n: int, batch_size: int) -> Tensor:
    """Evaluate `model` over `n` rows in batches under `inference_mode`: `-> (n, d_out)`."""
    was_training = model.training
    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x, x_cat = split_inputs(slice(start, start + batch_size))
            outs.append(model(x, x_cat))
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)
