"""The machine's matmul limit: GFLOP/s of a large square matmul on each route PyTorch offers,
on the CPU and on each CUDA device present."""

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


# the same routes on a CUDA device (TF32 is the 'high' route there)
CUDA_ROUTES = [
    ("cuda fp32 (precision 'highest')", torch.float32, "highest", True),
    ("cuda fp32 in, TF32 math (precision 'high')", torch.float32, "high", False),
    ("cuda bf16", torch.bfloat16, "highest", False),
]


def matmul_gflops(dtype: torch.dtype, precision: str, *, n: int = 2048,
                  seconds: float = 0.6, repeats: int = 3,
                  device: str | torch.device = "cpu") -> tuple[float, float]:
    """Best-of-`repeats` `(GFLOP/s of wall time, GFLOP per CPU-second)` of `(n, n) @ (n, n)`
    on `device` (CUDA: synchronised after each matmul batch; per CPU-second is then moot)."""
    device = torch.device(device)
    a = torch.randn(n, n).to(device, dtype)
    b = torch.randn(n, n).to(device, dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best_wall = best_cpu = 0.0
    with float32_matmul_precision(precision):
        a @ b
        sync()
        for _ in range(repeats):
            count, start, cpu = 0, time.perf_counter(), time.process_time()
            while True:
                a @ b
                count += 1
                sync()
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / repeats:
                    break
            flops = 2 * n**3 * count / 1e9
            best_wall = max(best_wall, flops / elapsed)
            best_cpu = max(best_cpu, flops / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def measure_peaks(*, n: int = 2048, seconds: float = 0.6) -> list[dict]:
    """One row per route and device (the CPU; each CUDA device present): GFLOP/s (wall and
    per CPU-second), error vs float64 (CPU fp32 routes)."""
    rows = []
    targets = [("cpu", ROUTES)] + [(f"cuda:{i}", CUDA_ROUTES)
                                   for i in range(torch.cuda.device_count())]
    for device, routes in targets:
        for label, dtype, precision, exact in routes:
            wall, cpu = matmul_gflops(dtype, precision, n=n, seconds=seconds, device=device)
            on_cpu = device == "cpu"
            rows.append({
                "route": label if on_cpu else f"{label} on {device}", "device": device,
                "dtype": str(dtype).removeprefix("torch."), "precision": precision,
                "gflops": wall, "gflops_per_cpu_s": cpu,
                "rel_error": matmul_rel_error(precision) if on_cpu and dtype == torch.float32
                else None, "fp32_accurate": exact})
    return rows
