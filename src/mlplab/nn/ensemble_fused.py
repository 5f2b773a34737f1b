"""The TabM backbone as one fused autograd step: plain blocks of BatchEnsemble linear, ReLU
and dropout, and the ensemble head.

Layer l is `h_l = dropout(relu(((h_{l-1} * r_l) W_l^T) * s_l + b_l))` with `W_l (d_out, d_in)`
shared, `r_l (k, d_in)`, `s_l, b_l (k, d_out)` per member and `h_l (batch, k, d_out)`; `h_0 (batch,
d_in)` is shared by the k members. The same math as `BatchEnsembleLinear` + `nn.ReLU` + dropout,
in fewer passes over memory (at k=32 and width 128 the elementwise passes, not the matmuls, are
most of the step):

- the member axis stays in place, so each shared weight is one GEMM of `(batch*k, d_in) x
  (d_in, d_out)`, forward and backward;
- the inverted-dropout scale `c = 1 / (1 - p)` is folded into `s` and `b` (`relu(c a) =
  c relu(a)` for `c > 0`), and the kept mask (`dropout.keep_bits`, integer bits) is one
  in-place bitwise and after the ReLU, so no float or bool mask is built or kept;
- the backward is written out for the whole stack: the ReLU/dropout gradient is one
  in-place `threshold_backward` on the saved output (a dropped or negative unit has output 0,
  a kept positive one > 0); the next layer's `r` is folded into the per-member factors of the
  `s`, `b` gradients and into `s` (`threshold(g * r) = threshold(g) * r` for a per-(k, d)
  `r`), so the input gradient `g_u * r` is never formed; buffers are reused in place;
- under CPU bf16 autocast the whole stack runs in bfloat16 (GEMMs and elementwise passes, half
  the bytes); the parameters stay fp32 and get fp32 gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from mlplab.nn.dropout import apply_keep_bits_

BF16 = torch.bfloat16
_thr_into = torch.ops.aten.threshold_backward.grad_input


def compute_dtype(x: Tensor) -> torch.dtype:
    """bfloat16 under CPU bf16 autocast, else the input's dtype."""
    if (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == BF16
    ):
        return BF16
    return x.dtype


class _TabMStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, keeps: tuple, scales: tuple, dtype: torch.dtype, *params: Tensor):  # noqa: ANN001
        n = len(params) // 4
        saved: list[Tensor] = []
        with torch.autocast("cpu", enabled=False):
            h = x.to(dtype).unsqueeze(-2)  # (batch, 1, d_in): shared by the members
            saved.append(h)
            for i in range(n):
                weight, r, s, bias = params[4 * i : 4 * i + 4]
                c = scales[i]
                rc, wc = r.to(dtype), weight.to(dtype)
                sc = (s * c if c != 1.0 else s).to(dtype)
                bc = (bias * c if c != 1.0 else bias).to(dtype)
                u = h * rc  # (batch, k, d_in)
                z = F.linear(u, wc)  # one GEMM over (batch*k, d_in)
                h = torch.addcmul(bc, z, sc).relu_()
                if keeps[i] is not None:
                    apply_keep_bits_(h, keeps[i])
                saved += [rc, wc, sc, u, z, h]
        ctx.save_for_backward(*saved)
        ctx.scales = scales
        return h

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        saved = ctx.saved_tensors
        h0, layers = saved[0], [saved[1 + 6 * i : 7 + 6 * i] for i in range((len(saved) - 1) // 6)]
        n = len(layers)
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * (4 * n)
        gx = None
        out = layers[-1][5]
        m = torch.ops.aten.threshold_backward(g.to(out.dtype), out, 0)  # d loss / d (c a_n)
        rho: Tensor | None = None  # the next layer's r: true d loss / d (c a_i) = m * rho
        for i in reversed(range(n)):
            rc, wc, sc, u, z, out = layers[i]
            c = ctx.scales[i]
            gb = m.sum(0).float()
            gs = torch.linalg.vecdot(m, z, dim=0).float()
            if rho is not None:
                rho_f = rho.float()
                gb.mul_(rho_f)
                gs.mul_(rho_f)
                m.mul_(sc * rho)  # d loss / d z
            else:
                m.mul_(sc)
            grads[4 * i + 2], grads[4 * i + 3] = gs.mul_(c), gb.mul_(c)
            # (u^T gz)^T: on the measured CPU faster than gz^T u (bf16 and fp32, with or without
            # a contiguous gz^T); the (d_out, d_in) gradient is a transposed view
            grads[4 * i] = (u.view(-1, u.shape[-1]).t() @ m.view(-1, m.shape[-1])).t()
            need_input = i > 0 or needs[0]
            if not (need_input or needs[4 * i + 5]):  # neither h_{i-1} nor r_i
                continue
            gu = m @ wc  # (batch, k, d_in): d loss / d u
            h = layers[i - 1][5] if i > 0 else h0
            grads[4 * i + 1] = torch.linalg.vecdot(gu, h, dim=0)
            if i > 0:
                m, rho = _thr_into(gu, h, 0, grad_input=gu), rc
            elif needs[0]:
                gx = (gu * rc).sum(-2)
        return (gx, None, None, None, *grads)


def tabm_stack(
    x: Tensor,
    layers: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]],
    keeps: Sequence[Tensor | None],
    ps: Sequence[float],
) -> Tensor:
    """The TabM MLP, every layer `dropout(relu(((h * r) W^T) * s + b))`, as one fused step.

    Shapes: `x (batch, d_in)` (shared by the k members); per layer `(weight (d_out, d_in),
    r (k, d_in), s (k, d_out), bias (k, d_out))`, a kept mask `(batch, k, d_out)` from
    `dropout.keep_bits` for the compute dtype (all ones: kept) or None (no dropout), and the
    dropout probability `p` (kept values are scaled by `1 / (1 - p)`) -> `(batch, k, d_out)`
    of the last layer. Under CPU bf16 autocast the result is bfloat16.
    """
    pairs = zip(keeps, ps, strict=True)
    scales = tuple(1.0 / (1.0 - p) if keep is not None else 1.0 for keep, p in pairs)
    params = [t for layer in layers for t in layer]
    return _TabMStack.apply(x, tuple(keeps), scales, compute_dtype(x), *params)


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
        small = n_out <= SMALL_OUT
        if small:  # per-output slices made contiguous (small): strided broadcasts are ~8x slower
            g_o, w_o = g.permute(2, 0, 1).contiguous(), wc.permute(2, 0, 1).contiguous()
        if ctx.needs_input_grad[0]:
            if small:  # sum_o g[..., o] * W[k, :, o]: contiguous (batch, k, i)
                gx = g_o[0].unsqueeze(-1) * w_o[0]
                for o in range(1, n_out):
                    gx.addcmul_(g_o[o].unsqueeze(-1), w_o[o])
            else:
                gx = torch.bmm(g.transpose(0, 1), wc.transpose(1, 2)).transpose(0, 1)
        if ctx.needs_input_grad[1]:
            if small:  # W[k, i, o] = sum_b x[b, k, i] g[b, k, o]
                gw = torch.stack(
                    [torch.linalg.vecdot(xc, g_o[o].unsqueeze(-1), dim=0) for o in range(n_out)],
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
