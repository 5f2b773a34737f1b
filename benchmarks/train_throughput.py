"""Training throughput of mlplab vs a plain PyTorch loop, scikit-learn and skorch (+ matmul peak,
profile, bf16 accuracy, inference latency, estimator overhead); writes BENCHMARKS.md.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_throughput.py [--quick]

The same as `mlplab bench`. Needs the `bench` extra (skorch): `pip install -e '.[bench]'`.
"""

import argparse
from pathlib import Path

from mlplab.bench import run_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, ~2 minutes")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    command = "OMP_WAIT_POLICY=PASSIVE python benchmarks/train_throughput.py" + (
        " --quick" if args.quick else "") + (f" --threads {args.threads}" if args.threads else "")
    run_benchmark(quick=args.quick, threads=args.threads, command=command,
                  out=Path(__file__).resolve().parents[1] / "BENCHMARKS.md",
                  json_out=Path(__file__).resolve().with_suffix(".json"))
