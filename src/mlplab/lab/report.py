"""`mlplab report RUN`: a self-contained `report.html` (PNG plots embedded as base64) and a
`report.md` (plots as files under `plots/`), both built from the same tables on the shared
report page (`mlplab.lab.page`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import MlplabError
from mlplab.lab import plots
from mlplab.lab.page import Rows, Section, write_page
from mlplab.lab.results import (
    SweepResults,
    best_search_values,
    load_results,
    scaling_fits,
    summary,
    win_table,
)
from mlplab.lab.scaling import ScalingFit


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and abs(v) < 1e-9:
        return "0"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    return f"{v:.{digits}g}" if abs(v) >= 1e4 or abs(v) < 1e-3 else f"{v:.{digits}f}"


def _pm(mean: float, std: float) -> str:
    return _num(mean) + ("" if std is None or math.isnan(std) else f" ± {std:.4f}")


def pareto_rows(res: SweepResults, table: pd.DataFrame | None = None) -> Rows:
    """The comparison table: family x budget with costs, quality over seeds and frontier marks.

    Marks: `P`/`F`/`T` = on the family's own frontier vs params/FLOPs/train seconds;
    `*` = on the frontier over all families.
    """
    table = summary(res) if table is None else table
    with_loss = res.loss != res.metric
    head = ["family", "budget", "params", "FLOPs/sample", "train s", res.metric,
            *([res.loss] if with_loss else []), "seeds", "frontier"]
    rows = []
    for r in table.itertuples():
        marks = "".join(m + ("*" if getattr(r, f"global_{c}") else "")
                        for m, c in (("P", "params"), ("F", "flops"), ("T", "train_seconds"))
                        if getattr(r, f"front_{c}"))
        rows.append([str(r.family), _num(r.budget), _num(round(r.params)), _num(round(r.flops)),
                     f"{r.train_seconds:.2f}", _pm(r.quality, r.quality_std),
                     *([_pm(r.loss, r.loss_std)] if with_loss else []), str(r.seeds), marks])
    return head, rows


def win_rows(res: SweepResults) -> Rows:
    wins = win_table(res)
    if wins.empty:
        return [], []
    families = [c for c in wins.columns if c not in ("budget", "winner", "margin", "seed wins")
                and not c.endswith(" std")]
    head = ["budget", *families, "winner", "margin", "seed wins"]
    rows = [[_num(r["budget"]), *(_pm(r[f], r[f"{f} std"]) for f in families), str(r["winner"]),
             _num(r["margin"]), str(r["seed wins"])] for _, r in wins.iterrows()]
    counts = wins["winner"].value_counts()
    rows.append(["wins", *(str(int(counts.get(f, 0))) for f in families), "", "", ""])
    return head, rows


def fit_rows(fits: dict[str, ScalingFit | str]) -> Rows:
    head = ["family", "E", "A", "α", "α 90% CI", "E 90% CI", "points"]
    rows = []
    for fam, fit in fits.items():
        if isinstance(fit, str):
            rows.append([fam, "", "", "", "", fit, ""])
            continue
        ci = {k: f"[{_num(lo)}, {_num(hi)}]" for k, (lo, hi) in fit.ci.items()}
        rows.append([fam, _num(fit.E), _num(fit.A), f"{fit.alpha:.3f}", ci.get("alpha", ""),
                     ci.get("E", ""), str(fit.n_points)])
    return head, rows


def frame_rows(frame: pd.DataFrame) -> Rows:
    return list(map(str, frame.columns)), [[_num(v) if isinstance(v, (float, int)) else str(v)
                                            for v in row] for row in frame.itertuples(index=False)]


def findings(res: SweepResults) -> list[str]:
    """Plain sentences: who wins at each budget and who owns the overall frontier."""
    out = []
    wins = win_table(res)
    if not wins.empty:
        counts = wins["winner"].value_counts()
        out.append(f"By {res.metric} (mean over seeds), {counts.index[0]} wins at "
                   f"{counts.iloc[0]} of {len(wins)} matched budgets.")
        for _, r in wins.iterrows():
            spread = r[f"{r['winner']} std"]
            note = " (margin within one seed std)" if not math.isnan(spread) and \
                r["margin"] <= spread else ""
            out.append(f"Budget {_num(r['budget'])}: {r['winner']} {_num(r[r['winner']])}, "
                       f"ahead by {_num(r['margin'])}{note}; best on {r['seed wins']} seeds.")
    table = summary(res)
    if not table.empty:
        front = table[table["global_params"]]
        out.append("Global params-frontier: " + ", ".join(
            f"{r.family} @ {_num(round(r.params))}" for r in front.sort_values("params").itertuples())
            + ".")
    return out


def _environment(res: SweepResults) -> dict[str, Any]:
    t = res.trials
    env = dict(res.info.get("environment", {}))
    env["hosts"] = sorted(h for h in t["host"].dropna().unique()) if "host" in t else []
    done = t[t["status"] == "done"]
    if len(done):
        env["trial wall seconds (sum)"] = round(float(done["wall_seconds"].sum()), 1)
        env["sweep span seconds (first start to last finish)"] = round(
            float(t["finished_at"].max() - t["started_at"].min()), 1)
    env["trials"] = {str(k): int(v) for k, v in t["status"].value_counts().items()}
    env["reclaimed after a lost worker"] = sum(e["kind"] == "reclaimed" for e in res.events)
    env["claims taken over from a live worker (it stopped, recorded nothing)"] = sum(
        e["kind"] == "lost" for e in res.events)
    return env


def build_report(res: SweepResults, out: Path) -> tuple[Path, Path]:
    """Write `report.html`, `report.md` and `plots/*.png` into `out`; returns the two paths."""
    table = summary(res)
    sections: list[tuple[str, Rows | str | None]] = []
    images: dict[str, bytes] = {}
    if not table.empty:
        fits = scaling_fits(res)
        images["pareto"] = plots.pareto_plot(res, table)
        images["scaling"] = plots.scaling_plot(res, fits)
        images["curves"] = plots.curves_plot(res)
        for key in (res.spec.get("search") or {}).get("space") or {}:
            images[f"search-{key}"] = plots.search_plot(res, key)
        sections += [("Findings", "\n".join(f"- {s}" for s in findings(res))),
                     ("Win table at matched budgets", win_rows(res)),
                     ("Pareto table", pareto_rows(res, table)),
                     ("Scaling-law fits: " + res.loss + " = E + A·params^(-α)", fit_rows(fits))]
        tuned = best_search_values(res)
        if not tuned.empty:
            sections.append(("Tuned values (best search trial per family and budget)",
                             frame_rows(tuned)))
    t = res.trials
    failed = t[t["status"] == "failed"]
    if len(failed):
        sections.append(("Failed trials", (["trial", "error"], [
            [str(r.key), str(r.error).splitlines()[0]] for r in failed.itertuples()])))
    spec_text = json.dumps(res.spec, indent=2)
    env_text = json.dumps(_environment(res), indent=2, default=str)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    legend = ("Frontier marks: P/F/T = on the family's Pareto frontier of quality vs params / "
              "FLOPs / train seconds; * = also on the frontier over all families.")

    found = []
    for title, content in sections:
        section = Section(title.split(":")[0].lower().replace(" ", "-"), title)
        if isinstance(content, str):
            section.bullets([line[2:] for line in content.splitlines()])
        elif content is not None:
            section.table(content, keep_empty=True)
        found.append(section)
    if images:
        plotted = Section("plots", "Plots")
        for name, png in images.items():
            plotted.plot(name, png, titled=True)
        found.append(plotted)
    for title, text in (("Spec", spec_text), ("Environment", env_text)):
        section = Section(title.lower(), title)
        section.code(text, "json")
        found.append(section)
    return write_page(out, "report", f"Sweep report: {res.name}", f"Generated {stamp}. {legend}",
                      found)


def report(target: str | Path, *, name: str | None = None, out: str | Path | None = None) -> Path:
    """Write the report of the sweep in `target` (a sweep directory or a store URL), or of the
    single run in `target` (a run directory: see `mlplab.lab.run_report`).

    `out` defaults to the sweep or run directory (or `runs/<name>` for a URL). Returns the
    path of `report.html`.
    """
    from mlplab.lab.run_report import is_run_dir, run_report

    if is_run_dir(target):
        if name is not None:
            raise MlplabError(f"--name picks a sweep in a store, but {str(target)!r} is a "
                              "single run's directory")
        return run_report(target, out=out)
    res = load_results(target, name)
    if out is None:
        out = Path(target) if "://" not in str(target) and Path(target).is_dir() else \
            Path("runs") / res.name
    html_path, _ = build_report(res, Path(out))
    return html_path
