"""`mlplab report RUN_DIR`: one run's learning curves (curves.png) and metrics table
(report.md / report.html), for a finished run and for an unfinished one (from its checkpoint)."""

from __future__ import annotations

import base64
import json
import re

import pytest

import mlplab
from mlplab.cli import run
from mlplab.errors import MlplabError, TrainingStopped
from mlplab.lab.run_report import read_run

PNG = b"\x89PNG\r\n\x1a\n"


def stop_after(epochs: int):
    """A trainer stop hook that ends the run once `epochs` epochs are checkpointed."""
    calls = iter(range(10_000))
    return lambda: next(calls) >= epochs


def md_rows(md: str, first: str) -> list[list[str]]:
    """The cells of the markdown table rows starting with `| first`."""
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in md.splitlines() if line.startswith(f"| {first}")]


def test_finished_run_report(tmp_path, tiny_spec, capsys):
    out = tmp_path / "run"
    result = mlplab.train(tiny_spec(), out=out)
    assert run(["report", str(out)]) == 0
    assert "curves.png" in capsys.readouterr().out
    assert (out / "curves.png").read_bytes()[:8] == PNG
    md = (out / "report.md").read_text()
    assert "Finished: 4 epochs" in md and "![learning curves](curves.png)" in md
    head = md_rows(md, "split")[0]
    for split in ("train", "val", "test"):
        (row,) = md_rows(md, split)
        assert row[head.index("accuracy")] == f"{result.metrics[split]['accuracy']:.4f}"
    section = md.split("## Per epoch")[1].split("## Spec")[0]
    epochs, *per_epoch = md_rows(section, "")
    assert [r[0] for r in per_epoch] == ["1", "2", "3", "4"]
    assert [r[epochs.index("val_accuracy")] for r in per_epoch] == [
        f"{c['val_accuracy']:.4f}" for c in result.curves]
    html = (out / "report.html").read_text()
    (src,) = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(src)[:8] == PNG and "<table" in html


def test_unfinished_run_is_plotted_from_its_checkpoint(tmp_path, tiny_spec):
    out = tmp_path / "killed"
    with pytest.raises(TrainingStopped):
        mlplab.train(tiny_spec(), out=out, stop=stop_after(2))
    assert not (out / "metrics.json").exists()
    record = read_run(out)
    assert record.summary is None and [c["epoch"] for c in record.curves] == [1, 2]
    path = mlplab.report(out, out=tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "report.html"
    md = path.with_suffix(".md").read_text()
    assert "Unfinished: 2 of 4 epochs checkpointed" in md and "--resume" in md
    assert [r[0] for r in md_rows(md, "val, ")] == [f"val, best epoch {record.best_epoch}",
                                                    "val, last epoch 2"]
    assert (tmp_path / "elsewhere" / "curves.png").read_bytes()[:8] == PNG
    assert not (out / "report.md").exists()


def test_a_run_without_any_epoch_is_a_clear_error(tmp_path, tiny_spec, capsys):
    out = tmp_path / "early"
    with pytest.raises(TrainingStopped):
        mlplab.train(tiny_spec(), out=out, stop=stop_after(0))
    with pytest.raises(MlplabError, match="has no finished epoch yet"):
        mlplab.report(out)
    assert run(["report", str(out)]) == 2
    assert run(["report", str(out), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "no finished epoch yet" in err and "--name picks a sweep" in err
    assert json.loads((out / "spec.json").read_text())["train"]["epochs"] == 4
    assert not (out / "report.md").exists()
