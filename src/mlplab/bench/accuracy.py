"""bf16 vs fp32 on real data: digits test accuracy through `mlplab.train`, averaged over seeds.

The digits test split has 270 rows (one row = 0.37 points), so single runs cannot resolve a
0.3-point difference; the mean over seeds can.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import mlplab

DIGITS = {
    "data": {"source": "sklearn:digits"},
    "task": {"label_smoothing": 0.1},
    "model": {"block": "standard", "width": 256, "depth": 2, "dropout": 0.1},
    "train": {"lr": 2e-3, "batch_size": 64, "epochs": 40, "patience": 15},
}


def digits_accuracy(precision: str, seeds: list[int]) -> dict:
    """Mean/min/max test accuracy (percent) and mean train seconds over `seeds`."""
    accs, secs = [], []
    for seed in seeds:
        spec = {**DIGITS, "seed": seed, "train": {**DIGITS["train"], "precision": precision}}
        result = mlplab.train(spec)
        accs.append(100 * result.metrics["test"]["accuracy"])
        secs.append(result.timings["train_seconds"])
    return {"precision": precision, "seeds": len(seeds), "mean": statistics.mean(accs),
            "min": min(accs), "max": max(accs), "train_seconds": statistics.mean(secs)}


def measure_accuracy(seeds: list[int], log: Callable[[str], None] = print) -> list[dict]:
    rows = []
    for precision in ("fp32", "bf16"):
        row = digits_accuracy(precision, seeds)
        rows.append(row)
        log(f"  digits {precision}: test accuracy {row['mean']:.2f}% "
            f"(min {row['min']:.2f}, max {row['max']:.2f}) over {row['seeds']} seeds")
    return rows
