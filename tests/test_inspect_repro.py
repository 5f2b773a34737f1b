"""`mlplab repro lazy-neurons` on a tiny protocol: runs, verdict files, reuse on rerun."""

from __future__ import annotations

import json

import pytest

import mlplab
from mlplab.cli import run as cli
from mlplab.errors import SpecError
from mlplab.repro.verdict import OUTCOMES

TINY = {"datasets": ["digits"], "widths": [8, 16], "seeds": [0, 1], "epochs": 2}


def test_lazy_neurons_tiny_protocol(tmp_path, capsys):
    out = tmp_path / "lazy"
    verdict = mlplab.repro("lazy-neurons", out=out, protocol=TINY)
    assert verdict.outcome in OUTCOMES and len(verdict.comparisons) == 2
    falls, sizes = verdict.comparisons
    assert falls.pairs == 4 and [c.where for c in falls.cells] == ["digits @ width 8",
                                                                 "digits @ width 16"]
    assert sizes.better == "width 16" and sizes.worse == "width 8" and sizes.pairs == 2
    assert "3.0%" in falls.paper and "6.3%" in falls.paper and "measured" in falls.claim
    saved = json.loads((out / "verdict.json").read_text())
    assert saved["outcome"] == verdict.outcome
    assert "T5-Base" in (out / "verdict.md").read_text()
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["digits-w16-s0", "digits-w16-s1", "digits-w8-s0", "digits-w8-s1"]
    stamp = (out / "runs" / "digits-w8-s0" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert cli(["repro", "lazy-neurons", "--out", str(out), "--quiet",
                "--set", "datasets=['digits']", "--set", "widths=[8,16]",
                "--set", "seeds=[0,1]", "--set", "epochs=2"]) == 0
    printed = capsys.readouterr().out
    assert "T5-Base" in printed and "verdict:" in printed
    assert (out / "runs" / "digits-w8-s0" / "metrics.json").stat().st_mtime_ns == stamp


def test_lazy_neurons_rejects_unknown_datasets(tmp_path):
    with pytest.raises(SpecError, match="protocol.datasets"):
        mlplab.repro("lazy-neurons", out=tmp_path, protocol={"datasets": ["mnist"]})
