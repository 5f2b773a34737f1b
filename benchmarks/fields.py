"""Neural fields on the 256 x 256 camera image: every encoding's PSNR against wall seconds.

Every run goes through `mlplab.train` (the one trainer) with the encoding's preset
(`mlplab.fields.presets`), in this one process, at the same thread count:
- fitting (train on all pixels): PSNR curve, seconds to 30 / 35 / 40 dB, final PSNR, SSIM,
  parameters per pixel; the same at <= 0.5 parameters per pixel (compact presets);
- generalisation (train on every second pixel per axis, test on all): whole-image and
  held-out PSNR of the model the run ends with (its best epoch on a validation 1/16 carved
  from the training pixels: no choice looks at a held-out pixel), the same protocol for every
  encoding, optionally an average of several seeds' fields (`members`), beside bicubic
  interpolation of the same training pixels;
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
from mlplab.fields.domain import grid_masks
from mlplab.fields.metrics import psnr
from mlplab.fields.presets import ENCODINGS, field_run_spec
from mlplab.fields.signals import load_signal

THRESHOLDS = (30.0, 35.0, 40.0)
# every-second protocol, every encoding: 320 passes over the 15,360 training pixels (640
# steps of 8,192), cosine decay of the preset's rate, best validation epoch restored
GENERAL_TRAIN = {"schedule": "cosine", "warmup_epochs": 0.0}
RBF3 = {"levels": 3, "base_resolution": 32, "finest_resolution": 127, "features": 6}
RBF_TV = {**RBF3, "features": 8, "smoothness": 0.01}
TV_LABEL = "rbfgrid, 3 levels, 8 features, output_tv 0.03, lr 5e-3"
TV_RUN = {"task": {"output_tv": 0.03}, "train": {"lr": 5e-3}}
TV_FINAL = {**TV_RUN, "task": {"output_tv": 0.03, "val_fraction": 0}}  # every training pixel
TUNED = {  # label: (encoding, adapter options, members[, {"task", "train", "seed"}])
    "rbfgrid, 3 levels 32..127": ("rbfgrid", RBF3, 1),
    "rbfgrid, 3 levels 32..127, smoothness 0.01": ("rbfgrid", {**RBF3, "smoothness": 0.01}, 1),
    "hashgrid, finest 128": ("hashgrid", {"finest_resolution": 128}, 1),
    "rbfgrid, 3 levels, smoothness 0.01, 8 seeds averaged": (
        "rbfgrid", {**RBF3, "smoothness": 0.01}, 8),
    "rbfgrid, 3 levels, smoothness 0.01, 16 seeds averaged": (
        "rbfgrid", {**RBF3, "smoothness": 0.01}, 16),
    # rbf_width 1.5 chosen on astronaut's validation pixels (26.0 vs 25.7 dB at width 1)
    "rbfgrid, 3 levels, rbf_width 1.5, smoothness 0.01, 8 seeds averaged": (
        "rbfgrid", {**RBF3, "rbf_width": 1.5, "smoothness": 0.01}, 8),
    # output total variation (task.options.output_tv): weight, features and rate chosen by the
    # validation PSNR of the 1/16 held back (scratch scans, camera's val pixels only) ...
    f"{TV_LABEL} (val 1/16)": ("rbfgrid", RBF_TV, 1, TV_RUN),
    # ... then the final fit on the whole training lattice with those settings
    **{f"{TV_LABEL}, val_fraction 0, seed {seed}": ("rbfgrid", RBF_TV, 1, {**TV_FINAL, "seed": seed})
       for seed in range(3)},
    f"{TV_LABEL}, val_fraction 0, 8 seeds averaged": ("rbfgrid", RBF_TV, 8, TV_FINAL),
}
FRESH_GRID = {  # label: (encoding, compact, the `mlplab repro fresh` candidates in run order)
    "fourier (compact)": ("fourier", True, (1.0, 2.0, 4.0, 8.0, 16.0)),
    "fourier": ("fourier", False, (4.0, 8.0, 2.0, 16.0, 1.0)),
}


def seconds_to(curve: list[tuple[float, float]], level: float) -> float | None:
    for secs, value in curve:
        if value >= level:
            return round(secs, 2)
    return None


def one_run(encoding: str, *, split: str, epochs: int, threads: int, compact: bool = False,
            precision: str = "fp32", scale=None, seed: int = 0, options: dict | None = None,
            label: str | None = None, train: dict | None = None, members: int = 1,
            task: dict | None = None) -> dict:
    if members > 1:
        return ensemble_run(encoding, split=split, epochs=epochs, threads=threads, scale=scale,
                            options=options, label=label, train=train, members=members,
                            compact=compact, task=task)
    spec = field_run_spec("skimage:camera", encoding, size=256, split=split, epochs=epochs,
                          threads=threads, compact=compact, precision=precision, scale=scale,
                          seed=seed)
    spec["model"]["adapter_options"] = {**spec["model"].get("adapter_options", {}),
                                        **(options or {})}
    spec["train"].update(train or {})
    spec["task"]["options"].update(task or {})
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
           "train": {k: spec["train"][k] for k in ("lr", "epochs", "schedule", "batch_size")},
           "epochs": result.epochs, "best_epoch": result.best_epoch,
           "train_seconds": result.timings["train_seconds"],
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
        row["fresh"] = {k: v for k, v in spec_fresh(result).items() if k != "inputs"}
    for level in THRESHOLDS:
        row[f"s_to_{int(level)}"] = seconds_to(curve, level)
        # the same on the CPU-time clock: what an unloaded core would take (the 2 cores are
        # shared, so wall seconds include time this process waited for a core)
        hit = row[f"s_to_{int(level)}"]
        row[f"cpu_s_to_{int(level)}"] = round(hit * row["cpu_per_wall"], 2) if hit else None
    if split != "all":  # val = 1/16 of the training lattice; test = the whole image
        pred = whole_image(result.model)
        row["heldout_psnr"] = round(psnr(pred[HELD], TARGET()[HELD]), 2)
        row["val_psnr_best"] = row.pop("best_val_psnr")
        row["prediction"] = pred  # for ensembles; dropped before saving
    return row


def spec_fresh(result) -> dict:
    return result.spec.task.options.get("fresh_result") or {}


HELD = ~grid_masks((256, 256), "every-second")[0]  # the pixels off the training lattice


def TARGET() -> np.ndarray:  # noqa: N802  (a constant, loaded once)
    if not hasattr(TARGET, "value"):
        TARGET.value = load_signal("skimage:camera", size=256).flat()
    return TARGET.value


def whole_image(model: torch.nn.Module) -> np.ndarray:
    """The model's prediction `(65536, C)` on the whole 256 x 256 grid."""
    x = torch.from_numpy(load_signal("skimage:camera", size=256).coords())
    model.eval()
    with torch.inference_mode():
        return model(x).float().clamp(0, 1).numpy()


