"""The linear map under CPU bf16 autocast, with a faster weight-gradient layout.

Autograd's backward of `x @ W.T` computes the weight gradient as `g.T @ x` on a transposed
view of `g`; oneDNN's bf16 kernel for that layout runs at about half the speed of the forward
matmul on AMX (benchmarks/bf16_paths.py: 505 vs 900–1,070 GFLOP per CPU-second at width 1024,
batch 1024). Making `g.T` contiguous first costs one bf16 transpose and runs the same matmul
at 564–911. Everything else is what autocast does: inputs, weight and bias cast to bf16, the
gradients handed back in the parameters' dtype (fp32 master weights).

The same backward serves a bf16 model (bf16 parameters, fp32 masters in the optimizer:
`mlplab.train.master_weights`) on a CPU with AMX tiles only: on an AVX-512-bf16 CPU without AMX
(an AMD EPYC host, 2026-12-02) the transposed-operand kernel is as fast as the others and the
extra transpose cost 0–25% of that matmul (benchmarks/bf16_paths.py).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.nn import functional as F

BF16 = torch.bfloat16
ENABLED = True  # False: autocast's own linear (benchmarks/bf16_paths.py compares the two)


@functools.cache
def cpu_has_amx() -> bool:
    """True on an x86 CPU with AMX bf16 tiles, as `/proc/cpuinfo` lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


class _Bf16Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # noqa: ANN001
        with torch.autocast("cpu", enabled=False):
            xb, wb = x.to(BF16), weight.to(BF16)
            ctx.save_for_backward(xb, wb)
            ctx.has_bias = bias is not None
            return F.linear(xb, wb, bias.to(BF16) if bias is not None else None)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        xb, wb = ctx.saved_tensors
        g = g.to(BF16)
        g2, x2 = g.reshape(-1, g.shape[-1]), xb.reshape(-1, xb.shape[-1])
        gx = g @ wb if ctx.needs_input_grad[0] else None
        gw = g2.t().contiguous() @ x2 if ctx.needs_input_grad[1] else None
        gb = g2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb  # autograd casts each to its input's dtype


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`F.linear(x, weight, bias)`: `(..., d_in) -> (..., d_out)`; under CPU bf16 autocast
    with gradients, the custom backward above (same numbers, faster weight gradient), and for
    a bf16 weight on a CPU with AMX."""
    if ENABLED and x.device.type == "cpu" and torch.is_grad_enabled() and weight.requires_grad:
        if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == BF16:
            return _Bf16Linear.apply(x, weight, bias)
        if weight.dtype == BF16 and x.dtype == BF16 and cpu_has_amx():
            return _Bf16Linear.apply(x, weight, bias)
    return F.linear(x, weight, bias)
