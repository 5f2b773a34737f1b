"""Tasks: the loss the trainer minimises and the metrics a run reports."""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch
from sklearn import metrics as skm
from torch import Tensor
from torch.nn import functional as F

from mlplab.data.preprocess import TargetCoder
from mlplab.domains import TaskKind, register_task, task_kind
from mlplab.errors import SpecError


def _members(out: Tensor, y: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Flatten ensemble outputs `(batch, k, d)` to `(batch*k, d)`, repeating `y` and `w`."""
    if out.ndim == 3:
        k = out.shape[1]
        out = out.flatten(0, 1)
        y = y.repeat_interleave(k, dim=0)
        w = w.repeat_interleave(k) if w is not None else None
    return out, y, w


def _weighted_mean(losses: Tensor, w: Tensor | None) -> Tensor:
    return losses.mean() if w is None else (losses * w).sum() / w.sum().clamp_min(1e-12)


class TrainingPenalty(Protocol):
    """`inputs(step) -> (m, d_in)`: extra model inputs of training step `step` (the same
    for the same step: resumes are exact); `penalty(out) -> scalar`: the weighted term from
    the model's outputs at them, `(m, d_out)` or ensemble `(m, k, d_out)`."""

    def inputs(self, step: int) -> Tensor: ...

    def penalty(self, out: Tensor) -> Tensor: ...


class Task:
    """Base: `d_out` model outputs; `loss(out, y, w)`; `metrics(out, y)`; a default monitor.

    Every task accepts plain outputs `(batch, d_out)` and ensemble outputs `(batch, k, d_out)`:
    the loss is the mean of the k members' losses (weighted per row by `w (batch,)` if given)
    and `combine` turns the k members into one prediction.
    """

    d_out: int
    monitor: str
    higher_is_better: dict[str, bool]

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def combine(self, out: Tensor) -> Tensor:
        """One prediction per row `(batch, d_out)` from `(batch, d_out)` or `(batch, k, d_out)`."""
        raise NotImplementedError

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        raise NotImplementedError

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        """Combined outputs `(n, d_out)` -> predictions in the user's units: `(n,)` (or
        `(n, n_targets)` for several regression targets)."""
        raise NotImplementedError

    def output_columns(self) -> list[str]:
        """Column names of `mlplab predict`'s table for `decode`'s values."""
        return ["prediction"]

    def training_penalty(self, data: Any, seed: int) -> TrainingPenalty | None:
        """A term of the training loss read off the model's outputs at extra inputs the
        trainer appends to every step's batch (a field's output total variation,
        `mlplab.fields.output_tv`); None (the default) for no such term."""
        return None

    def write_artifacts(self, run_dir: Any, model: torch.nn.Module, data: Any,
                        curves: list[dict[str, Any]]) -> Any:
        """A domain's extra files in a finished run directory (a field's pictures, a
        forecast's forecasts.csv), called by `mlplab.train`; none for tables."""
        return None

    def check_monitor(self, name: str | None, *, field: str = "train.monitor") -> str:
        """The early-stopping metric: `name`, or the task's default when None."""
        name = name or self.monitor
        if name not in self.higher_is_better:
            raise SpecError(f"{field}: {name!r} is not a metric of this task; choose one of "
                            + ", ".join(repr(m) for m in self.higher_is_better))
        return name


class Classification(Task):
    """Cross-entropy (optional label smoothing); accuracy, log-loss, and ROC-AUC when binary.

    `out (batch, n_classes)` or `(batch, k, n_classes)` logits, `y (batch,)` class indices.
    An ensemble predicts with the mean of its members' probabilities; `combine` returns the
    log of that mean, so softmax/argmax of it work like logits. Early stopping watches the
    validation log-loss by default: accuracy is flat at the majority rate on imbalanced data,
    so it would keep near-initial weights.
    """

    monitor = "log_loss"

    def __init__(self, n_classes: int, *, label_smoothing: float = 0.0,
                 coder: TargetCoder | None = None) -> None:
        self.d_out = n_classes
        self.coder = coder or TargetCoder("classification", classes=list(range(n_classes)))
        self.label_smoothing = label_smoothing
        self.higher_is_better = {"accuracy": True, "log_loss": False, "loss": False}
        if n_classes == 2:
            self.higher_is_better["roc_auc"] = True

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        out, y, w = _members(out, y, w)
        if w is None:
            return F.cross_entropy(out, y, label_smoothing=self.label_smoothing)
        losses = F.cross_entropy(out, y, label_smoothing=self.label_smoothing, reduction="none")
        return _weighted_mean(losses, w)

    def combine(self, out: Tensor) -> Tensor:
        out = out if out.dtype == torch.float64 else out.float()
        if out.ndim == 3:
            return torch.logsumexp(out.log_softmax(-1), dim=1) - math.log(out.shape[1])
        return out.log_softmax(-1)

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        loss = float(self.loss(out.float(), y))
        logp = self.combine(out)
        result = {
            "loss": loss,
            "accuracy": float((logp.argmax(-1) == y).float().mean()),
            "log_loss": float(F.nll_loss(logp, y)),
        }
        if self.d_out == 2:
            labels = y.numpy()
            if len(np.unique(labels)) == 2:
                result["roc_auc"] = float(skm.roc_auc_score(labels, logp[:, 1].exp().numpy()))
        return result

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        from mlplab.predictions import class_values

        return class_values(self.coder.classes)[out.argmax(-1).numpy()]


class Regression(Task):
    """MSE on the standardised targets; RMSE, MAE and R² in the targets' own units.

    One target: `out (batch, 1)` or `(batch, k, 1)`, `y (batch,)` standardised values.
    `d` targets (`data.target = ["a", "b"]`): `out (batch, d)` / `(batch, k, d)`, `y (batch, d)`,
    each column standardised on its own; the loss is the MSE over all outputs, `rmse` the mean
    of the per-target RMSEs, `mae` the mean absolute error over all outputs, `r2` the mean of
    the per-target R² (scikit-learn's `uniform_average`). An ensemble predicts the mean of its
    members. The default monitor, validation RMSE in the target's units, orders epochs
    exactly like the MSE of a single standardised target (a fixed scale).
    """

    monitor = "rmse"

    def __init__(self, coder: TargetCoder) -> None:
        self.d_out = coder.n_targets
        self.coder = coder
        self.higher_is_better = {"rmse": False, "mae": False, "r2": True, "loss": False}

    def _flat(self, out: Tensor) -> Tensor:
        return out.squeeze(-1) if self.d_out == 1 else out

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        out, y, w = _members(out, y, w)
        if w is None:
            return F.mse_loss(self._flat(out), y)
        sq = (self._flat(out) - y) ** 2
        return _weighted_mean(sq if sq.ndim == 1 else sq.mean(-1), w)

    def combine(self, out: Tensor) -> Tensor:
        out = out if out.dtype == torch.float64 else out.float()
        return out.mean(dim=1) if out.ndim == 3 else out

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        loss = float(self.loss(out.float(), y))
        out = self._flat(self.combine(out))
        pred = self.coder.decode_values(out.double().numpy())
        true = self.coder.decode_values(y.double().numpy())
        if self.d_out == 1:
            rmse = float(np.sqrt(np.mean((pred - true) ** 2)))
        else:
            rmse = float(np.mean(np.sqrt(np.mean((pred - true) ** 2, axis=0))))
        return {
            "loss": loss,
            "rmse": rmse,
            "mae": float(np.mean(np.abs(pred - true))),
            "r2": float(skm.r2_score(true, pred)),
        }

    def decode(self, out: Tensor, *, raw: bool = False) -> np.ndarray:
        from mlplab.predictions import target_units

        return target_units(self.coder, self._flat(out).numpy(), raw=raw)

    def output_columns(self) -> list[str]:
        names = self.coder.columns
        return ["prediction"] if len(names) <= 1 else [f"prediction_{c}" for c in names]


@register_task("classification")
class ClassificationKind(TaskKind):
    """Tables (and bundled images) with a class label: the tabular builder, `Classification`."""

    @classmethod
    def make_task(cls, target: TargetCoder, *, options=None, label_smoothing: float = 0.0) -> Task:
        return Classification(target.n_classes, label_smoothing=label_smoothing, coder=target)

    @classmethod
    def example_task(cls, spec, *, n_classes: int = 2) -> Task:
        return Classification(n_classes, label_smoothing=spec.label_smoothing)


def refuse_label_smoothing(label_smoothing: float) -> None:
    """Task kinds other than classification have no labels to smooth."""
    if label_smoothing:
        raise SpecError("task.label_smoothing applies to classification only")


@register_task("regression")
class RegressionKind(TaskKind):
    """Tables with one or several numeric targets: the tabular builder, `Regression`."""

    @classmethod
    def make_task(cls, target: TargetCoder, *, options=None, label_smoothing: float = 0.0) -> Task:
        refuse_label_smoothing(label_smoothing)
        return Regression(target)

    @classmethod
    def example_task(cls, spec, *, n_classes: int = 2) -> Task:
        return cls.make_task(TargetCoder("regression"), label_smoothing=spec.label_smoothing)


def make_task(kind: str, coder: TargetCoder, *, label_smoothing: float = 0.0,
              options=None) -> Task:
    """The `Task` of the registered kind `kind` (`mlplab.domains.TASKS`) for a fitted coder."""
    return task_kind(kind).make_task(coder, options=options, label_smoothing=label_smoothing)


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
