"""The machine's matmul limit: GFLOP/s of a large square matmul on each route PyTorch offers."""

from __future__ import annotations

import time

import torch

from mlplab.train.speed import float32_matmul_precision, matmul_rel_error

# (label, dtype, float32 matmul precision, fp32-accurate?)
ROUTES = [
    ("fp32 (default, MKL)", torch.float32, "highest", True),
    ("fp32 (oneDNN, precision 'high')", torch.float32, "high", True),
    ("fp32 in, bf16 math (precision 'medium')", torch.float32, "medium", False),
    ("bf16", torch.bfloat16, "highest", False),
]


def matmul_gflops(dtype: torch.dtype, precision: str, *, n: int = 2048,
                  seconds: float = 0.6, repeats: int = 3) -> float:
    """Best-of-`repeats` GFLOP/s of `(n, n) @ (n, n)` in `dtype` (2n^3 FLOPs each)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    best = 0.0
    with float32_matmul_precision(precision):
        a @ b
        for _ in range(repeats):
            count, start = 0, time.perf_counter()
            while True:
                a @ b
                count += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / repeats:
                    break
            best = max(best, 2 * n**3 * count / elapsed / 1e9)
    return best


def measure_peaks(*, n: int = 2048, seconds: float = 0.6) -> list[dict]:
    """One row per route: GFLOP/s and relative error vs float64 (fp32 routes)."""
    rows = []
    for label, dtype, precision, exact in ROUTES:
        rows.append({
            "route": label, "dtype": str(dtype).removeprefix("torch."), "precision": precision,
            "gflops": matmul_gflops(dtype, precision, n=n, seconds=seconds),
            "rel_error": matmul_rel_error(precision) if dtype == torch.float32 else None,
            "fp32_accurate": exact})
    return rows
