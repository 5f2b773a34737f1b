"""Neural fields on the 256 x 256 camera image: every encoding's PSNR against wall seconds.

Every run goes through `mlplab.train` (the one trainer) with the encoding's preset
(`mlplab.fields.presets`), in this one process, at the same thread count:
- fitting (train on all pixels): PSNR curve, seconds to 30 / 35 / 40 dB, final PSNR, SSIM,
  parameters per pixel; the same at <= 0.5 parameters per pixel (compact presets);
- generalisation (train on every second pixel per axis, test on all): best and final PSNR of
  the held-out pixels and of the whole image;
- the issue's reference, a straightforward pure-PyTorch hash grid (a Python loop over the 16
  levels, 2 features, 2^12 entries, 64-wide MLP, full-batch Adam), timed in the same process:
  the ratio of its seconds-to-40-dB to mlplab's is what load cannot fake.
The machine's load average is recorded before and after each run (the 2 cores are shared).

    python benchmarks/fields.py --out benchmarks/fields.json [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import mlplab
from mlplab.fields.metrics import psnr
from mlplab.fields.presets import ENCODINGS, field_run_spec
from mlplab.fields.signals import load_signal

THRESHOLDS = (30.0, 35.0, 40.0)


def seconds_to(curve: list[tuple[float, float]], level: float) -> float | None:
    for secs, value in curve:
        if value >= level:
            return round(secs, 2)
    return None


def one_run(encoding: str, *, split: str, epochs: int, threads: int, compact: bool = False,
            precision: str = "fp32", scale=None, seed: int = 0, options: dict | None = None,
            label: str | None = None) -> dict:
    spec = field_run_spec("skimage:camera", encoding, size=256, split=split, epochs=epochs,
                          threads=threads, compact=compact, precision=precision, scale=scale,
                          seed=seed)
    spec["model"]["adapter_options"] = {**spec["model"].get("adapter_options", {}),
                                        **(options or {})}
    load0 = os.getloadavg()[0]
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = mlplab.train(spec)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    secs = np.cumsum([c["seconds"] for c in result.curves])
    curve = [(float(s), float(c["val_psnr"])) for s, c in zip(secs, result.curves, strict=True)]
    params = result.counts["params"]
    row = {"encoding": label or encoding, "split": split, "compact": compact,
           "precision": precision, "options": spec["model"]["adapter_options"],
           "params": params, "params_per_pixel": round(params / 65536, 3),
           "epochs": result.epochs, "train_seconds": result.timings["train_seconds"],
           "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
           "cpu_per_wall": round(cpu / wall / max(threads, 1), 3), "ms_per_step": round(
               1000 * result.timings["train_seconds"] / (result.epochs * 8 if split == "all"
                                                         else result.epochs * 2), 1),
           "test_psnr": round(result.metrics["test"]["psnr"], 2),
           "best_val_psnr": round(max(v for _, v in curve), 2),
           "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
           "curve": [(round(s, 3), round(v, 3)) for s, v in curve]}
    if scale == "fresh":
        adapter = result.model.adapter
        row["fresh_chosen"] = getattr(adapter, "sigma", None) or adapter.resolutions[-1]
    for level in THRESHOLDS:
        row[f"s_to_{int(level)}"] = seconds_to(curve, level)
        # the same on the CPU-time clock: what an unloaded core would take (the 2 cores are
        # shared, so wall seconds include time this process waited for a core)
        hit = row[f"s_to_{int(level)}"]
        row[f"cpu_s_to_{int(level)}"] = round(hit * row["cpu_per_wall"], 2) if hit else None
    if split != "all":  # val = the held-out pixels; test = the whole image
        row["heldout_psnr_final"] = round(curve[-1][1], 2)
        row["heldout_psnr_best"] = row["best_val_psnr"]
    return row


class NaiveHashGrid(torch.nn.Module):
    """The issue's reference: one Python loop over levels, hashed/dense per level, 64-wide MLP."""

    def __init__(self, levels: int = 16, features: int = 2, log2_table: int = 12,
                 base: float = 16, finest: float = 512) -> None:
        super().__init__()
        growth = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
        self.res = [int(base * growth ** i) for i in range(levels)]
        self.size = 2 ** log2_table
        self.tables = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(self.size, features).uniform_(-1e-4, 1e-4))
             for _ in self.res])
        self.mlp = torch.nn.Sequential(torch.nn.Linear(levels * features, 64), torch.nn.ReLU(),
                                       torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                       torch.nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = (x + 1) / 2
        feats = []
        for res, table in zip(self.res, self.tables, strict=True):
            pos = u * res
            cell = pos.floor().clamp(max=res - 1)
            frac = pos - cell
            c = cell.long()
            acc = 0
            for dx in (0, 1):
                for dy in (0, 1):
                    cx, cy = c[:, 0] + dx, c[:, 1] + dy
                    if (res + 1) ** 2 <= self.size:
                        idx = cx + cy * (res + 1)
                    else:
                        idx = (cx ^ (cy * 2654435761)) % self.size
                    wx = frac[:, 0] if dx else 1 - frac[:, 0]
                    wy = frac[:, 1] if dy else 1 - frac[:, 1]
                    acc = acc + (wx * wy)[:, None] * table[idx]
            feats.append(acc)
        return self.mlp(torch.cat(feats, dim=1))


def naive_run(seconds: float, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    s = load_signal("skimage:camera", size=256)
    x, y = torch.from_numpy(s.coords()), torch.from_numpy(s.flat())
    model = NaiveHashGrid()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    load0 = os.getloadavg()[0]
    spent, curve, step, cpu0 = 0.0, [], 0, time.process_time()
    while spent < seconds:
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        spent += time.perf_counter() - t0
        step += 1
        if step % 10 == 0:
            with torch.no_grad():
                curve.append((spent, psnr(model(x), y)))
    params = sum(p.numel() for p in model.parameters())
    cpu = time.process_time() - cpu0
    row = {"encoding": "naive hashgrid (issue's reference, full batch)", "params": params,
           "cpu_seconds": round(cpu, 1),
           "params_per_pixel": round(params / 65536, 3), "steps": step,
           "train_seconds": round(spent, 2), "ms_per_step": round(1000 * spent / step, 1),
           "test_psnr": round(curve[-1][1], 2), "best_val_psnr": round(max(v for _, v in curve), 2),
           "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
           "curve": [(round(a, 3), round(b, 3)) for a, b in curve]}
    for level in THRESHOLDS:
        row[f"s_to_{int(level)}"] = seconds_to(curve, level)
    return row


def levels_scan(threads: int) -> dict:
    """Hash-grid step time against the number of levels, and the encoding's share of the
    step: `benchmarks/hashgrid_levels.py` (run it alone for its options)."""
    from hashgrid_levels import levels_scan as scan

    return scan(threads)


def plot(results: dict, path: Path) -> None:
    """PSNR against training seconds on this process's CPU-time clock (wall x CPU share: the
    cores were shared) for every encoding (fitting), and the naive reference."""
    from mlplab.fields.plots import save_psnr_curves

    def clocked(row: dict) -> tuple:
        share = row.get("cpu_per_wall") or min(1.0, row.get("cpu_seconds", 0) /
                                                max(row.get("train_seconds", 1), 1e-9)) or 1.0
        secs, values = zip(*row["curve"], strict=True)
        return [t * share for t in secs], list(values)

    curves = {}
    for enc, row in results.get("fit", {}).items():
        curves[f"{enc} ({row['params_per_pixel']:.2f} p/px)"] = clocked(row)
    for row in results.get("naive", {}).values():
        curves["naive hash grid, full batch (2.10 p/px)"] = clocked(row)
    save_psnr_curves(curves, path, marks=THRESHOLDS, xlabel="CPU seconds of training "
                     "(1 thread; wall x CPU share on the shared 2 cores)",
                     title="256 x 256 camera: PSNR against training time, every encoding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/fields.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--naive-seconds", type=float, default=40.0)
    parser.add_argument("--quick", action="store_true", help="hash grid only, fewer epochs")
    parser.add_argument("--only", nargs="*",
                        help="parts: levels naive fit bf16 compact general tuned fresh")
    parser.add_argument("--encodings", nargs="*", help="encodings of fit/compact/general")
    parser.add_argument("--plot", help="only draw PNG from --out's JSON to this path")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(Path(args.out).read_text()), Path(args.plot))
        return
    parts = set(args.only or ["levels", "naive", "fit", "bf16", "compact", "general", "tuned",
                              "fresh"])
    encodings = ("hashgrid",) if args.quick else tuple(args.encodings or ENCODINGS)
    epochs = 10 if args.quick else args.epochs
    out = Path(args.out)
    results: dict = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__}

    def save() -> None:
        out.write_text(json.dumps(results, indent=1))

    def record(key: str, row: dict) -> None:
        results.setdefault(key, {})[row["encoding"]] = row
        save()
        print(key, {k: v for k, v in row.items() if k != "curve"}, flush=True)

    if "levels" in parts:
        results["levels"] = levels_scan(args.threads)
        save()
    if "naive" in parts:
        record("naive", naive_run(args.naive_seconds, args.threads))
    if "fit" in parts:
        for enc in encodings:
            record("fit", one_run(enc, split="all", epochs=epochs, threads=args.threads))
    if "bf16" in parts:
        record("bf16", one_run("hashgrid", split="all", epochs=epochs, threads=args.threads,
                               precision="bf16"))
    if "compact" in parts:
        for enc in encodings:
            record("compact", one_run(enc, split="all", epochs=epochs, threads=args.threads,
                                      compact=True))
    if "general" in parts:
        for enc in encodings:
            record("general", one_run(enc, split="every-second", epochs=4 * epochs,
                                      threads=args.threads))
    if "tuned" in parts:  # the every-second protocol's best found: a smooth multi-level RBF
        record("general", one_run(
            "rbfgrid", split="every-second", epochs=4 * epochs, threads=args.threads,
            options={"levels": 3, "base_resolution": 32, "finest_resolution": 127},
            label="rbfgrid, 3 levels 32..127"))
    if "fresh" in parts:  # FreSh's scale instead of the preset's, every-second protocol
        for enc in ("fourier", "hashgrid"):
            record("general", one_run(enc, split="every-second", epochs=4 * epochs,
                                      threads=args.threads, scale="fresh",
                                      label=f"{enc}, FreSh scale"))


if __name__ == "__main__":
    main()
