"""Units at matched parameters: forward+backward step time and peak memory against the linear MLP.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/units.py [--threads 1] [--reps 7] [--clock cpu]

One process. Every model is a plain 3-layer stack `d_in -> width -> width -> width` built from
one unit (no norm), its width solved so its parameters match the linear MLP's at width 512.
A step is `model(x).square().mean().backward()` on `(batch, 64)` inputs; time is the median
of `--reps` steps (wall clock, or the process's CPU time with `--clock cpu`), interleaved
across units so background load hits them alike, each timed step right after an untimed one
of the same model (so it does not pay for page faults on memory another model returned). Peak memory
is the most bytes alive during one profiled step (torch's memory profiler timeline: weights,
gradients, saved activations and temporaries). Prints a markdown table with ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.profiler import profile

import mlplab
from mlplab.lab.budget import solve_width
from mlplab.nn.backbone import Backbone

D_IN, DEPTH, LINEAR_WIDTH, BATCHES = 64, 3, 512, (1024, 8192)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("linear", {}),
    "kan": ("kan", {}),
    "rbf": ("rbf", {}),
    "fan": ("fan", {}),
    "fan gated": ("fan", {"gated": True}),
    "moe top-1": ("moe", {}),
    "moe top-2": ("moe", {"top_k": 2}),
    "moe gumbel": ("moe", {"router": "gumbel"}),
}


def build(unit: str, options: dict[str, Any], width: int) -> nn.Module:
    torch.manual_seed(0)
    return Backbone(D_IN, block="plain", width=width, depth=DEPTH, norm="none", unit=unit,
                    unit_options=options)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def step(model: nn.Module, x: torch.Tensor) -> None:
    model(x).square().mean().backward()
    for p in model.parameters():
        p.grad = None


def peak_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """The most bytes alive at once during one step (inputs and weights included)."""
    with profile(profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step(model, x)
    live = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        name = getattr(action, "name", str(action))
        if name in ("PREEXISTING", "CREATE"):
            live += size
        elif name == "DESTROY":
            live -= size
        peak = max(peak, live)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time steps by the wall clock or by this process's CPU time "
                             "(less sensitive to other jobs on a loaded machine)")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    target = n_params(build("linear", {}, LINEAR_WIDTH))
    models: dict[str, nn.Module] = {}
    for name, (unit, options) in VARIANTS.items():
        solved = solve_width(lambda w, u=unit, o=options: {"params": n_params(build(u, o, w)),
                                                           "flops_per_sample": 0},
                             target, max_width=4096, what=name)
        models[name] = build(unit, options, solved.width)
    rows = []
    for batch in BATCHES:
        x = torch.randn(batch, D_IN).mul_(0.5)
        times: dict[str, list[float]] = {name: [] for name in models}
        for model in models.values():
            step(model, x)  # warm-up
        for _ in range(args.reps):
            for name, model in models.items():
                step(model, x)  # untimed: the allocator's free memory is this model's again
                t0 = clock()
                step(model, x)
                times[name].append(clock() - t0)
        for name, model in models.items():
            counts = mlplab.count(model, x[:64])
            rows.append({"unit": name, "batch": batch, "width": model.width,
                         "params": counts["params"], "flops": counts["flops_per_sample"],
                         "ms": 1e3 * statistics.median(times[name]),
                         "mib": peak_bytes(model, x) / 2**20})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, target "
          f"{target:,} params (linear MLP width {LINEAR_WIDTH}), depth {DEPTH}, d_in {D_IN}\n")
    print("| unit | width | params | FLOPs/sample | batch | step ms | × linear | peak MiB | × linear |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["unit"] == "linear" and r["batch"] == row["batch"])
        print(f"| {row['unit']} | {row['width']} | {row['params']:,} | {row['flops']:,} | "
              f"{row['batch']} | {row['ms']:.1f} | {row['ms'] / base['ms']:.2f} | "
              f"{row['mib']:.0f} | {row['mib'] / base['mib']:.2f} |")


if __name__ == "__main__":
    main()
