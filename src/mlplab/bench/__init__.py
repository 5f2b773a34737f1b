"""`mlplab bench`: matmul peak, training throughput vs PyTorch/sklearn/skorch, the trainer's
profile, bf16 accuracy, inference latency and estimator overhead — in one process, one run,
written to the `## Training throughput` section of BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from mlplab.bench.training import CONTENDERS, CUDA_CONTENDERS

# the bf16 autocast route is a variant of the ablation, not a column of the grid
ALL = [n for n in CONTENDERS if n not in CUDA_CONTENDERS and n != "mlplab bf16 autocast"]
FAST = ["mlplab fp32", "mlplab bf16", "torch loop"]

# (width, batch, contenders): sklearn/skorch where they finish in seconds, not minutes
FULL_GRID = [
    (256, 256, FAST + ["skorch"]), (256, 1024, ALL), (256, 4096, FAST),
    (512, 256, FAST + ["skorch"]), (512, 1024, ALL), (512, 4096, FAST),
    (1024, 256, ALL), (1024, 1024, ALL), (1024, 4096, FAST[:2]),
    (2048, 512, ALL),
]
QUICK_GRID = [(256, 1024, ALL), (1024, 1024, ALL)]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def ablation(width: int, batch: int, *, budget: float, repeats: int,
             log: Callable[[str], None] = print) -> list[dict]:
    """Trainer variants from the reference (MKL + for-loop AdamW) up to mlplab's defaults."""
    from mlplab.bench.training import (
        D_IN,
        best_epochs,
        mlplab_contender,
        residual_mlp,
        steps_for,
        synthetic,
    )
    from mlplab.count import count
    from mlplab.train.optim import param_groups

    def loop_adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(param_groups(model, 1e-4), lr=1e-3, foreach=False)

    fps = count(residual_mlp(width), torch.zeros(4, D_IN))["matmul_flops_per_sample"]
    steps = steps_for(3 * fps * batch, budget)
    x, y = synthetic(steps * batch + 256)
    variants = {
        "reference: for-loop AdamW + separate clip": dict(optimizer_override=loop_adamw),
        "+ fused AdamW with clip folded in (= mlplab fp32)": {},
        "+ precision = bf16 under autocast (fp32 weights, the old route)": dict(
            precision="bf16", master_weights=False),
        "+ bf16 weights, fp32 masters in the optimizer (= mlplab bf16)": dict(precision="bf16"),
        "mlplab fp32 + oneDNN fp32 route (train.fp32_matmul = 'fast', opt-in)": dict(
            fp32_matmul="fast"),
        "mlplab fp32 + torch.compile(model) (not adopted)": dict(compile_model=True),
    }
    seconds = best_epochs({name: mlplab_contender(width, x, y, batch, **kw)
                           for name, kw in variants.items()}, repeats)
    rows = []
    for name in variants:
        wall, cpu = seconds[name]
        rate = steps * batch / wall
        rows.append({"variant": f"{name} (width {width}, batch {batch})",
                     "samples_per_s": rate, "samples_per_cpu_s": steps * batch / cpu,
                     "gflops": 3 * fps * rate / 1e9})
        log(f"  {name:52s} {rate:9.0f} samples/s")
    return rows


def log_ratios(rows: list[dict], peak_fp32: float, log: Callable[[str], None],
               peak_bf16: float | None = None) -> None:
    """Print mlplab fp32 ÷ each contender and ÷ the fp32 peak (and mlplab bf16 ÷ the bf16
    peak), per (width, batch)."""
    from mlplab.bench.report import ratio

    log("ratios (wall time)")
    for w, b in sorted({(r["width"], r["batch"]) for r in rows}):
        rate = {r["contender"]: r for r in rows if (r["width"], r["batch"]) == (w, b)}
        fp32 = rate["mlplab fp32"]
        parts = [f"÷ peak {fp32['gflops'] / peak_fp32:.0%}"]
        for name in ("mlplab bf16", "torch loop", "sklearn", "skorch"):
            if name in rate:
                a, c = (rate[name], fp32) if name == "mlplab bf16" else (fp32, rate[name])
                label = "bf16 ÷ fp32" if name == "mlplab bf16" else f"÷ {name}"
                parts.append(f"{label} {ratio(a['samples_per_s'], c['samples_per_s'])}")
        if peak_bf16 and "mlplab bf16" in rate:
            parts.append(f"bf16 ÷ bf16 peak {rate['mlplab bf16']['gflops'] / peak_bf16:.0%}")
        log(f"  width {w:5d} batch {b:5d} mlplab fp32: " + ", ".join(parts))


