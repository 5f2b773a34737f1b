"""Page faults in a CPU training step: glibc's default against keeping freed memory.

glibc hands large freed blocks back to the kernel (munmap, or trimming the heap's top), so the
next tensor of that size is faulted in again, a page at a time, on first touch. This times the
16-level hash-grid step of `hashgrid_levels.py` (64-wide MLP, fused AdamW, batch 8,192, 1
thread) and its encoding and MLP parts, in child processes that alternate between glibc's
defaults and `mallopt(M_MMAP_THRESHOLD, 1 GiB)` + `mallopt(M_TRIM_THRESHOLD, 1 GiB)` (freed
memory stays in the process), and prints each setting's median CPU ms and minor page faults
per call. Linux with glibc only. mlplab does not change the allocator.

    python benchmarks/malloc_faults.py [--pairs 4] [--rounds 10]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def child(keep: bool, rounds: int) -> dict:
    """One process: `{timer: (median ms, faults per call)}` for step, encoding and mlp_step."""
    if keep:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from hashgrid_levels import make_model, timers

    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch = 8192
    x, y = torch.rand(batch * 4, 2) * 2 - 1, torch.rand(batch * 4, 1)
    fns = timers(make_model(16, None), x, y, batch)
    for fn in fns.values():
        for i in range(3):
            fn(i)
    times = {name: [] for name in fns}
    faults = dict.fromkeys(fns, 0)
    for _ in range(rounds):
        for name, fn in fns.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.process_time()
            for i in range(4):
                fn(i)
            times[name].append((time.process_time() - t0) / 4 * 1000)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return {n: (statistics.median(times[n]), faults[n] / (4 * rounds)) for n in fns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--child", choices=["default", "keep"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "keep", args.rounds)))
        return
    runs: dict[str, list[dict]] = {"default": [], "keep": []}
    for _ in range(args.pairs):
        for setting in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", setting, "--rounds", str(args.rounds)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[setting].append(json.loads(out.stdout.splitlines()[-1]))
    for setting, results in runs.items():
        cells = []
        for name in results[0]:
            ms = statistics.median(r[name][0] for r in results)
            faults = statistics.median(r[name][1] for r in results)
            cells.append(f"{name} {ms:.2f} ms ({faults:.0f} faults)")
        print(f"{setting:8s} " + ", ".join(cells))
    step = {s: statistics.median(r["step"][0] for r in rs) for s, rs in runs.items()}
    print(f"step, kept / default: {step['keep'] / step['default']:.3f}")


if __name__ == "__main__":
    main()
