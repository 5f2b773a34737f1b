"""bf16 training with fp32 master weights: the model computes in bf16, the optimizer updates fp32.

Under `train.precision = "bf16"` (or "auto" where it resolves to bf16) the trainer trains a model
`supports` accepts this way instead of under autocast:

- the masters are the fp32 tensors the model's trainable parameters held; while training
  (`engage`) each parameter holds a bf16 copy, so the forward and backward run in bf16 end to
  end: no per-forward weight casts, no fp32 LayerNorm outputs, bf16 gradients (LayerNorm and
  GELU's bf16 CPU kernels keep their statistics and arithmetic in fp32 internally);
- the optimizer (fused AdamW or foreach SGD) is built over the masters; per step
  `gather_grads` copies the bf16 gradients into persistent fp32 buffers on the masters (one
  pass), the clip takes their norm in fp32, the update runs on the masters (fp32 moments) and
  `scatter_weights` writes the rounded bf16 weights back (one pass);
- outside the training steps (`release`: the trainer engages for an epoch's steps only) the
  parameters hold the fp32 masters again, so validation, hooks, checkpoints, the best weights
  and the model a run returns see an fp32 model, and a resumed run is bitwise equal to an
  uninterrupted one (the bf16 weights are a pure function of the masters).

The optimizer's state dict has the same layout as for fp32 training (one entry per trainable
parameter, in order), so a checkpoint does not depend on the precision it was trained at.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

BF16 = torch.bfloat16
# modules whose parameters may be bf16: their forward is one op with a bf16 kernel that keeps
# fp32 accumulation (matmul, LayerNorm) or a lookup
BF16_MODULES = (nn.Linear, nn.LayerNorm, nn.Embedding)


def unsupported(model: nn.Module, optimizer: str) -> str | None:
    """Why `model` (trained with `optimizer`) cannot train with bf16 parameters, or None.

    Supported: AdamW/SGD, and models whose parameters all belong to `BF16_MODULES` and are
    trainable, and that have no floating-point buffers (a running statistic, a grid or a
    random projection would lose precision in bf16) and no module that computes in fp32 (a
    `fp32_reason` attribute: SIREN layers) — the plain MLP families; others keep bf16
    autocast.
    """
    if optimizer == "lbfgs":
        return "L-BFGS re-evaluates the loss inside its step"
    for name, module in model.named_modules():
        reason = getattr(module, "fp32_reason", None)
        if reason:
            return f"{name or 'the model'} ({type(module).__name__}) computes in fp32: {reason}"
        if any(b.is_floating_point() for b in module.buffers(recurse=False)):
            return f"{name or 'the model'} has floating-point buffers"
        own = list(module.parameters(recurse=False))
        if any(not p.requires_grad for p in own):  # it would stay fp32 among bf16 tensors
            return f"{name or 'the model'} has frozen parameters"
        if own and not isinstance(module, BF16_MODULES):
            return f"{name or 'the model'} ({type(module).__name__}) has parameters"
    return None


class MasterWeights:
    """fp32 masters of `params` (the model's trainable parameters, fp32 when constructed)."""

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        if any(p.dtype != torch.float32 for p in params):
            raise ValueError("master weights need fp32 parameters to start from")
        self.params = list(params)
        self.masters: list[Tensor] = [p.data for p in self.params]  # the fp32 storage itself
        self.grads: list[Tensor] | None = None  # fp32 gradient buffers (kept once made)
        self.low: list[Tensor] | None = None  # the bf16 weights' storage (kept once made)
        self.engaged = False

    @torch.no_grad()
    def engage(self) -> None:
        """Parameters -> bf16 copies of the masters (before training steps)."""
        if self.engaged:
            return
        if self.low is None:
            self.low = [m.to(BF16) for m in self.masters]
        else:  # the same buffers every epoch: no allocation, no fresh pages to fault in
            torch._foreach_copy_(self.low, self.masters)
        for p, low in zip(self.params, self.low, strict=True):
            p.grad = None
            p.data = low
        if self.grads is None:
            self.grads = [torch.empty_like(m) for m in self.masters]
        self.engaged = True

    @torch.no_grad()
    def release(self) -> None:
        """Parameters -> the fp32 masters again (after training; before saving or loading)."""
        if not self.engaged:
            return
        for p, m in zip(self.params, self.masters, strict=True):
            p.grad = None
            p.data = m
        self.engaged = False

    @torch.no_grad()
    def gather_grads(self) -> list[Tensor]:
        """The parameters' bf16 gradients copied into the masters' fp32 `.grad` buffers (one
        pass); returns the masters that have one (what the clip and the optimizer step see)."""
        assert self.engaged and self.grads is not None, "engage() before stepping"
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        bufs = [self.grads[i] for i in have]
        torch._foreach_copy_(bufs, [self.params[i].grad for i in have])  # bf16 -> fp32
        for i, m in enumerate(self.masters):
            m.grad = self.grads[i] if self.params[i].grad is not None else None
        return [self.masters[i] for i in have]

    @torch.no_grad()
    def scatter_weights(self) -> None:
        """The bf16 parameters from the updated fp32 masters (one pass, rounded to nearest)."""
        torch._foreach_copy_(self.params, self.masters)
