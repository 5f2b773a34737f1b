"""FLOPs outside matmuls: elementwise and reduction work, counted per aten op.

`torch.utils.flop_counter` counts matmul-like ops only, so a KAN's basis evaluation, an RBF's
Gaussians or an activation would be free. `OtherFlopCounter` is a `TorchDispatchMode` that adds
the rest with one convention, as in "KAN or MLP: a fairer comparison" (one FLOP per elementary
operation, whatever its kind):

- pointwise ops (add, mul, exp, cos, gelu, silu, comparisons, ...): 1 per output element;
- reductions (sum, mean, amax, argmax, ...): 1 per input element;
- `layer_norm`: 5 per element (mean, centre, square, sum, scale), +1 each for the affine weight
  and bias; batch norm at eval: 2 per element (centre, scale) +1 each for weight and bias;
- softmax / log-softmax: 5 per element (max, subtract, exp, sum, divide or log);
- `index_add` / `scatter_add`: 1 per added element;
- free: views, copies, concatenation, indexing/gathering, sorting, top-k, random numbers, and the
  bias add fused into `addmm` (a linear layer costs `2 * d_in * d_out`, as in that paper).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

COPIES = {aten.clone, aten.copy, aten.copy_, aten._to_copy, aten.lift_fresh_copy, aten.fill,
          aten.fill_, aten.zero_, aten.zeros_like, aten.ones_like, aten.full_like,
          aten.empty_like}
SOFTMAX = {aten._softmax, aten._log_softmax}
ADDS_INTO = {aten.index_add, aten.index_add_, aten.scatter_add, aten.scatter_add_}
BATCH_NORM = {aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit,
              aten.native_batch_norm}
PER_ELEMENT = {"softmax": 5, "layer_norm": 5, "batch_norm_eval": 2, "batch_norm_train": 5}


def _numel(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, list | tuple) and value and isinstance(value[0], torch.Tensor):
        return value[0].numel()
    return 0


def _present(*values: Any) -> int:
    return sum(v is not None for v in values)


def other_flops(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """The non-matmul FLOPs of one aten call under the convention above."""
    packet = func._overloadpacket
    if packet in COPIES:
        return 0
    if torch.Tag.pointwise in func.tags:
        return _numel(out)
    if torch.Tag.reduction in func.tags:
        return _numel(args[0])
    if packet in SOFTMAX:
        return PER_ELEMENT["softmax"] * _numel(args[0])
    if packet is aten.native_layer_norm:
        return (PER_ELEMENT["layer_norm"] + _present(*args[2:4])) * _numel(args[0])
    if packet in BATCH_NORM:
        eval_mode = packet is aten._native_batch_norm_legit_no_training or (
            len(args) > 5 and args[5] is False)  # (input, w, b, mean, var, training, ...)
        base = PER_ELEMENT["batch_norm_eval" if eval_mode else "batch_norm_train"]
        return (base + _present(*args[1:3])) * _numel(args[0])
    if packet in ADDS_INTO:
        source = args[3] if len(args) > 3 else kwargs.get("source", kwargs.get("src"))
        return _numel(source)
    return 0


class OtherFlopCounter(TorchDispatchMode):
    """Counts `other_flops` of every aten op run inside it into `total`."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.total += other_flops(func, args, kwargs, out)
        return out
