"""The forecasting task: loss and validation metrics on the standardised scale.

`out (batch, h, C)` forecasts and `y (batch, h, C)` truths, both standardised per series and
channel with training statistics (so every series weighs alike). The original-scale metrics
(MAE, MSE, MASE, sMAPE) are computed after training by `mlplab.forecast.evaluate`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from mlplab.errors import SpecError
from mlplab.tasks import Task

LOSSES = ("mse", "mae")


class Forecast(Task):
    """MSE (the TSMixer paper) or MAE loss; metrics `loss`, `mse`, `mae` (standardised)."""

    def __init__(self, h: int, channels: int, *, loss: str = "mse") -> None:
        if loss not in LOSSES:
            raise SpecError(f"loss: expected one of {LOSSES}, got {loss!r}")
        self.d_out = h * channels
        self.loss_name = loss
        self.monitor = loss
        self.higher_is_better = {"loss": False, "mse": False, "mae": False}

    def loss(self, out: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        if out.shape != y.shape:
            raise ValueError(f"forecasts {tuple(out.shape)} and targets {tuple(y.shape)} differ")
        if self.loss_name == "mae":
            return F.l1_loss(out, y)
        return F.mse_loss(out, y)

    def combine(self, out: Tensor) -> Tensor:
        return out if out.dtype == torch.float64 else out.float()

    def metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        out = out.float()
        return {"loss": float(self.loss(out, y)), "mse": float(F.mse_loss(out, y)),
                "mae": float(F.l1_loss(out, y))}
