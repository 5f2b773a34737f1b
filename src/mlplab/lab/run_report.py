"""`mlplab report RUN_DIR` for one training run: `curves.png` (train and validation loss, the
monitored validation metric with the best epoch marked, and the learning rate, per epoch),
`report.md` and a self-contained `report.html` (the plot embedded) with the metrics table.

A finished run is read from `metrics.json`; an unfinished one (killed, or still training)
from its latest checkpoint's `state.json`, which holds the curves up to that epoch.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mlplab.errors import MlplabError  # noqa: E402
from mlplab.lab.page import CSS, fmt  # noqa: E402
from mlplab.lab.store import STORE_FILE  # noqa: E402
from mlplab.train import checkpoint as ckpt  # noqa: E402

PAGE = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css }}</style></head>
<body><h1>{{ title }}</h1><p>{{ status }}</p>
{% for name, table in tables %}<h2>{{ name }}</h2>{{ table | safe }}
{% endfor %}<h2>Learning curves</h2><img alt="learning curves" src="data:image/png;base64,{{ png }}">
<h2>Per epoch</h2>{{ epochs | safe }}
<h2>Spec</h2><pre>{{ spec }}</pre></body></html>
""")


@dataclass
class RunRecord:
    """What a run directory says about its training so far."""

    run_dir: Path
    spec: dict[str, Any]
    monitor: str  # the early-stopping metric; curves hold it as `val_<monitor>`
    curves: list[dict[str, Any]]  # one dict per completed epoch
    best_epoch: int
    stopped_early: bool
    summary: dict[str, Any] | None  # metrics.json; None while unfinished

    @property
    def epochs(self) -> int:
        return len(self.curves)

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.run_dir.name)


def is_run_dir(target: str | Path) -> bool:
    """A single run's directory (`spec.json`), not a sweep's (`lab.sqlite`) or a store URL."""
    path = Path(str(target))
    return "://" not in str(target) and (path / "spec.json").is_file() and \
        not (path / STORE_FILE).exists()


def _monitor(run_dir: Path, spec: dict[str, Any]) -> str:
    from mlplab.data.preprocess import TargetCoder
    from mlplab.tasks import make_task

    if not (run_dir / "model.json").is_file():
        raise MlplabError(f"{str(run_dir)!r} is not a run directory (no model.json)")
    coder = TargetCoder.from_dict(ckpt.read_json(run_dir / "model.json")["target"])
    return make_task(coder.kind, coder).check_monitor((spec.get("train") or {}).get("monitor"))


def read_run(run_dir: str | Path) -> RunRecord:
    """The run's spec, curves and (when finished) metrics; `MlplabError` with no epoch done."""
    run_dir = Path(run_dir)
    spec = ckpt.read_json(run_dir / "spec.json")
    monitor = _monitor(run_dir, spec)
    if (run_dir / "metrics.json").is_file():
        summary = ckpt.read_json(run_dir / "metrics.json")
        return RunRecord(run_dir, spec, monitor, summary["curves"], summary["best_epoch"],
                         summary["stopped_early"], summary)
    last = ckpt.latest_checkpoint(run_dir)
    if last is None:
        raise MlplabError(f"run {str(run_dir)!r} has no finished epoch yet (no metrics.json and "
                          "no checkpoint): there is nothing to plot")
    state = ckpt.read_json(last / "state.json")
    return RunRecord(run_dir, spec, monitor, state["curves"], state["best_epoch"],
                     state["stopped_early"], None)


