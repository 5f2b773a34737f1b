"""Fast-math settings for the one trainer: the oneDNN fp32 matmul route and bf16 autocast.

On x86 CPUs PyTorch sends fp32 matmuls to MKL by default. Allowing the "high" float32 matmul
precision sends them to oneDNN instead (which fuses the bias add); on a CPU without TF32
hardware oneDNN still computes in full fp32. Because a CPU *with* reduced-precision hardware
would round, the route (`train.fp32_matmul = "fast"`, opt-in: on the benchmark machine it was
no faster than MKL, see BENCHMARKS.md) is taken only after a one-time check per process that
its error against a float64 reference is the same as the default path's.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from mlplab.nn import bf16_linear

# Relative Frobenius error of a 256x256x256 fp32 matmul is ~3e-7; TF32/bf16 give 1e-4..1e-3.
FP32_REL_TOL = 1e-5


def matmul_rel_error(precision: str, n: int = 256, seed: int = 0) -> float:
    """Relative error of an fp32 `(n, n) @ (n, n)` matmul under `precision` vs float64."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    b = torch.randn(n, n, generator=g, dtype=torch.float64)
    with float32_matmul_precision(precision):
        got = torch.nn.functional.linear(a.float(), b.float().T).double()
    ref = a @ b
    return float((got - ref).norm() / ref.norm())


@functools.cache
def onednn_fp32_is_exact() -> bool:
    """True when the oneDNN ("high" precision) fp32 matmul keeps fp32 accuracy on this CPU."""
    if not torch.backends.mkldnn.is_available():
        return False
    return matmul_rel_error("high") <= FP32_REL_TOL


@contextlib.contextmanager
def float32_matmul_precision(precision: str) -> Iterator[None]:
    """Set `torch.set_float32_matmul_precision` for a block and restore the previous value."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def fp32_matmul(mode: str) -> contextlib.AbstractContextManager:
    """`mode="fast"`: route fp32 matmuls to oneDNN when that is exact here; `"default"`: as is."""
    if mode == "fast" and onednn_fp32_is_exact():
        return float32_matmul_precision("high")
    return contextlib.nullcontext()


def cpu_has_fast_bf16() -> bool:
    """True on an x86 CPU with AMX bf16 tiles (where a bf16 matmul runs ~7x fp32; AVX-512
    bf16 alone measured 2x on one host and 4x on another, 2026-12-02: see BENCHMARKS.md), as
    `/proc/cpuinfo` lists them."""
    return bf16_linear.cpu_has_amx()


def resolve_precision(precision: str, device: torch.device) -> str:
    """`train.precision` as the trainer runs it: "auto" is bf16 where the hardware runs it
    fast (a CUDA GPU with bf16 support, a CPU with AMX), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"


def autocast(precision: str, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    """bf16 autocast on `device_type` (matmuls in bfloat16, weights stay fp32) or nothing
    for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def clip_grad_norm(params: list[torch.Tensor], max_norm: float,
                   optimizer: torch.optim.Optimizer) -> None:
    """Scale gradients so their global L2 norm is at most `max_norm` (as `clip_grad_norm_`).

    A fused optimizer applies the factor inside its update kernel (PyTorch's `grad_scale`
    protocol, the one `GradScaler` uses: gradients are divided by it), which saves one read
    and one write of every gradient per step; others get an in-place multiply.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norm = torch.nn.utils.get_total_norm(grads)
    coef = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    if optimizer.defaults.get("fused"):
        optimizer.grad_scale = coef.reciprocal()  # type: ignore[attr-defined]
    else:
        torch._foreach_mul_(grads, coef)
