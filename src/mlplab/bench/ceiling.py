"""What a training step could cost at best on this machine: the model's matmuls alone and the
memory traffic of the passes that are not matmuls.

- `gemm_shapes`: the `(rows, d_in, d_out)` of every linear map one forward pass of a model
  runs (read off with forward hooks on one batch, so it is this exact model's shapes).
- `matmul_only_step`: the forward, input-gradient and weight-gradient matmuls of those
  shapes, on preallocated tensors, with nothing else: the step time of a trainer whose
  non-matmul code took no time at all.
- `bandwidth_gbs`: GB/s of a large elementwise add (two reads, one write) and of a copy —
  the rate the optimizer update, the clip and the elementwise passes can run at best, since
  at these sizes they are memory-bound.
CPU seconds (`time.process_time`), best of several calls: what a shared machine distorts
least.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn


def cpu_seconds(f: Callable[[], object], n: int = 5) -> float:
    """Best process-CPU seconds of `n` calls of `f` (after one untimed call)."""
    f()
    best = float("inf")
    for _ in range(n):
        start = time.process_time()
        f()
        best = min(best, time.process_time() - start)
    return best


def gemm_shapes(model: nn.Module, *inputs: Tensor) -> list[tuple[int, int, int]]:
    """`(rows, d_in, d_out)` of every `nn.Linear` call in one forward of `model(*inputs)`."""
    shapes: list[tuple[int, int, int]] = []

    def hook(module: nn.Module, args: tuple, _out: Tensor) -> None:
        x = args[0]
        shapes.append((x.numel() // x.shape[-1], module.in_features, module.out_features))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return shapes


def step_flops(shapes: list[tuple[int, int, int]], *, first_input_grad: bool = False) -> float:
    """Matmul FLOPs of forward + backward: 3 matmuls per layer (2 for the first layer, whose
    input needs no gradient, unless `first_input_grad`)."""
    total = 0.0
    for i, (n, a, b) in enumerate(shapes):
        total += 2 * n * a * b * (3 if i or first_input_grad else 2)
    return total


def matmul_only_step(
    shapes: list[tuple[int, int, int]], dtype: torch.dtype = torch.bfloat16
) -> Callable[[], None]:
    """A callable running only the matmuls of one training step: per layer `x @ W.T`, `g @ W`
    (not for the first layer) and the weight gradient `g.T @ x` with `g.T` contiguous (the
    layout `mlplab.nn.bf16_linear` uses), into preallocated outputs."""
    gen = torch.Generator().manual_seed(0)
    layers = []
    for i, (n, a, b) in enumerate(shapes):
        x, w = (
            torch.randn(n, a, generator=gen).to(dtype),
            torch.randn(b, a, generator=gen).to(dtype),
        )
        g = torch.randn(n, b, generator=gen).to(dtype)
        layers.append(
            (
                i,
                x,
                w,
                g,
                torch.empty(n, b, dtype=dtype),
                torch.empty(n, a, dtype=dtype),
                torch.empty(b, a, dtype=dtype),
            )
        )

    def step() -> None:
        for _, x, w, _g, y, _gx, _gw in layers:
            torch.mm(x, w.t(), out=y)
        for i, x, w, g, _y, gx, gw in reversed(layers):
            if i:
                torch.mm(g, w, out=gx)
            torch.mm(g.t().contiguous(), x, out=gw)

    return step


def bandwidth_gbs(mbytes: int = 256, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """GB per CPU-second of `c = a + b` (3 x size moved) and `c.copy_(a)` (2 x size) on
    tensors of `mbytes` MB each (far larger than the caches)."""
    n = mbytes * 2**20 // torch.empty((), dtype=dtype).element_size()
    a, b, c = (torch.ones(n, dtype=dtype) for _ in range(3))
    size = n * a.element_size() / 1e9
    return {
        "add (2 reads + 1 write)": 3 * size / cpu_seconds(lambda: torch.add(a, b, out=c)),
        "copy (1 read + 1 write)": 2 * size / cpu_seconds(lambda: c.copy_(a)),
    }


def optimizer_bytes_per_param(*, weight: int, grad: int, master: int, moment: int) -> int:
    """Bytes one AdamW step moves per parameter: read the gradient, the master weight and two
    moments, write the master and the moments, and write the (bf16) model weight when it is
    not the master. Element sizes in bytes; `master=0` when the model weight is the master."""
    if master:
        return grad + 2 * master + 4 * moment + weight
    return grad + 2 * weight + 4 * moment


def measure_ceilings(
    width: int = 1024,
    batch: int = 1024,
    *,
    rounds: int = 3,
    steps: int = 2,
    contenders: tuple[str, ...] = ("mlplab bf16", "mlplab fp32"),
    log: Callable[[str], None] = print,
) -> dict:
    """In one process, in interleaved rounds (each figure the best of `rounds`, per
    CPU-second): the 2048³ matmul peaks (fp32, bf16), this model's matmuls alone (bf16,
    fp32), the trainer's epochs of `steps` steps (`mlplab.bench.training` contenders) and
    the memory bandwidth. Returns GFLOP per CPU-second of each (`best`; bandwidth in GB per
    CPU-second), GFLOP/s of wall time of the peaks and trainers (`best_wall`; the figure that
    counts on an idle machine) and the step's FLOPs."""
    from mlplab.bench.peak import matmul_gflops
    from mlplab.bench.training import CONTENDERS, D_IN, residual_mlp, synthetic
    from mlplab.count import count

    model = residual_mlp(width)
    shapes = gemm_shapes(model, torch.zeros(batch, D_IN))
    flops = step_flops(shapes)
    counted = 3 * count(model, torch.zeros(4, D_IN))["matmul_flops_per_sample"] * batch
    x, y = synthetic(steps * batch + 256)
    trainers = {name: CONTENDERS[name](width, x, y, batch) for name in contenders}
    only = {dt: matmul_only_step(shapes, dt) for dt in (torch.bfloat16, torch.float32)}
    for c in trainers.values():
        c.warm_up()
    best: dict[str, float] = {}
    best_wall: dict[str, float] = {}

    def keep(name: str, value: float, wall: float | None = None) -> None:
        best[name] = max(best.get(name, 0.0), value)
        if wall is not None:
            best_wall[name] = max(best_wall.get(name, 0.0), wall)

    for _ in range(rounds):
        for label, dt in (("peak bf16", torch.bfloat16), ("peak fp32", torch.float32)):
            wall, cpu = matmul_gflops(dt, "highest", seconds=0.6)
            keep(label, cpu, wall)
        for dt, f in only.items():
            keep(f"matmuls only {str(dt)[6:]}", flops / cpu_seconds(f, 2) / 1e9)
        for name, c in trainers.items():
            start, wall = time.process_time(), time.perf_counter()
            c.epoch()
            cpu, wall = time.process_time() - start, time.perf_counter() - wall
            keep(name, counted * steps / cpu / 1e9, counted * steps / wall / 1e9)
        for k, v in bandwidth_gbs().items():
            keep(f"bandwidth fp32 {k}", v)
        log("  " + ", ".join(f"{k} {v:.0f}" for k, v in best.items()))
    return {
        "width": width,
        "batch": batch,
        "shapes": shapes,
        "step_gflop": flops / 1e9,
        "counted_step_gflop": counted / 1e9,
        "params": sum(p.numel() for p in model.parameters()),
        "best": best,
        "best_wall": best_wall,
        "rounds": rounds,
        "steps": steps,
    }


