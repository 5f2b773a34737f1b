"""What the lab costs on top of training: the same trials run (a) as a plain loop of
`mlplab.train` calls, (b) as a sweep in this process (`workers=0`: store, claims, heartbeats,
budget solving), (c) as a sweep with 2 worker processes of 1 thread each.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/lab_sweep.py

Prints trials/s for each and the ratios to the plain loop, all measured in this process.
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import mlplab  # noqa: E402
from mlplab.lab.plan import plan  # noqa: E402
from mlplab.lab.spec import parse_sweep  # noqa: E402

SWEEP = {
    "name": "bench",
    "seeds": [0, 1],
    "data": {"source": "sklearn:digits"},
    "model": {"depth": 2},
    "train": {"epochs": 40, "batch_size": 64, "patience": None},
    "axes": {"model.block": ["standard", "hourglass", "swiglu", "bilinear"]},
    "budget": {"params": [1e4, 3e4]},
}


def main() -> None:
    torch.set_num_threads(1)
    spec = parse_sweep(SWEEP)
    _, rows = plan(spec)
    specs = [r["spec"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i, s in enumerate(specs):
            mlplab.train(s, out=f"{tmp}/plain/{i}", quiet=True)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        inproc = mlplab.sweep(SWEEP, out=f"{tmp}/inproc", workers=0)
        lab0 = time.perf_counter() - t
        t = time.perf_counter()
        two = mlplab.sweep(SWEEP, out=f"{tmp}/two", workers=2)
        lab2 = time.perf_counter() - t
    assert inproc.counts == two.counts == {"done": len(specs)}
    n = len(specs)
    print(f"{n} trials (digits, 40 epochs, 1e4/3e4 params, 4 families x 2 budgets x 2 seeds)")
    print(f"plain mlplab.train loop, 1 thread : {plain:6.1f} s  {n / plain:5.2f} trials/s  1.00x")
    print(f"sweep in-process (workers=0)     : {lab0:6.1f} s  {n / lab0:5.2f} trials/s  "
          f"{plain / lab0:.2f}x")
    print(f"sweep, 2 workers x 1 thread      : {lab2:6.1f} s  {n / lab2:5.2f} trials/s  "
          f"{plain / lab2:.2f}x")


if __name__ == "__main__":
    main()