def ensemble_run(encoding: str, *, members: int, label: str | None, **kw) -> dict:
    """`members` runs with seeds 0..members-1 (each its own init, batches and validation
    1/16, each restored to its own best validation epoch), predictions averaged."""
    rows = [one_run(encoding, seed=seed, label=f"{label or encoding} seed {seed}", **kw)
            for seed in range(members)]
    pred = np.mean([r.pop("prediction") for r in rows], axis=0)
    target = TARGET()
    row = {"encoding": label or encoding, "members": members, "split": kw["split"],
           "options": rows[0]["options"], "train": rows[0]["train"],
           "params": members * rows[0]["params"],
           "params_per_pixel": round(members * rows[0]["params"] / 65536, 3),
           "test_psnr": round(psnr(pred, target), 2),
           "heldout_psnr": round(psnr(pred[HELD], target[HELD]), 2),
           "member_test_psnr": [r["test_psnr"] for r in rows],
           "member_heldout_psnr": [r["heldout_psnr"] for r in rows],
           "member_best_epoch": [r["best_epoch"] for r in rows],
           "cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
           "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
           "ms_per_step": rows[0]["ms_per_step"], "load_before": rows[0]["load_before"],
           "load_after": rows[-1]["load_after"], "curve": rows[0]["curve"]}
    return row


def interpolation_rows() -> dict:
    """Classical references from the same 128 x 128 training pixels: spline interpolation
    (order 1 bilinear, 3 bicubic) on the lattice the pixels sit on (sample i at 2i), and
    `skimage.transform.resize(order=3)` (maps pixel centres, so off by half a pixel here)."""
    from scipy.ndimage import map_coordinates
    from skimage.transform import resize

    img = TARGET().reshape(256, 256, -1)
    known = img[::2, ::2]
    rows = {}
    grid = np.mgrid[0:256, 0:256] / 2.0
    for name, order in (("bilinear", 1), ("bicubic", 3)):
        up = np.stack([map_coordinates(known[..., c], grid, order=order, mode="nearest")
                       for c in range(img.shape[-1])], -1).reshape(-1, img.shape[-1])
        rows[name] = up
    rows["resize(order=3)"] = resize(known, img.shape, order=3, mode="edge",
                                     anti_aliasing=False).reshape(-1, img.shape[-1])
    target = TARGET()
    return {f"{name} interpolation": {
        "encoding": f"{name} interpolation", "test_psnr": round(psnr(up, target), 2),
        "heldout_psnr": round(psnr(up[HELD], target[HELD]), 2)} for name, up in rows.items()}


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
    parser.add_argument("--scales", nargs="*", type=float,
                        help="fresh: only these grid values (the others already measured)")
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
        row.pop("prediction", None)
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
    general = {"split": "every-second", "epochs": 8 * epochs, "threads": args.threads,
               "train": GENERAL_TRAIN}
    if "general" in parts:
        for enc in encodings:
            record("general", one_run(enc, **general))
        results["interpolation"] = interpolation_rows()
        save()
    if "tuned" in parts:  # smooth multi-level grids, finest resolution at the lattice's 128
        for label, (enc, options, members, *more) in TUNED.items():
            if args.encodings and label not in args.encodings:
                continue
            extra = more[0] if more else {}
            run = {**general, "train": {**GENERAL_TRAIN, **extra.get("train", {})}}
            record("general", one_run(enc, options=options, label=label, members=members,
                                      task=extra.get("task"), seed=extra.get("seed", 0),
                                      **run))
    if "fresh" in parts:  # FreSh's scale and the grid over the same candidates
        for name, (enc, compact, values) in FRESH_GRID.items():
            if args.encodings and name not in args.encodings:
                continue
            same = {"compact": compact, "task": {"fresh_candidates": sorted(values)}, **general}
            if not args.scales:
                record("general", one_run(enc, scale="fresh", label=f"{name}, FreSh", **same))
            for value in args.scales or values:
                record("general", one_run(enc, scale=value, label=f"{name}, scale {value:g}",
                                          **same))


if __name__ == "__main__":
    main()
