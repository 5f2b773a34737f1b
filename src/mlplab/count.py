"""Parameter and FLOP counts measured on the model itself (never from hand-kept formulas)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mlplab.flops import OtherFlopCounter


def _forward_flops(model: nn.Module, inputs: tuple[Any, ...]) -> tuple[int, int]:
    """(matmul FLOPs, other FLOPs) of one forward pass on `inputs`."""
    with torch.no_grad(), FlopCounterMode(display=False) as matmul, OtherFlopCounter() as other:
        model(*inputs)
    return matmul.get_total_flops(), other.total


def count(model: nn.Module, example_batch: Any) -> dict[str, int]:
    """`{params, trainable_params, frozen_params, flops_per_sample, matmul_flops_per_sample}`.

    `example_batch` is a tensor or a tuple of positional inputs; its first dimension is the
    batch. `params` includes frozen weights (parameters without gradient and weight buffers such
    as a frozen lift's), which `frozen_params` counts separately. FLOPs are forward-pass FLOPs
    per sample: `matmul_flops_per_sample` as `torch.utils.flop_counter` counts them (a
    multiply-add is 2 FLOPs), `flops_per_sample` that plus the elementwise and reduction work
    (`mlplab.flops`: one FLOP per elementary operation). Per sample means the cost of one more
    sample: the batch and its first half are both counted and the difference divided, so work
    that does not grow with the batch (e.g. scaling a KAN's spline weights) is not charged.
    """
    inputs = example_batch if isinstance(example_batch, tuple) else (example_batch,)
    batch = inputs[0].shape[0]
    was_training = model.training
    model.eval()
    matmul, other = _forward_flops(model, inputs)
    if batch >= 2:
        half = tuple(t[: batch // 2] if isinstance(t, torch.Tensor) else t for t in inputs)
        matmul_half, other_half = _forward_flops(model, half)
        matmul, other, batch = matmul - matmul_half, other - other_half, batch - batch // 2
    model.train(was_training)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for name, b in model.named_buffers() if name.endswith("weight"))
    return {
        "params": trainable + frozen,
        "trainable_params": trainable,
        "frozen_params": frozen,
        "flops_per_sample": round((matmul + other) / max(batch, 1)),
        "matmul_flops_per_sample": round(matmul / max(batch, 1)),
    }