def figure_table(result: dict) -> str:
    """Markdown: each trainer's GFLOP/s, samples/s and share of its dtype's peak (wall and per
    CPU-second), and bf16 ÷ fp32 samples/s, from `measure_ceilings`."""
    per_sample = result["counted_step_gflop"] / result["batch"]
    lines = [
        "| | GFLOP/s (wall) | ÷ same-dtype peak (wall) | GFLOP/CPU-s | ÷ same-dtype peak "
        "(CPU-s) | samples/s (wall) | samples/CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    wall, cpu = result["best_wall"], result["best"]
    for name in ("peak fp32", "peak bf16"):
        lines.append(f"| 2048³ matmul {name[5:]} | {wall[name]:,.0f} | | {cpu[name]:,.0f} | | | |")
    for dt in ("float32", "bfloat16"):
        key = f"matmuls only {dt}"
        which = "fp32" if dt == "float32" else "bf16"
        lines.append(
            f"| this model's matmuls alone, {which} | | | {cpu[key]:,.0f} | "
            f"{cpu[key] / cpu['peak ' + which]:.0%} | | |"
        )
    for name in [k for k in cpu if k.startswith("mlplab")]:
        which = "fp32" if "fp32" in name else "bf16"
        lines.append(
            f"| {name} | {wall[name]:,.0f} | {wall[name] / wall['peak ' + which]:.0%} | "
            f"{cpu[name]:,.0f} | {cpu[name] / cpu['peak ' + which]:.0%} | "
            f"{wall[name] / per_sample:,.0f} | {cpu[name] / per_sample:,.0f} |"
        )
    if "mlplab bf16" in cpu and "mlplab fp32" in cpu:
        lines.append(
            f"| bf16 ÷ fp32 samples/s | | | | | "
            f"{wall['mlplab bf16'] / wall['mlplab fp32']:.2f}x | "
            f"{cpu['mlplab bf16'] / cpu['mlplab fp32']:.2f}x |"
        )
    return "\n".join(lines)


def ceiling_lines(result: dict, *, target: float = 0.6) -> list[str]:
    """What `measure_ceilings` implies for the figure "bf16 training ≥ `target` of the bf16
    peak": the matmul-only ceiling, the time left for everything else, and the optimizer's
    memory traffic at the measured bandwidth."""
    b = result["best"]
    peak, only = b["peak bf16"], b["matmuls only bfloat16"]
    gflop = result["counted_step_gflop"]
    step_at_target = gflop / (target * peak)  # CPU-s per step at the target
    matmul_s = result["step_gflop"] / only
    bw = min(v for k, v in b.items() if k.startswith("bandwidth"))
    n = result["params"]
    lines = [
        f"bf16 peak {peak:.0f}, fp32 peak {b['peak fp32']:.0f} GFLOP/CPU-s "
        f"({peak / b['peak fp32']:.2f}x)",
        f"this model's bf16 matmuls alone: {only:.0f} GFLOP/CPU-s = {only / peak:.0%} of the "
        f"bf16 peak (fp32: {b['matmuls only float32'] / b['peak fp32']:.0%} of fp32's) — the "
        "ceiling of any trainer",
        f"at {target:.0%} of the peak a step may take {step_at_target * 1e3:.0f} CPU-ms; its "
        f"matmuls take {matmul_s * 1e3:.0f}, leaving {(step_at_target - matmul_s) * 1e3:.0f} "
        "CPU-ms for everything else",
        f"memory bandwidth ~{bw:.0f} GB/CPU-s: one AdamW step over {n / 1e6:.1f} M parameters "
        f"moves {optimizer_bytes_per_param(weight=4, grad=4, master=0, moment=4) * n / 1e9:.2f}"
        f" GB in fp32 (>= {optimizer_bytes_per_param(weight=4, grad=4, master=0, moment=4) * n / bw / 1e6:.0f}"
        " CPU-ms); bf16 weights + grads with fp32 masters and moments "
        f"{optimizer_bytes_per_param(weight=2, grad=2, master=4, moment=4) * n / 1e9:.2f} GB "
        f"(>= {optimizer_bytes_per_param(weight=2, grad=2, master=4, moment=4) * n / bw / 1e6:.0f}"
        " CPU-ms) in one fused pass",
    ]
    for name in [k for k in b if k.startswith("mlplab")]:
        which = "fp32" if "fp32" in name else "bf16"
        lines.append(
            f"{name}: {b[name]:.0f} GFLOP/CPU-s = "
            f"{b[name] / b['peak ' + which]:.0%} of the {which} peak"
        )
    return lines
