"""The inspect report: `inspect.html` (self-contained, plots embedded), `inspect.md` and
`plots/*.png`, on the shared report page (`mlplab.lab.page`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlplab.inspect import plots
from mlplab.lab.page import Section, write_page
from mlplab.lab.page import fmt as _fmt

if TYPE_CHECKING:
    from mlplab.inspect.api import InspectReport

def _sparsity(r: InspectReport) -> Section:
    s = Section("sparsity", "Activation sparsity")
    smooth = {st.threshold for st in r.block_stats if st.threshold > 0}
    s.text(f"Hidden units of every block on the {r.split} split "
                  f"({r.block_stats[0].examples if r.block_stats else 0} rows). Active: nonzero "
                  "after a ReLU or top-k" + (f", |a| > {min(smooth):g} after a smooth activation"
                                             if smooth else "") +
                  ". frac_active is the mean over examples of the share of units active; dead "
                  "units are active on no row.")
    s.table(r.sparsity)
    s.plot("sparsity", plots.sparsity_plot(r.block_stats))
    if r.tracked is not None and not r.tracked.empty:
        first, last = r.tracked["epoch"].min(), r.tracked["epoch"].max()
        rows = r.tracked[r.tracked["epoch"].isin([first, last])]
        s.text("Tracked during training (inspect.track = \"sparsity\", a fixed probe "
                      f"batch of training rows): epoch {first} and epoch {last} below.")
        s.table(rows[["epoch", "block", "kind", "frac_active", "dead", "units"]])
        s.plot("sparsity_epochs", plots.tracked_plot(r.tracked))
    return s


def _ablation(r: InspectReport) -> Section:
    s = Section("ablation", "Ablation")
    metric = r.ablation.attrs.get("metric", "metric")
    base = r.ablation[r.ablation["block"] == 0].iloc[0]
    s.text(f"Loss and {metric} on the {r.split} split with each block skipped (input "
                  "passed through), zeroed, mean-replaced or applied twice (loop). Intact: "
                  f"loss {_fmt(base['loss'])}, {metric} {_fmt(base['metric'])}. Ranked by the "
                  "loss increase when skipped (zeroed where skipping changes the width).")
    s.table(r.importance)
    s.table(r.ablation)
    s.plot("ablation", plots.ablation_plot(r.ablation))
    return s


def _probes(r: InspectReport) -> Section:
    s = Section("probes", "Linear probes")
    s.text("A linear probe (standardised features; logistic regression or ridge) fit on "
                  f"training rows at the backbone's input (block 0) and after each block, scored"
                  f" on the {r.split} split.")
    s.table(r.probes)
    s.plot("probes", plots.probes_plot(r.probes))
    return s


def _feature_names(r: InspectReport) -> list[str] | None:
    schema = getattr(r.data, "schema", None)
    return list(getattr(schema, "numeric", []) or []) or None


def _image_shape(r: InspectReport) -> tuple[int, ...] | None:
    schema = getattr(r.data, "schema", None)
    shape = getattr(schema, "image_shape", None)
    return tuple(shape) if shape else None


def _bilinear(r: InspectReport) -> Section:
    from mlplab.inspect.bilinear import bilinear_sites, input_patterns

    s = Section("bilinear", "Bilinear decomposition")
    top = r.bilinear_top
    s.text("Each output direction (a head row: one class or output) reads the block's "
                  "branch as a quadratic form of its normed input; its symmetric interaction "
                  "matrix is eigendecomposed. Shown: the top positive and negative eigenvectors "
                  "mapped to input space through the lift (exact for block 1 up to the norm's "
                  f"centring), titled with their eigenvalues; top-{top} share = share of Σλ² in "
                  f"the {top} largest |λ|.")
    sites = {st.number: st for st in bilinear_sites(r.model)}
    rows = []
    for dec in r.bilinear:
        shares = dec.top_share(top).numpy()
        rows += [{"block": dec.block, "direction": label, f"top-{top} share": float(v),
                  "λ max": float(dec.eigenvalues[i].max()),
                  "λ min": float(dec.eigenvalues[i].min())}
                 for i, (label, v) in enumerate(zip(dec.labels, shares, strict=True))]
        half = max(1, top // 2)
        grid = []
        for i, label in enumerate(dec.labels[:10]):
            items = []
            for sign in (1, -1):
                vals, vecs = dec.top(i, half, sign)
                pats = input_patterns(r.model, sites[dec.block], vecs).numpy()
                items += [(float(v), p) for v, p in zip(vals, pats, strict=True)]
            grid.append((label, items))
        s.plot(f"bilinear_block{dec.block}",
               plots.eigen_plot(grid, _image_shape(r), _feature_names(r)))
    s.parts.insert(1, ("table", pd.DataFrame(rows)))
    return s


def _transcoder(r: InspectReport) -> Section:
    t = r.transcoder
    s = Section("transcoder", "Transcoder")
    metric = r.task.monitor
    s.text(f"A sparse transcoder ({t.latents} latents = {t.expansion} x width, {t.sparsity}) "
                  f"trained through the one trainer to reproduce block {t.block}'s map from its "
                  f"input to its branch output on the training rows ({t.epochs} epochs, "
                  f"{t.train_seconds:.1f} s). Held-out ({r.split if r.split == 'test' else 'test'}"
                  f" split): L0 {t.l0:.1f}, variance explained {1 - t.fvu:.1%}; {metric} with "
                  f"the block replaced {_fmt(t.task_metrics.get(metric))} vs "
                  f"{_fmt(t.intact_metrics.get(metric))} intact; {t.dead} dead latents.")
    s.table(pd.DataFrame([t.row()]))
    metrics = pd.DataFrame([{"model": "intact", **t.intact_metrics},
                            {"model": f"block {t.block} -> transcoder", **t.task_metrics}])
    s.table(metrics)
    shape = _image_shape(r)
    if shape is not None and t.top_examples:
        x = r.data.test.x.numpy()
        rows = [(f"latent {j}", np.stack([x[i] for i in idx]))
                for j, idx in zip(t.top_latents, t.top_examples, strict=True)]
        s.text("Top-activating test rows of the most used latents (one row each):")
        s.plot("transcoder_examples", plots.examples_plot(rows, shape))
    elif t.top_examples:
        s.table(pd.DataFrame({"latent": t.top_latents,
                                      "top test rows": [", ".join(map(str, i))
                                                        for i in t.top_examples]}))
    return s


def sections(r: InspectReport) -> list[Section]:
    found = []
    if r.sparsity is not None:
        found.append(_sparsity(r))
    if r.ablation is not None:
        found.append(_ablation(r))
    if r.probes is not None:
        found.append(_probes(r))
    if r.bilinear is not None:
        found.append(_bilinear(r))
    if r.transcoder is not None:
        found.append(_transcoder(r))
    return found


def write_report(r: InspectReport, out: Path) -> Path:
    """`inspect.html`, `inspect.md` and `plots/<name>.png` in `out`; returns the HTML path."""
    found = sections(r)
    where = f"`{r.run_dir}`. " if r.run_dir is not None else ""
    intro = (f"{where}{len(found)} analyses of the trained model: "
             + ", ".join(s.title.lower() for s in found) + ".")
    html_path, _ = write_page(out, "inspect", f"Inspect: {r.name}", intro, found)
    return html_path


def summary_lines(r: InspectReport) -> list[str]:
    """A few lines for the terminal."""
    lines: list[str] = []
    if r.sparsity is not None:
        lines.append("sparsity: " + "; ".join(
            f"block {s.number} {s.frac_active:.1%} active, {s.dead}/{s.units} dead"
            for s in r.block_stats))
    if r.importance is not None:
        top = r.importance.iloc[0]
        lines.append(f"ablation: most important block {int(top['block'])} (loss "
                     f"+{top['importance']:.3g} when skipped)")
    if r.probes is not None:
        lines.append("probes: " + ", ".join(
            f"{'input' if b == 0 else f'block {b}'} {v:.3f}"
            for b, v in zip(r.probes["block"], r.probes["score"], strict=True)))
    if r.bilinear is not None:
        lines.append("bilinear: " + "; ".join(
            f"block {d.block} top-{r.bilinear_top} share "
            f"{float(d.top_share(r.bilinear_top).mean()):.1%} (mean over directions)"
            for d in r.bilinear))
    if r.transcoder is not None:
        t = r.transcoder
        lines.append(f"transcoder: block {t.block}, {t.latents} latents, L0 {t.l0:.1f}, "
                     f"variance explained {1 - t.fvu:.1%} (train {1 - t.fvu_train:.1%}), "
                     f"{t.dead} dead")
    return lines