def notes(results: dict[str, Any]) -> list[str]:
    """What the numbers imply, computed from them (Amdahl bound from the profile, etc.)."""
    out = []
    for title, prof in results.get("profile", {}).items():
        if "fp32" in title:
            share = next((p["share"] for p in prof if p["category"].startswith("matmul")), 0.0)
            if share:
                out.append(
                    f"{title}: matmuls are {share:.0%} of the step, so removing *everything "
                    f"else* could speed it up by at most {1 / share:.2f}x; the plain PyTorch "
                    "loop runs the same matmuls with the same kernels, so beyond that bound "
                    "only faster matmuls win: train.precision = 'bf16'.")
    peak = results.get("peak_fp32")
    for r in results.get("training", []):
        if r["width"] >= 1024 and r["batch"] == 1024 and r["contender"] in (
                "torch loop", "sklearn") and peak:
            frac = r["gflops"] / peak
            out.append(
                f"{r['contender']} at width {r['width']}, batch {r['batch']} already reaches "
                f"{frac:.0%} of the fp32 matmul peak, so no fp32 trainer can be more than "
                f"{1 / frac:.2f}x faster than it on this machine (a trainer at 100% of peak).")
    abl = {a["variant"].split(" (width")[0]: a for a in results.get("ablation", [])}
    comp = next((a for k, a in abl.items() if "torch.compile" in k), None)
    base = next((a for k, a in abl.items() if k.startswith("+ fused")), None)
    dnn = next((a for k, a in abl.items() if "oneDNN" in k), None)
    if dnn and base:
        out.append(f"oneDNN fp32 route vs mlplab fp32 (MKL): "
                   f"{dnn['samples_per_s'] / base['samples_per_s']:.2f}x wall, "
                   f"{dnn['samples_per_cpu_s'] / base['samples_per_cpu_s']:.2f}x per "
                   "CPU-second; kept opt-in (train.fp32_matmul = 'fast').")
    if comp and base:
        out.append(f"torch.compile(model) vs eager mlplab fp32: "
                   f"{comp['samples_per_s'] / base['samples_per_s']:.2f}x wall, "
                   f"{comp['samples_per_cpu_s'] / base['samples_per_cpu_s']:.2f}x per CPU-second "
                   "(plus seconds of compile time per run); not used by the trainer.")
    return out


def run_benchmark(*, quick: bool = False, out: str | Path | None = "BENCHMARKS.md",
                  threads: int | None = None, command: str = "mlplab bench",
                  json_out: str | Path | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run everything, print progress, write the BENCHMARKS.md section; return the results."""
    from mlplab.bench import accuracy, inference, overhead, peak, profile, report, training

    if threads:
        torch.set_num_threads(threads)
    start, load_before = time.perf_counter(), _load()
    budget, repeats = (1e11, 2) if quick else (1.5e11, 4)
    log("matmul peak")
    peaks = peak.measure_peaks(seconds=0.3 if quick else 1.5)
    for p in peaks:
        log(f"  {p['route']:42s} {p['gflops']:7.0f} GFLOP/s")
    log("training throughput")
    grid = QUICK_GRID if quick else FULL_GRID
    if torch.cuda.is_available():  # the trainer on the GPU too, at width 1024, batch 1024
        grid = [*grid, (1024, 1024, ["mlplab fp32", *CUDA_CONTENDERS])]
    rows = training.measure_grid(grid, budget=budget, repeats=repeats, log=log)
    log("matmul peak, again (the best of both measurements counts: the machine may be busy)")
    peaks = [max(a, b, key=lambda p: p["gflops"])
             for a, b in zip(peaks, peak.measure_peaks(seconds=0.3 if quick else 1.5),
                             strict=True)]
    for p in peaks:
        log(f"  {p['route']:42s} {p['gflops']:7.0f} GFLOP/s")
    on_cpu = [p for p in peaks if p.get("device", "cpu") == "cpu"]  # training runs there
    peak_fp32 = max(p["gflops"] for p in on_cpu if p["fp32_accurate"])
    peak_cpu = max(p["gflops_per_cpu_s"] for p in on_cpu if p["fp32_accurate"])
    bf16 = next(p for p in on_cpu if p["dtype"] == "bfloat16")
    log_ratios(rows, peak_fp32, log, peak_bf16=bf16["gflops"])
    results: dict[str, Any] = {"peaks": peaks, "peak_fp32": peak_fp32,
                               "peak_fp32_cpu": peak_cpu, "peak_bf16": bf16["gflops"],
                               "peak_bf16_cpu": bf16["gflops_per_cpu_s"], "training": rows}
    log("trainer ablation")
    results["ablation"] = ablation(1024, 512 if quick else 1024, budget=budget,
                                   repeats=repeats, log=log)
    log("profile")
    results["profile"] = {
        f"mlplab fp32, width 1024, batch {b}": profile.profile_trainer(1024, b, steps=3)
        for b in ((1024,) if quick else (256, 1024))}
    results["profile"]["mlplab bf16, width 1024, batch 1024"] = profile.profile_trainer(
        1024, 1024, steps=3, precision="bf16")
    log("bf16 accuracy on digits")
    results["accuracy"] = accuracy.measure_accuracy([0] if quick else [0, 1, 2], log=log)
    log("inference")
    results["inference"] = inference.measure_inference(
        [256] if quick else [256, 1024], big_batch=4096, latency_calls=20 if quick else 50,
        log=log)
    log("estimator overhead")
    results["overhead"] = overhead.measure_overhead(repeats=2 if quick else 5, log=log)
    results["notes"] = notes(results)
    results["env"] = {
        "command": command, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": _cpu_name(),
        "cores": os.cpu_count(), "load_before": load_before, "load_after": _load(),
        "seconds": time.perf_counter() - start}
    if out is not None:
        report.write_section(out, report.render(results))
        log(f"wrote the '{report.SECTION}' section of {out}")
    if json_out is not None:
        Path(json_out).write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {json_out}")
    return results
