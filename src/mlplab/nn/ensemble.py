"""Parameter-efficient ensembles (TabM): k members that share most of their weights.

The input is replicated to k members at the start of the backbone, every layer keeps the
member axis, and the head gives one prediction per member: `(batch, d) -> (batch, k, d_out)`.
The task trains on the mean of the k losses and predicts with the mean of the k predictions.

- `tabm`: every unit is a `BatchEnsembleLinear` (shared weight, per-member scaling of its
  input `r` and output `s`, per-member bias). As in the TabM paper, only the first unit's `r`
  starts random (random signs, or normal with numeric embeddings, one value per input
  feature); every other `r` and `s` starts at ones.
- `tabm-mini`: the units are shared; one per-member scaling `ScaleEnsemble` sits before the
  first layer.

A `tabm` backbone of plain blocks (BatchEnsemble linear, no norm, ReLU, dropout: the TabM
paper's MLP) on the CPU runs as one fused autograd step (`ensemble_fused.tabm_stack`: same
parameters, same math, fewer passes over memory, the whole stack in bf16 under bf16
autocast); its dropout is a bit mask (`BitDropout`, p exact to 1/32768, no bool tensors). The
module-by-module path runs instead on other devices and while any forward hook watches the
backbone (inspection, ablation).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.dropout import BitDropout
from mlplab.nn.ensemble_fused import compute_dtype, ensemble_head, tabm_stack
from mlplab.nn.registry import register_head, register_unit

SCALING_INITS = ("ones", "random-signs", "normal")


def init_scaling_(x: Tensor, how: str, chunks: list[int] | None = None) -> Tensor:
    """Fill a `(k, d)` scaling in place with ones, random signs or N(0, 1).

    With `chunks` (widths summing to `d`, e.g. one chunk per input feature's embedding) every
    chunk of a member's row shares one random value.
    """
    if how not in SCALING_INITS:
        raise ValueError(f"scaling init must be one of {SCALING_INITS}, not {how!r}")
    with torch.no_grad():
        if how == "ones":
            return x.fill_(1.0)
        n = len(chunks) if chunks else x.shape[-1]
        values = torch.empty(*x.shape[:-1], n)
        if how == "normal":
            values.normal_()
        else:
            values.bernoulli_(0.5).mul_(2.0).sub_(1.0)
        if chunks:
            if sum(chunks) != x.shape[-1]:
                raise ValueError(f"scaling chunks sum to {sum(chunks)}, expected {x.shape[-1]}")
            values = values.repeat_interleave(torch.tensor(chunks), dim=-1)
        return x.copy_(values)


def _uniform_(x: Tensor, fan_in: int) -> Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(x, -bound, bound)


@register_unit("batchensemble")
class BatchEnsembleLinear(nn.Module):
    """k linear maps sharing one weight: `y_i = ((x_i * r_i) W^T) * s_i + b_i`.

    Shapes: `(batch, k, d_in) -> (batch, k, d_out)`. `r (k, d_in)` and `s (k, d_out)` start at
    ones (call `init_scaling_` on `r` for the first layer); the k biases start equal.
    """

    def __init__(self, d_in: int, d_out: int, *, k: int, bias: bool = True) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.weight = nn.Parameter(_uniform_(torch.empty(d_out, d_in), d_in))
        self.r = nn.Parameter(torch.ones(k, d_in))
        self.s = nn.Parameter(torch.ones(k, d_out))
        self.bias = (
            nn.Parameter(_uniform_(torch.empty(d_out), d_in).expand(k, d_out).clone())
            if bias
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        y = nn.functional.linear(x * self.r, self.weight)
        return torch.addcmul(self.bias, y, self.s) if self.bias is not None else y * self.s

    def extra_repr(self) -> str:
        return f"d_in={self.weight.shape[1]}, d_out={self.weight.shape[0]}, k={self.k}"


class ScaleEnsemble(nn.Module):
    """Per-member elementwise scaling (tabm-mini's only non-shared layer).

    Shapes: `(batch, k, d) -> (batch, k, d)`.
    """

    def __init__(
        self, k: int, d: int, *, init: str = "random-signs", chunks: list[int] | None = None
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(init_scaling_(torch.empty(k, d), init, chunks))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight


@register_head("ensemble")
class LinearEnsembleHead(nn.Module):
    """k independent linear heads, one per member: `(batch, k, width) -> (batch, k, d_out)`."""

    def __init__(self, width: int, d_out: int, *, k: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(_uniform_(torch.empty(k, width, d_out), width))
        self.bias = nn.Parameter(_uniform_(torch.empty(k, d_out), width))

    def forward(self, x: Tensor) -> Tensor:
        return ensemble_head(x, self.weight, self.bias)

    @classmethod
    def from_spec(
        cls, spec: Any, *, width: int, d_out: int, n_tokens: int | None = None, k: int = 1
    ) -> nn.Module:
        if n_tokens is not None:
            raise SpecError("model.head: 'ensemble' needs a flat (batch, k, d) stream")
        return cls(width, d_out, k=k)


class EnsembleBackbone(nn.Module):
    """Replicate the input to k members, then run a backbone over the member axis.

    `kind="tabm"`: the backbone is built from `BatchEnsembleLinear` units and the first
    unit's `r` is re-initialised with `init`. `kind="tabm-mini"`: the backbone's units are
    shared and a `ScaleEnsemble` scales each member's input first.
    Shapes: `(batch, d_in) -> (batch, k, width)`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        k: int,
        d_in: int,
        kind: str,
        init: str = "random-signs",
        chunks: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.k = k
        self.width = backbone.width
        self.scale: nn.Module = nn.Identity()
        if kind == "tabm-mini":
            self.scale = ScaleEnsemble(k, d_in, init=init, chunks=chunks)
        elif kind == "tabm":
            first = next(
                (m for m in backbone.modules() if isinstance(m, BatchEnsembleLinear)), None
            )
            if first is None:
                raise ValueError("a 'tabm' ensemble needs a backbone of BatchEnsembleLinear units")
            width_in = first.r.shape[1]
            init_scaling_(first.r, init, chunks if width_in == d_in else None)
        else:
            raise ValueError(f"unknown ensemble kind {kind!r}; choose 'tabm' or 'tabm-mini'")
        self.backbone = backbone
        if kind == "tabm":  # the plain TabM MLP: bit-mask dropout, then the fused path
            from mlplab.nn.blocks import PlainBlock

            for block in [getattr(backbone, "lift", None), *getattr(backbone, "blocks", [])]:
                if type(block) is PlainBlock and type(block.drop) is nn.Dropout:
                    block.drop = BitDropout(block.drop.p)

    def fused_blocks(self) -> list[nn.Module] | None:
        """The plain BatchEnsemble blocks the fused path runs, in order, or None when the
        backbone is anything else (residual blocks, a norm, another activation, top-k)."""
        from mlplab.nn.blocks import PlainBlock  # blocks imports the unit registry
        from mlplab.nn.layers import NoNorm

        lift, blocks = getattr(self.backbone, "lift", None), getattr(self.backbone, "blocks", None)
        if not isinstance(blocks, nn.Sequential) or not isinstance(self.backbone.norm, nn.Identity):
            return None
        layers = [lift, *blocks]
        for b in layers:
            if not (
                type(b) is PlainBlock
                and type(b.fc) is BatchEnsembleLinear
                and b.fc.bias is not None
                and type(b.norm) in (NoNorm, nn.Identity)
                and type(b.act) is nn.ReLU
                and type(b.drop) is BitDropout
            ):
                return None
        return layers

    def _hooked(self) -> bool:
        from torch.nn.modules import module as m

        if (m._global_forward_hooks or m._global_forward_pre_hooks
                or m._global_backward_hooks or m._global_backward_pre_hooks):
            return True
        return any(x._forward_hooks or x._forward_pre_hooks or x._backward_hooks
                   or x._backward_pre_hooks for x in self.modules())

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.device.type == "cpu"  # CUDA keeps its own autocast on the module path
            and x.dim() == 2
            and isinstance(self.scale, nn.Identity)
            and not self._hooked()
        ):
            layers = self.fused_blocks()
            if layers is not None:
                return self._fused(x, layers)
        x = x.unsqueeze(-2).expand(*x.shape[:-1], self.k, x.shape[-1])
        return self.backbone(self.scale(x))

    def _fused(self, x: Tensor, layers: list[nn.Module]) -> Tensor:
        """`(batch, d_in) -> (batch, k, width)`: the whole stack as one fused step
        (`ensemble_fused.tabm_stack`); the masks are drawn layer by layer, as the module path
        draws them."""
        dtype = compute_dtype(x)
        keeps = [
            b.drop.mask((*x.shape[:-1], self.k, b.fc.weight.shape[0]), dtype, x.device)
            if b.drop.active()
            else None
            for b in layers
        ]
        params = [(b.fc.weight, b.fc.r, b.fc.s, b.fc.bias) for b in layers]
        return tabm_stack(x, params, keeps, [b.drop.p for b in layers])
