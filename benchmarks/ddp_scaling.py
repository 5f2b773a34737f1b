"""Data-parallel scaling on this machine's cores: 1 process x 1 thread, 2 processes x 1 thread
(`mlplab train --nproc 2`, DDP over gloo) and 1 process x 2 threads, on the same spec.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ddp_scaling.py [--width 1024] [--batch 1024]

Each configuration is a fresh `mlplab train` (its `metrics.json` timings: training seconds
only, validation excluded); they take turns `--repeats` times and each one's fastest run
counts. Prints a markdown table (and the 1-minute load before and after) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = """seed = 0
[data]
source = "sklearn:digits"
[model]
block = "standard"
width = {width}
depth = 4
[train]
epochs = {epochs}
batch_size = {batch}
patience = 1000
warmup_epochs = 0
"""
CONFIGS = {  # name -> (processes, threads per process)
    "1 process x 1 thread": (1, 1),
    "2 processes x 1 thread (DDP, gloo)": (2, 1),
    "1 process x 2 threads": (1, 2),
}


def run(spec: Path, out: Path, nproc: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "mlplab", "train", str(spec), "--out", str(out), "--quiet",
           "--set", f"train.threads={threads}", "--nproc", str(nproc)]
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(SPEC.format(width=args.width, batch=args.batch, epochs=args.epochs))
        for r in range(args.repeats):
            for name, (nproc, threads) in CONFIGS.items():
                m = run(spec, Path(tmp) / f"{r}-{nproc}-{threads}", nproc, threads)
                t = m["timings"]
                if name not in best or t["train_seconds"] < best[name]["train_seconds"]:
                    best[name] = {**t, "test_accuracy": m["test"]["accuracy"]}
    base = best["1 process x 1 thread"]["samples_per_second"]
    print(f"width {args.width}, depth 4, batch {args.batch} (global), digits, {args.epochs} "
          f"epochs; 1-min load before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}\n")
    print("| configuration | samples/s | GFLOP/s | speed-up vs 1 x 1 | test accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, t in best.items():
        print(f"| {name} | {t['samples_per_second']:,.0f} | {t['gflops_per_second']:.0f} | "
              f"{t['samples_per_second'] / base:.2f}x | {t['test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
