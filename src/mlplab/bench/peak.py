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
                  seconds: float = 0.6, repeats: int = 3) -> tuple[float, float]:
    """Best-of-`repeats` `(GFLOP/s of wall time, GFLOP per CPU-second)` of `(n, n) @ (n, n)`."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    best_wall = best_cpu = 0.0
    with float32_matmul_precision(precision):
        a @ b
        for _ in range(repeats):
            count, start, cpu = 0, time.perf_counter(), time.process_time()
            while True:
                a @ b
                count += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / repeats:
                    break
            flops = 2 * n**3 * count / 1e9
            best_wall = max(best_wall, flops / elapsed)
            best_cpu = max(best_cpu, flops / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def measure_peaks(*, n: int = 2048, seconds: float = 0.6) -> list[dict]:
    """One row per route: GFLOP/s (wall and per CPU-second) and error vs float64."""
    rows = []
    for label, dtype, precision, exact in ROUTES:
        wall, cpu = matmul_gflops(dtype, precision, n=n, seconds=seconds)
        rows.append({
            "route": label, "dtype": str(dtype).removeprefix("torch."), "precision": precision,
            "gflops": wall, "gflops_per_cpu_s": cpu,
            "rel_error": matmul_rel_error(precision) if dtype == torch.float32 else None,
            "fp32_accurate": exact})
    return rows