def curves_plot(rec: RunRecord) -> bytes:
    """PNG: losses, `val_<monitor>` (best epoch marked) and lr against the epoch."""
    epochs = [c["epoch"] for c in rec.curves]

    def series(key: str) -> list[float]:
        return [math.nan if c.get(key) is None else float(c[key]) for c in rec.curves]

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    style = "o-" if len(epochs) < 30 else "-"
    loss_ax, metric_ax, lr_ax = axes
    loss_ax.plot(epochs, series("train_loss"), style, ms=3, label="train loss (epoch mean)")
    loss_ax.plot(epochs, series("val_loss"), style, ms=3, label="val loss")
    losses = [v for v in series("train_loss") + series("val_loss") if math.isfinite(v)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        loss_ax.set_yscale("log")
    loss_ax.set_title("loss")
    loss_ax.legend(fontsize=8)
    key = f"val_{rec.monitor}"
    metric_ax.plot(epochs, series(key), style, ms=3, color="C2")
    metric_ax.set_title(f"val {rec.monitor} (best epoch {rec.best_epoch})")
    if rec.best_epoch in epochs:
        metric_ax.plot([rec.best_epoch], [series(key)[epochs.index(rec.best_epoch)]], "*",
                       ms=14, color="C3")
    lr_ax.plot(epochs, series("lr"), style, ms=3, color="C4")
    lr_ax.set_title("learning rate (end of epoch)")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for ax in axes:
        ax.axvline(rec.best_epoch, color="0.6", ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    state = "finished" if rec.summary else f"unfinished, {rec.epochs} epochs so far"
    fig.suptitle(f"{rec.name} ({state})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def metrics_table(rec: RunRecord) -> pd.DataFrame:
    """Split x metric: train/val/test with the best weights, or (unfinished) the validation
    metrics of the best and the last epoch so far."""
    if rec.summary is not None:
        rows = {split: rec.summary[split] for split in ("train", "val", "test")}
    else:
        by_epoch = {c["epoch"]: c for c in rec.curves}
        picks = {f"val, best epoch {rec.best_epoch}": by_epoch.get(rec.best_epoch, {}),
                 f"val, last epoch {rec.epochs}": rec.curves[-1]}
        rows = {label: {k[4:]: v for k, v in c.items() if k.startswith("val_")}
                for label, c in picks.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.rename_axis("split").reset_index()


def cost_table(rec: RunRecord) -> pd.DataFrame:
    """One row: parameters, FLOPs and timings of a finished run (empty while unfinished)."""
    if rec.summary is None:
        return pd.DataFrame()
    c, t = rec.summary["counts"], rec.summary["timings"]
    return pd.DataFrame([{
        "params": c["params"], "trainable": c["trainable_params"],
        "FLOPs/sample": c["flops_per_sample"], "train s": t["train_seconds"],
        "samples/s": t["samples_per_second"], "GFLOP/s": t["gflops_per_second"],
        "best epoch": rec.best_epoch, "epochs": rec.summary["epochs"],
        "stopped early": "yes" if rec.stopped_early else "no"}])


def _markdown(frame: pd.DataFrame) -> str:
    head = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _html(frame: pd.DataFrame) -> str:
    return frame.map(fmt).to_html(index=False, border=0)


def run_report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write `curves.png`, `report.md` and `report.html` for one run into `out` (default: the
    run directory); returns the path of `report.html`."""
    rec = read_run(run_dir)
    out = Path(out) if out is not None else rec.run_dir
    png = curves_plot(rec)
    if rec.summary is not None:
        status = (f"Finished: {rec.epochs} epochs{' (stopped early)' if rec.stopped_early else ''}"
                  f", best epoch {rec.best_epoch} by val {rec.monitor}; metrics with its weights.")
    else:
        status = (f"Unfinished: {rec.epochs} of {rec.spec['train']['epochs']} epochs "
                  f"checkpointed, best so far epoch {rec.best_epoch} by val {rec.monitor}; "
                  f"continue with `mlplab train --resume {rec.run_dir}`.")
    tables = [("Metrics", metrics_table(rec)), ("Model and cost", cost_table(rec))]
    tables = [(name, t) for name, t in tables if not t.empty]
    epochs = pd.DataFrame(rec.curves)
    spec_text = json.dumps(rec.spec, indent=2)
    md = [f"# Run report: {rec.name}\n", f"`{rec.run_dir}`. {status}\n"]
    for name, table in tables:
        md += [f"## {name}\n", _markdown(table)]
    md += ["## Learning curves\n", "![learning curves](curves.png)\n", "## Per epoch\n",
           _markdown(epochs), "## Spec\n", f"```json\n{spec_text}\n```\n"]
    page = PAGE.render(title=f"Run report: {rec.name}", css=CSS, status=f"{rec.run_dir}. {status}",
                       tables=[(name, _html(t)) for name, t in tables], epochs=_html(epochs),
                       png=base64.b64encode(png).decode(), spec=spec_text)
    ckpt.atomic_write_bytes(out / "curves.png", png)
    ckpt.atomic_write_bytes(out / "report.md", "\n".join(md).encode())
    ckpt.atomic_write_bytes(out / "report.html", page.encode())
    return out / "report.html"
