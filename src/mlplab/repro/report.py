"""A reproduction's outputs: `verdict.md` (a Jinja2 template over pandas tables),
`verdict.json`, `verdict.png` (each cell's effect per claim) and every part's lab report
under `reports/<part>/`."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from mlplab.repro.base import Part
from mlplab.repro.verdict import CLIP, LEVEL, Comparison, Verdict
from mlplab.train.checkpoint import atomic_write_bytes

TEMPLATE = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True).from_string(
    """# Reproduction: {{ v.name }}

**Paper:** {{ v.paper }}

**Claim:** {{ v.claim }}

**Verdict: {{ v.outcome }}**

## What the paper reports

{% for f in v.figures %}
- {{ f }}
{% endfor %}

## Claims, measured

{{ md(claims) }}
Effect: the mean over all paired runs (same cell, same seed) of the difference in the claim's
direction divided by the cell's pooled seed std, with its {{ level }} t-interval; the claim
agrees when the interval lies above 0, disagrees when below, else it is inconclusive within
noise. Relative: the mean over cells of the difference relative to the other family's mean.

{% for c in v.comparisons %}
### {{ c.claim }}{% if not c.counts %} (extra, not part of the paper's claim){% endif %}


{{ c.outcome }}: effect {{ c.interval() }} seed stds over {{ c.pairs }} pairs{% if c.paper %}; paper: {{ c.paper }}{% endif %}


{{ md(cells(c)) }}
{% endfor %}
## Measured table (test metric, mean ± std over seeds)

{{ md(v.table) }}
![effects per cell](verdict.png)

## Protocol

```json
{{ protocol }}
```

{% for n in v.notes %}
- {{ n }}
{% endfor %}
Each part is a sweep in `lab.sqlite`; its lab report is `reports/<part>/report.html`
(`mlplab compare {{ out }} --name <part>` prints its Pareto table).
""")


def markdown(frame: pd.DataFrame) -> str:
    """A pandas table as a GitHub markdown table (no `tabulate` dependency)."""
    if frame.empty:
        return "_(no finished runs)_\n"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell_text(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell_text(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def claims_table(v: Verdict) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim": c.claim + ("" if c.counts else " (extra)"), "paper": c.paper or "",
        "effect (seed stds)": c.interval(), "relative": _pct(c.relative), "pairs": c.pairs,
        "verdict": c.outcome} for c in v.comparisons])


def cells_table(c: Comparison) -> pd.DataFrame:
    return pd.DataFrame([{
        "cell": x.where, c.better: _pm(x.better_mean, x.better_std),
        c.worse: _pm(x.worse_mean, x.worse_std), "difference": x.difference,
        "seed std": x.spread, "effect": x.effect, "relative": _pct(x.relative),
        "seeds": x.seeds, "means vs 1 seed std": x.mark} for x in c.cells])


def _pct(x: float) -> str:
    return "" if math.isnan(x) else f"{x:+.1%}"


def _pm(mean: float, std: float) -> str:
    return f"{mean:.4g}" + ("" if math.isnan(std) else f" ± {std:.2g}")


def verdict_markdown(v: Verdict) -> str:
    protocol = json.dumps(v.info.get("protocol", {}), indent=2, default=str)
    return TEMPLATE.render(v=v, md=markdown, claims=claims_table(v), cells=cells_table,
                           level=f"{LEVEL:.0%}", protocol=protocol, out=v.info.get("out", "<out>"))


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {"name": v.name, "paper": v.paper, "claim": v.claim, "outcome": v.outcome,
            "comparisons": [{
                "claim": c.claim, "better": c.better, "worse": c.worse, "counts": c.counts,
                "outcome": c.outcome, "effect": c.effect, "low": c.low, "high": c.high,
                "pairs": c.pairs, "relative": c.relative, "paper": c.paper,
                "cells": [dict(vars(x), relative=x.relative) for x in c.cells]}
                for c in v.comparisons],
            "table": v.table.to_dict(orient="records"), "info": v.info}


def effects_plot(v: Verdict) -> bytes:
    """Per claim, each cell's effect (mean standardised paired difference) as a dot, the
    pooled interval as a bar; 0 = no difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in v.comparisons if c.cells]
    n = max(1, len(shown))
    rows = sum(len(c.cells) + 1 for c in shown)
    fig, axes = plt.subplots(n, 1, figsize=(7, 0.8 + 0.22 * rows + 0.6 * n), squeeze=False,
                             gridspec_kw={"height_ratios": [len(c.cells) + 1 for c in shown]
                                          or [1]})
    for ax, c in zip(axes[:, 0], shown, strict=False):
        ys = list(range(len(c.cells)))
        ax.scatter([x.effect for x in c.cells], ys, s=14, color="tab:blue", zorder=3)
        if not math.isnan(c.effect):
            lo = c.low if not math.isnan(c.low) else c.effect
            hi = c.high if not math.isnan(c.high) else c.effect
            ax.errorbar([c.effect], [-1], xerr=[[c.effect - lo], [hi - c.effect]], fmt="D",
                        color="black", capsize=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks([-1, *ys], ["pooled", *[x.where for x in c.cells]], fontsize=7)
        values = [abs(x) for x in (*(x.effect for x in c.cells), c.low, c.high)
                  if not math.isnan(x)]
        edge = min(CLIP, max([2.0, *values]) * 1.15)
        ax.set_xlim(-edge, edge)
        ax.set_title(f"{c.claim}: {c.outcome}", fontsize=9)
        ax.invert_yaxis()
    axes[-1, 0].set_xlabel("effect: paired difference in seed stds (claim direction positive)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(v: Verdict, results: dict[str, Any], parts: list[Part], out: Path, *,
                  reports: bool = True) -> None:
    """`verdict.md`, `verdict.json`, `verdict.png` in `out`; lab reports in `out/reports/`."""
    if reports:
        from scipy.optimize import OptimizeWarning

        from mlplab.lab.report import build_report

        for part in parts:
            res = results.get(part.name)
            if res is not None and not res.runs.empty:
                with warnings.catch_warnings():  # scaling fits over one or two budgets
                    warnings.simplefilter("ignore", OptimizeWarning)
                    build_report(res, out / "reports" / part.name)
    atomic_write_bytes(out / "verdict.png", effects_plot(v))
    atomic_write_bytes(out / "verdict.json", json.dumps(
        _finite(verdict_json(v)), indent=2, default=_json_default).encode())
    atomic_write_bytes(out / "verdict.md", verdict_markdown(v).encode())


def _finite(obj: Any) -> Any:
    """NaN -> None, so verdict.json is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(x) for k, x in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(x) for x in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
