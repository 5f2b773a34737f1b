"""Hash-grid step time against the number of levels, and the encoding's share of the step.

For 4, 8, 16 and 32 levels (2 features, 2^12 entries per level, finest resolution 2048, the
fields preset's 64-wide MLP, batch 8,192 random coordinates, fused AdamW): CPU milliseconds of
one training step and of the encoding's forward + backward alone (`enc(x).sum().backward()`),
on the process CPU clock divided by the threads (the shared cores' load moves it less than the
wall clock), and of the same step without the encoding (the MLP fed the encoding's outputs,
fixed, still asking for their gradient): `1 - mlp_step / step` is the encoding's share by
difference, its cost inside the step (the tables' AdamW update included). Every configuration
is timed in every round, interleaved, and the median round is kept, so a change of load hits
all rows alike. `--native` also times the same models with `implementation="native"` (the
fused C++ lookup of `mlplab.nn.grid_native`, same numbers) in the same rounds.
`--baseline COMMIT` also times the hash grid of
that commit (its `src/mlplab/nn/hashgrid.py` and `grid_lookup.py`, read with `git show`) in
the same rounds.
The step time's straight-line fit against the levels is printed with its largest residual.

    python benchmarks/hashgrid_levels.py [--threads 1] [--rounds 25] [--steps 4] [--native]
                                         [--baseline 24da910]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import types
from pathlib import Path

import torch
from torch.nn import functional as F

LEVELS = (4, 8, 16, 32)
OPTIONS = {"finest_resolution": 2048}  # and the defaults: 2 features, 2^12 entries


def commit_module(commit: str, path: str, name: str) -> types.ModuleType | None:
    """`path` as it was at `commit`, loaded as a fresh module (None where it did not exist);
    `@register_adapter` lines are dropped so nothing is registered twice."""
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    source = "\n".join(
        line for line in shown.stdout.splitlines() if not line.startswith("@register_adapter")
    )
    module = types.ModuleType(name)
    exec(compile(source, module.__name__, "exec"), module.__dict__)  # noqa: S102
    return module


def baseline_grid(commit: str) -> type:
    """The `GridEncoding` class of `commit` with that commit's lookup (`grid_lookup.py`, where
    it had one), loaded beside the current ones (not registered)."""
    module = commit_module(commit, "src/mlplab/nn/hashgrid.py", f"hashgrid_{commit}")
    lookup = commit_module(commit, "src/mlplab/nn/grid_lookup.py", f"grid_lookup_{commit}")
    if lookup is not None and "GridLookup" in module.__dict__:
        module.GridLookup = lookup.GridLookup  # what the encoding's forward calls
    return module.GridEncoding


def make_model(levels: int, grid: type | None, implementation: str = "torch") -> torch.nn.Module:
    from mlplab.fields.model import field_model

    torch.manual_seed(0)
    options = {"levels": levels, "implementation": implementation, **OPTIONS}
    model = field_model("hashgrid", 2, 1, encoding_options=options)
    if grid is not None:  # the same MLP, the baseline's encoding
        model.adapter = grid(2, levels=levels, **OPTIONS)
    return model


def timers(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, fused=True)
    enc = model.adapter
    n_batches = x.shape[0] // batch

    def step(i: int) -> None:
        rows = slice((i % n_batches) * batch, (i % n_batches + 1) * batch)
        loss = F.mse_loss(model(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()

    def encode(i: int) -> None:
        rows = slice((i % n_batches) * batch, (i % n_batches + 1) * batch)
        enc(x[rows]).sum().backward()

    with torch.no_grad():  # the encoding's outputs, fixed: what the MLP alone is fed
        feats = [enc(x[k * batch : (k + 1) * batch]).requires_grad_() for k in range(n_batches)]

    def mlp_step(i: int) -> None:  # the same step without the encoding (input grad kept)
        rows = slice((i % n_batches) * batch, (i % n_batches + 1) * batch)
        loss = F.mse_loss(model.head(model.backbone(feats[i % n_batches])), y[rows])
        opt.zero_grad()
        loss.backward()
        feats[i % n_batches].grad = None
        opt.step()

    return {"step": step, "encoding": encode, "mlp_step": mlp_step}


def levels_scan(
    threads: int,
    batch: int = 8192,
    steps: int = 4,
    rounds: int = 25,
    levels: tuple[int, ...] = LEVELS,
    baseline: str | None = None,
    native: bool = False,
) -> dict:
    """`{levels: row}` (and `{f"{levels} @ {baseline}": row}`), a row holding step_ms,
    encoding_ms, encoding_share, params and the load average when the scan began."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = torch.rand(batch * 4, 2) * 2 - 1, torch.rand(batch * 4, 1)
    grids: dict[str, tuple[type | None, str]] = {"": (None, "torch")}
    if native:
        grids[" native"] = (None, "native")
    if baseline:
        grids[f" @ {baseline}"] = (baseline_grid(baseline), "torch")
    configs = {
        f"{n}{tag}": make_model(n, grid, implementation)
        for tag, (grid, implementation) in grids.items()
        for n in levels
    }
    fns = {key: timers(model, x, y, batch) for key, model in configs.items()}
    load = os.getloadavg()[0]
    times = {key: {name: [] for name in fns[key]} for key in configs}
    for pair in fns.values():  # warm-up
        for fn in pair.values():
            for i in range(3):
                fn(i)
    for _ in range(rounds):
        for key, pair in fns.items():
            for name, fn in pair.items():
                t0 = time.process_time()
                for i in range(steps):
                    fn(i)
                times[key][name].append((time.process_time() - t0) / steps * 1000 / threads)
    out = {}
    for key, model in configs.items():
        step_ms, enc_ms, mlp_ms = (
            statistics.median(times[key][k]) for k in ("step", "encoding", "mlp_step")
        )
        out[key] = {
            "step_ms": round(step_ms, 2),
            "encoding_ms": round(enc_ms, 2),
            "encoding_share": round(enc_ms / step_ms, 3),
            "mlp_step_ms": round(mlp_ms, 2),
            "share_by_difference": round(1 - mlp_ms / step_ms, 3),
            "params": sum(p.numel() for p in model.parameters()),
            "load": round(load, 2),
        }
        print("levels", key, out[key], flush=True)
    for tag in grids:
        ls = [float(n) for n in levels]
        ms = [out[f"{n}{tag}"]["step_ms"] for n in levels]
        slope, intercept = linear_fit(ls, ms)
        worst = max(abs(m - (intercept + slope * n)) / m for n, m in zip(ls, ms, strict=True))
        out[f"fit{tag}"] = {
            "ms_per_level": round(slope, 3),
            "intercept_ms": round(intercept, 2),
            "max_rel_residual": round(worst, 3),
        }
        print("step_ms ~", out[f"fit{tag}"], flush=True)
    return out


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum(
        (a - mx) ** 2 for a in xs
    )
    return slope, my - slope * mx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=4, help="calls per round")
    parser.add_argument("--baseline", help="a commit whose hash grid is timed alongside")
    parser.add_argument("--native", action="store_true", help='also implementation="native"')
    parser.add_argument("--out", default="benchmarks/hashgrid_levels.json")
    args = parser.parse_args()
    results = {
        "levels": levels_scan(
            args.threads,
            steps=args.steps,
            rounds=args.rounds,
            baseline=args.baseline,
            native=args.native,
        ),
        "torch": torch.__version__,
        "threads": args.threads,
        "load_after": round(os.getloadavg()[0], 2),
    }
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
