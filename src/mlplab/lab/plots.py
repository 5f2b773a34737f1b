"""Matplotlib figures of a sweep: Pareto frontiers, scaling fits, learning curves, lr search.

Each function returns PNG bytes (Agg backend, no display needed).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlplab.lab.pareto import frontier_of  # noqa: E402
from mlplab.lab.results import COSTS, SweepResults  # noqa: E402
from mlplab.lab.scaling import ScalingFit  # noqa: E402


def png(fig: Figure, *, dpi: int = 110) -> bytes:
    """A figure as PNG bytes (tight bounding box); closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _colors(families: list[str]) -> dict[str, str]:
    """The same colour for a family in every plot (families in sorted order)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {f: cycle[i % len(cycle)] for i, f in enumerate(sorted(families))}


def pareto_plot(res: SweepResults, table: pd.DataFrame) -> bytes:
    """Quality vs params, FLOPs and train seconds: seed means with std bars, frontier lines."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), sharey=True)
    families = list(dict.fromkeys(table["family"]))
    colors = _colors(families)
    hib = res.higher(res.metric)
    for ax, (cost, label) in zip(axes, COSTS.items(), strict=True):
        for fam in families:
            part = table[table["family"] == fam]
            ax.errorbar(part[cost], part["quality"], yerr=part["quality_std"].fillna(0),
                        fmt="o", color=colors[fam], alpha=0.8, capsize=3, label=fam)
            front = frontier_of(part[cost].to_numpy(), part["quality"].to_numpy(),
                                higher_is_better=hib)
            ax.plot(part[cost].to_numpy()[front], part["quality"].to_numpy()[front], "-",
                    color=colors[fam], alpha=0.7)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(res.metric)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{res.name}: quality vs cost (mean ± std over seeds; lines = Pareto frontiers)")
    return png(fig)


def scaling_plot(res: SweepResults, fits: dict[str, ScalingFit | str]) -> bytes:
    """Loss vs params per trial with each family's fitted `E + A N^-alpha`."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs = res.runs
    families = list(dict.fromkeys(runs["family"]))
    colors = _colors(families)
    for fam in families:
        part = runs[runs["family"] == fam]
        ax.scatter(part["params"], part["loss"], color=colors[fam], alpha=0.6, s=18)
        fit = fits.get(fam)
        label = fam
        if isinstance(fit, ScalingFit):
            n = np.geomspace(part["params"].min(), part["params"].max(), 100)
            ax.plot(n, fit.predict(n), color=colors[fam])
            label = f"{fam}: E={fit.E if fit.E > 1e-9 else 0:.3g}, α={fit.alpha:.2f}"
        ax.plot([], [], "o-", color=colors[fam], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("params")
    ax.set_ylabel(res.loss)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("scaling: L(N) = E + A·N^(-α)")
    return png(fig)


def curves_plot(res: SweepResults) -> bytes:
    """Validation monitor per epoch at the largest budget, one line per seed."""
    runs = res.runs
    key = f"val_{res.info['monitor']}"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    families = list(dict.fromkeys(runs["family"]))
    colors = _colors(families)
    top = runs["budget"].max() if runs["budget"].notna().any() else None
    for fam in families:
        part = runs[runs["family"] == fam]
        if top is not None:
            part = part[part["budget"] == top]
        for i, curves in enumerate(part["curves"]):
            epochs = [c["epoch"] for c in curves]
            ax.plot(epochs, [c.get(key, np.nan) for c in curves], color=colors[fam], alpha=0.7,
                    label=fam if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("learning curves" + (f" at budget {top:g}" if top is not None else ""))
    return png(fig)


def search_plot(res: SweepResults, field: str) -> bytes:
    """Each search trial's validation objective against one searched field."""
    t = res.trials
    part = t[(t["kind"] == "search") & (t["status"] == "done")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    families = list(dict.fromkeys(t["family"]))
    colors = _colors(families)
    for fam in families:
        rows = part[part["family"] == fam]
        xs = []
        for spec in rows["spec"]:
            node = spec
            for p in field.split("."):
                node = node[p]
            xs.append(node)
        ax.scatter(xs, rows["objective"], color=colors[fam], alpha=0.7, s=18, label=fam)
    if field.endswith("lr"):
        ax.set_xscale("log")
    ax.set_xlabel(field)
    ax.set_ylabel(f"val.{res.info['monitor']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("search trials (all budgets)")
    return png(fig)
