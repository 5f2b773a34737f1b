"""Parameter and FLOP counts measured on the model itself (never from hand-kept formulas)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count(model: nn.Module, example_batch: Any) -> dict[str, int]:
    """`{params, trainable_params, frozen_params, flops_per_sample}` for one forward pass.

    `example_batch` is a tensor or a tuple of positional inputs; its first dimension is the
    batch. `params` includes frozen weights (parameters without gradient and weight buffers such
    as a frozen lift's), which `frozen_params` counts separately. FLOPs are forward-pass FLOPs per sample
    as `torch.utils.flop_counter` counts them (a multiply-add is 2 FLOPs).
    """
    inputs = example_batch if isinstance(example_batch, tuple) else (example_batch,)
    batch = inputs[0].shape[0]
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    model.train(was_training)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for name, b in model.named_buffers() if name.endswith("weight"))
    return {
        "params": trainable + frozen,
        "trainable_params": trainable,
        "frozen_params": frozen,
        "flops_per_sample": round(counter.get_total_flops() / max(batch, 1)),
    }
