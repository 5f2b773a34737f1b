"""Low-overhead inference: an eval-mode forward under `inference_mode`, in batches.

`predict(model, x)` is what a trained model (e.g. `mlplab.load_run(dir).model`) should be
called through: no autograd bookkeeping, dropout off, no copy of the model; `fp32_matmul="fast"`
opts into the oneDNN route when it is exact on this CPU (see `mlplab.train.speed`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mlplab.train import speed


def predict(model: nn.Module, x: Tensor, x_cat: Tensor | None = None, *,
            batch_size: int | None = None, precision: str = "fp32",
            fp32_matmul: str = "default") -> Tensor:
    """Model outputs for `x (n, ...)` (+ `x_cat (n, n_cat)`): `-> (n, d_out)` raw outputs.

    The result equals `model.eval()(x, x_cat)`; `batch_size` bounds memory for large `n`.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with torch.inference_mode(), speed.fp32_matmul(fp32_matmul), speed.autocast(precision):
            if batch_size is None or len(x) <= batch_size:
                return model(x, x_cat) if x_cat is not None else model(x)
            outs = [model(x[i: i + batch_size],
                          x_cat[i: i + batch_size] if x_cat is not None else None)
                    for i in range(0, len(x), batch_size)]
            return torch.cat(outs)
    finally:
        if was_training:
            model.train()
