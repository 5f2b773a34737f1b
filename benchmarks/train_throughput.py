"""Training throughput of mlplab vs a plain PyTorch loop, scikit-learn and skorch (+ matmul peak,
profile, bf16 accuracy, inference latency, estimator overhead); writes BENCHMARKS.md.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_throughput.py [--quick]
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_throughput.py --figure

The same as `mlplab bench`. Needs the `bench` extra (skorch): `pip install -e '.[bench]'`.
`--figure` (about 1–2 minutes, writes nothing): the issue's figure alone, width 1024, batch
1024 — mlplab fp32 ÷ the fp32 peak, mlplab bf16 ÷ the bf16 peak (and bf16 under autocast),
bf16 ÷ fp32 samples/s, wall and per CPU-second, in interleaved rounds with the 2048³ peaks,
this model's matmuls alone and the memory bandwidth (`mlplab.bench.ceiling`).
"""

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from mlplab.bench import run_benchmark


def figure(rounds: int) -> None:
    from mlplab.bench import ceiling

    load, start = os.getloadavg()[0], time.perf_counter()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, 1-min load {load:.2f}")
    result = ceiling.measure_ceilings(
        rounds=rounds, contenders=("mlplab fp32", "mlplab bf16", "mlplab bf16 autocast"))
    print(ceiling.figure_table(result))
    for line in ceiling.ceiling_lines(result):
        print("- " + line)
    print(f"1-min load after {os.getloadavg()[0]:.2f}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, ~2 minutes")
    parser.add_argument("--figure", action="store_true",
                        help="only width 1024, batch 1024 vs the peaks; prints, writes nothing")
    parser.add_argument("--rounds", type=int, default=3, help="--figure: interleaved rounds")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.figure:
        if args.threads:
            torch.set_num_threads(args.threads)
        figure(args.rounds)
        raise SystemExit
    command = "OMP_WAIT_POLICY=PASSIVE python benchmarks/train_throughput.py" + (
        " --quick" if args.quick else "") + (f" --threads {args.threads}" if args.threads else "")
    run_benchmark(quick=args.quick, threads=args.threads, command=command,
                  out=Path(__file__).resolve().parents[1] / "BENCHMARKS.md",
                  json_out=Path(__file__).resolve().with_suffix(".json"))
