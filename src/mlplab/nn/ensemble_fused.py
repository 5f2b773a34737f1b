"""The TabM backbone's layers as one fused autograd step each: BatchEnsemble linear, ReLU,
dropout.

One layer is `out = dropout(relu(((h * r) W^T) * s + b))` with `h (batch, k | 1, d_in)`,
`W (d_out, d_in)` shared, `r (k, d_in)`, `s (k, d_out)`, `b (k, d_out)` per member and
`out (batch, k, d_out)` — the same math as `BatchEnsembleLinear` + `nn.ReLU` + dropout, in
fewer passes over memory (at k=32 and width 128 the elementwise passes, not the matmuls,
are most of the step):

- the member axis stays in place, so the shared weight is one GEMM of
  `(batch*k, d_in) x (d_in, d_out)`, forward and backward;
- the inverted-dropout scale `c = 1 / (1 - p)` is folded into `s` and `b` (`relu(c a) =
  c relu(a)` for `c > 0`), and the kept mask (`dropout.keep_bits`, integer bits) is one
  in-place bitwise and after the ReLU, so no float or bool mask is built or kept;
- the backward is written out: the ReLU/dropout gradient is one `threshold_backward` on the
  saved output (a dropped or negative unit has output 0, a kept positive one > 0), `s`, `b`
  and `r` get batch sums, the weight gradient is one GEMM;
- under CPU bf16 autocast the whole layer runs in bfloat16 (GEMMs and elementwise passes,
  half the bytes); the parameters stay fp32 and get fp32 gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from mlplab.nn.dropout import apply_keep_bits_

BF16 = torch.bfloat16


def compute_dtype(x: Tensor) -> torch.dtype:
    """bfloat16 under CPU bf16 autocast, else the input's dtype."""
    if (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == BF16
    ):
        return BF16
    return x.dtype


class _BatchEnsembleReLUDropout(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,  # noqa: ANN001
        h: Tensor,
        weight: Tensor,
        r: Tensor,
        s: Tensor,
        bias: Tensor,
        keep: Tensor | None,
        scale: float,
        dtype: torch.dtype,
    ) -> Tensor:
        with torch.autocast("cpu", enabled=False):
            hc, rc, wc = h.to(dtype), r.to(dtype), weight.to(dtype)
            sc = (s * scale if scale != 1.0 else s).to(dtype)
            bc = (bias * scale if scale != 1.0 else bias).to(dtype)
            u = hc * rc  # (batch, k, d_in)
            z = F.linear(u, wc)  # one GEMM over (batch*k, d_in)
            out = torch.addcmul(bc, z, sc).relu_()
            if keep is not None:
                apply_keep_bits_(out, keep)
        ctx.save_for_backward(hc, rc, wc, sc, u, z, out)
        ctx.scale = scale
        ctx.broadcast_h = h.shape[-2] == 1 and out.shape[-2] != 1
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        hc, rc, wc, sc, u, z, out = ctx.saved_tensors
        need_h, need_w, need_r, need_s, need_b = ctx.needs_input_grad[:5]
        g = torch.ops.aten.threshold_backward(g.to(out.dtype), out, 0)  # d out / d (c a)
        c = ctx.scale
        gb = g.sum(0).float().mul_(c) if need_b else None
        gs = torch.linalg.vecdot(g, z, dim=0).float().mul_(c) if need_s else None
        gz = g * sc
        # (u^T gz)^T: on the measured CPU faster than gz^T u (bf16 and fp32, with or without a
        # contiguous gz^T); the (d_out, d_in) gradient is a transposed view
        gw = (u.view(-1, u.shape[-1]).t() @ gz.view(-1, gz.shape[-1])).t() if need_w else None
        gh = gr = None
        if need_h or need_r:
            gu = gz @ wc  # (batch, k, d_in)
            if need_r:
                gr = torch.linalg.vecdot(gu, hc, dim=0)
            if need_h:
                gh = gu * rc
                if ctx.broadcast_h:
                    gh = gh.sum(-2, keepdim=True)
        return gh, gw, gr, gs, gb, None, None, None


def batchensemble_relu_dropout(
    h: Tensor,
    weight: Tensor,
    r: Tensor,
    s: Tensor,
    bias: Tensor,
    keep: Tensor | None = None,
    p: float = 0.0,
) -> Tensor:
    """`dropout(relu(((h * r) W^T) * s + b))` with a given kept mask, in one fused step.

    Shapes: `h (batch, k, d_in)` or `(batch, 1, d_in)` (one input shared by the k members),
    `weight (d_out, d_in)`, `r (k, d_in)`, `s, bias (k, d_out)`, `keep (batch, k, d_out)` from
    `dropout.keep_bits` for the compute dtype (all ones: kept) or None (no dropout)
    -> `(batch, k, d_out)`. Kept values are scaled by
    `1 / (1 - p)`. Under CPU bf16 autocast the result is bfloat16.
    """
    scale = 1.0 / (1.0 - p) if keep is not None else 1.0
    return _BatchEnsembleReLUDropout.apply(h, weight, r, s, bias, keep, scale, compute_dtype(h))


SMALL_OUT = 8  # up to this many outputs the head's input gradients are o elementwise passes


class _EnsembleHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, dtype: torch.dtype) -> Tensor:  # noqa: ANN001
        with torch.autocast("cpu", enabled=False):
            xc, wc = x.to(dtype), weight.to(dtype)
            # members as the batch of a bmm over the strided (k, batch, i) view: no copy
            out = torch.baddbmm(bias.to(dtype).unsqueeze(1), xc.transpose(0, 1), wc)
        ctx.save_for_backward(xc, wc)
        return out.transpose(0, 1)  # (batch, k, o)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        xc, wc = ctx.saved_tensors
        g = g.to(xc.dtype)  # (batch, k, o)
        n_out = g.shape[-1]
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if n_out <= SMALL_OUT:  # sum_o g[..., o] * W[k, :, o]: contiguous (batch, k, i)
                gx = g[..., :1] * wc[:, :, 0]
                for o in range(1, n_out):
                    gx.addcmul_(g[..., o : o + 1], wc[:, :, o])
            else:
                gx = torch.bmm(g.transpose(0, 1), wc.transpose(1, 2)).transpose(0, 1)
        if ctx.needs_input_grad[1]:
            if n_out <= SMALL_OUT:  # W[k, i, o] = sum_b x[b, k, i] g[b, k, o]
                gw = torch.stack(
                    [torch.linalg.vecdot(xc, g[..., o : o + 1], dim=0) for o in range(n_out)],
                    dim=-1,
                )
            else:
                gw = torch.bmm(xc.permute(1, 2, 0), g.transpose(0, 1))
        gb = g.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def ensemble_head(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """k linear heads, one per member: `x (batch, k, i)`, `weight (k, i, o)`, `bias (k, o)`
    -> `(batch, k, o)`, as `einsum("bki,kio->bko", x, weight) + bias` without the transposed
    copies autograd's einsum makes. Under CPU bf16 autocast the result is bfloat16."""
    return _EnsembleHead.apply(x, weight, bias, compute_dtype(x))
