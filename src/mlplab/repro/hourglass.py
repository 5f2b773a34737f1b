"""`hourglass`: "Rethinking the shape convention of an MLP" (Hourglass MLPs), re-checked.

On a *generative* image task — restoring the bundled 8x8 digits from a corrupted copy
(`sklearn:digits-denoise`, and `digits-inpaint` in the full protocol; 64-pixel multi-output
regression; `copies` corrupted copies of each image, the split fixed per image) — the Hourglass block (wide residual stream, narrow bottleneck, `ratio` 0.25)
against the standard narrow-wide-narrow block (`ratio` 4) on parameter–quality frontiers.
Per family and parameter budget the lab's search (Optuna TPE on the validation RMSE) tunes
the learning rate *and* the depth; the width (the skip stream) is solved for the budget, so
each family's best net at each budget is one point of its frontier, then trained over
several seeds. Quality is the test RMSE per pixel (intensities in [0, 1]).

The counted claim: Hourglass beats standard at matched parameters (the one paired rule,
pooled over budgets). Reported beside it (not counted): whether the best Hourglass nets get
deeper with wider skips as the budget grows, read from the searched depth and the solved
width at each budget; with `frozen = true` also Hourglass with a frozen random lift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import SpecError
from mlplab.repro import register
from mlplab.repro.base import Claim, Part, Reproduction
from mlplab.repro.verdict import Verdict

TASKS = ("digits-denoise", "digits-inpaint")
PAPER = ("Hourglass MLPs reach better quality-per-parameter Pareto frontiers than standard "
         "MLPs on generative image tasks")


@dataclass(frozen=True)
class HourglassProtocol:
    """What `mlplab repro hourglass` runs. `budgets` are total parameter counts; `depths` the
    depths the search may choose; `standard_ratios` / `hourglass_ratios` the hidden/stream
    ratios it may choose per family (one value: fixed, not searched); `tag` suffixes the part
    (sweep) names."""

    tasks: tuple[str, ...] = ("digits-denoise",)
    copies: int = 2  # corrupted copies of every image (split per image: no leak)
    budgets: tuple[float, ...] = (1e4, 3e4, 1e5)
    seeds: tuple[int, ...] = (0, 1, 2)
    search_trials: int = 8
    depths: tuple[int, ...] = (1, 2, 4, 8)
    standard_ratios: tuple[float, ...] = (4.0,)
    hourglass_ratios: tuple[float, ...] = (0.25,)
    lr_low: float = 1e-3
    lr_high: float = 1e-1
    frozen: bool = False
    epochs: int = 25
    patience: int = 8
    batch_size: int = 128
    tag: str = ""


DEFAULT = HourglassProtocol()
FULL = HourglassProtocol(tasks=TASKS, copies=4, budgets=(1e4, 3e4, 1e5, 3e5), seeds=(0, 1, 2, 3, 4),
                         search_trials=16, depths=(1, 2, 3, 4, 6, 8, 12), standard_ratios=(2.0, 4.0),
                         hourglass_ratios=(0.125, 0.25, 0.5), lr_low=3e-4, frozen=True,
                         epochs=60, patience=12, tag="full")


def groups(p: HourglassProtocol) -> list[tuple[str, dict[str, dict[str, Any]], tuple[float, ...]]]:
    """`(group, families, ratios)`: one sweep per group, since each searches its own ratios."""
    hourglass: dict[str, dict[str, Any]] = {"hourglass": {"model.block": "hourglass"}}
    if p.frozen:
        hourglass["hourglass-frozen"] = {"model.block": "hourglass", "model.lift": "frozen"}
    return [("standard", {"standard": {"model.block": "standard"}}, p.standard_ratios),
            ("hourglass", hourglass, p.hourglass_ratios)]


def build(p: HourglassProtocol) -> list[Part]:
    if not p.budgets or not p.depths or not p.seeds:
        raise SpecError("protocol: hourglass needs budgets, depths and seeds")
    if p.search_trials < 1:
        raise SpecError(f"protocol.search_trials: expected >= 1, got {p.search_trials}")
    if not 1 <= p.copies <= 20:
        raise SpecError(f"protocol.copies: expected 1-20, got {p.copies}")
    parts = []
    for task in p.tasks:
        if task not in TASKS:
            raise SpecError(f"protocol.tasks: unknown task {task!r}; choose from "
                            + ", ".join(TASKS))
        for group, fams, ratios in groups(p):
            if not ratios:
                raise SpecError(f"protocol.{group}_ratios: give at least one ratio")
            name = f"hourglass-{task}-{group}" + (f"-{p.tag}" if p.tag else "")
            space: dict[str, Any] = {
                "train.lr": {"low": p.lr_low, "high": p.lr_high, "log": True},
                "model.depth": {"choices": list(p.depths)}}
            model: dict[str, Any] = {"norm": "layernorm"}
            if len(ratios) > 1:
                space["model.ratio"] = {"choices": list(ratios)}
            else:
                model["ratio"] = ratios[0]
            sweep = {
                "name": name, "seeds": list(p.seeds),
                "data": {"source": f"sklearn:{task}"
                         + (f"?copies={p.copies}" if p.copies > 1 else "")},
                "model": model,
                "train": {"batch_size": p.batch_size, "epochs": p.epochs, "patience": p.patience},
                "family": fams,
                "budget": {"params": list(p.budgets), "tolerance": 0.1},
                "search": {"n_trials": p.search_trials, "space": space},
                "analysis": {"metric": "test.rmse"},
            }
            parts.append(Part(name, task, sweep, {"domain": "generative", "match": "params",
                                                  "group": group}))
    return parts


def claims(p: HourglassProtocol) -> list[Claim]:
    out = [Claim("Hourglass beats the standard block at matched parameters", "hourglass",
                 "standard", {"domain": "generative"},
                 "Hourglass frontiers dominate the standard ones on generative image tasks")]
    if p.frozen:
        out.append(Claim("Hourglass with a frozen random lift beats the standard block",
                         "hourglass-frozen", "standard", {"domain": "generative"},
                         "a fixed random input projection keeps Hourglass competitive",
                         counts=False))
    return out


# --- what the searched shapes say ----------------------------------------------------------

def shapes(results: dict[str, Any], parts: list[Part]) -> pd.DataFrame:
    """One row per part x family x budget: the searched depth, ratio and lr, the solved width
    (the skip stream), the blocks' hidden width (Hourglass: its bottleneck), the parameters,
    and the test quality (mean, std over seeds)."""
    rows = []
    for part in parts:
        res = results.get(part.name)
        if res is None or res.runs.empty:
            continue
        for (family, budget), runs in res.runs.groupby(["family", "budget"], sort=True):
            spec = runs["spec"].iloc[0]
            q = runs["quality"].to_numpy(float)
            width, ratio = int(spec["model"]["width"]), spec["model"]["ratio"]
            ratio = float(ratio) if ratio is not None else (4.0 if family == "standard" else 0.25)
            rows.append({"task": part.label, "family": family, "budget": float(budget),
                         "depth": int(spec["model"]["depth"]), "width": width, "ratio": ratio,
                         "hidden": max(1, round(ratio * width)),
                         "lr": float(spec["train"]["lr"]), "params": float(runs["params"].mean()),
                         "rmse": float(q.mean()),
                         "rmse_std": float(q.std(ddof=1)) if len(q) > 1 else math.nan,
                         "seeds": len(q)})
    return pd.DataFrame(rows)


def trend(table: pd.DataFrame, family: str = "hourglass") -> dict[str, Any]:
    """Does the best `family` net get deeper and wider (its skip stream) from the smallest to
    the largest budget, per task, and its bottleneck narrower relative to the stream (a
    smaller searched ratio)? `{"deeper", "wider", "narrower": bool, "per_task": {...}}`."""
    per_task: dict[str, Any] = {}
    for task, rows in table[table["family"] == family].groupby("task", sort=False):
        rows = rows.sort_values("budget")
        depths, widths = rows["depth"].tolist(), rows["width"].tolist()
        ratios = rows["ratio"].tolist()
        per_task[str(task)] = {"budgets": rows["budget"].tolist(), "depths": depths,
                               "widths": widths, "ratios": ratios,
                               "narrower": len(ratios) > 1 and ratios[-1] < ratios[0],
                               "deeper": len(depths) > 1 and depths[-1] > depths[0]
                               and all(b >= a for a, b in zip(depths, depths[1:], strict=False)),
                               "wider": len(widths) > 1
                               and all(b > a for a, b in zip(widths, widths[1:], strict=False))}
    values = list(per_task.values())
    return {key: bool(values) and all(v[key] for v in values)
            for key in ("deeper", "wider", "narrower")} | {"per_task": per_task}


def frontier_plot(table: pd.DataFrame) -> bytes:
    """Test RMSE (mean ± std over seeds) against parameters, one line per family, one panel
    per task; each point labelled with its searched depth."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"])) or ["-"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        part = table[table["task"] == task]
        for family, rows in part.groupby("family", sort=False):
            rows = rows.sort_values("params")
            ax.errorbar(rows["params"], rows["rmse"], yerr=rows["rmse_std"].fillna(0.0),
                        marker="o", capsize=3, label=str(family))
            for _, r in rows.iterrows():
                ax.annotate(f"d{r['depth']}", (r["params"], r["rmse"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test RMSE per pixel (lower is better)")
        ax.set_title(f"{task}: frontier (d = searched depth)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def finish(verdict: Verdict, results: dict[str, Any], parts: list[Part], out: Path) -> None:
    """The shapes table, the depth/width trend and `frontier.png`, into the verdict."""
    from mlplab.train.checkpoint import atomic_write_bytes

    table = shapes(results, parts)
    if table.empty:
        return
    found = trend(table)
    verdict.info["shapes"] = table.replace({np.nan: None}).to_dict(orient="records")
    verdict.info["trend"] = found
    for task, t in found["per_task"].items():
        steps = "; ".join(f"{b:,.0f} params: depth {d}, width {w}, ratio {r:g}" for b, d, w, r
                          in zip(t["budgets"], t["depths"], t["widths"], t["ratios"],
                                 strict=True))
        verdict.notes.append(
            f"{task}, best Hourglass per budget ({steps}): "
            f"{'deeper' if t['deeper'] else 'not deeper'}, "
            f"{'wider skips' if t['wider'] else 'not wider'}"
            + (f", {'narrower' if t['narrower'] else 'not narrower'} bottleneck ratio"
               if len(set(t["ratios"])) > 1 or verdict.info.get("protocol", {}).get(
                   "hourglass_ratios", [0])[1:] else "")
            + " as the budget grows (the search's choice on one seed; not counted in the "
            "verdict)")
    atomic_write_bytes(Path(out) / "frontier.png", frontier_plot(table))
    verdict.notes.append("![parameter-quality frontiers](frontier.png)")


REPRO = register(Reproduction(
    name="hourglass",
    paper="Rethinking the shape convention of an MLP (Hourglass MLPs, 2025)",
    claim="On generative image tasks, Hourglass blocks (wide skip stream, narrow bottleneck) "
          "reach better parameter-quality Pareto frontiers than standard narrow-wide-narrow "
          "blocks, and the best Hourglass nets get deeper with wider skips as budgets grow.",
    figures=(PAPER + " (denoising, super-resolution and generative classification).",
             "As the parameter budget grows, the best Hourglass configurations favour deeper "
             "networks with wider skip connections and narrower bottlenecks.",
             "A fixed random input projection (frozen lift) keeps Hourglass competitive at "
             "lower training cost."),
    minutes=6.7, full_minutes=120.0,
    protocols={"default": DEFAULT, "full": FULL}, build=build, claims=claims, finish=finish))
