"""`mlplab repro hourglass`: the generative digits sources, the verdict from synthetic results
both ways, the depth/width trend, a tiny protocol end to end and (slow) the default one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import mlplab
from mlplab.data.generative import HOLE, INPUTS, PIXELS, load_generative
from mlplab.data.sources import SKLEARN_SETS, known_task
from mlplab.errors import SpecError
from mlplab.repro import AGREES, DISAGREES, OUTCOMES, get
from mlplab.repro.hourglass import shapes, trend

TINY = {"budgets": [2e3, 4e3], "seeds": [0, 1], "search_trials": 1, "depths": [1, 2],
        "epochs": 2, "patience": 2}


# --- the data -------------------------------------------------------------------------------

def test_digits_denoise_is_multi_output_and_drawn_from_the_seed():
    a, b = load_generative("digits-denoise", seed=0), load_generative("digits-denoise", seed=1)
    assert a.target == PIXELS and a.kind == "regression" and len(PIXELS) == 64
    assert list(a.frame.columns) == INPUTS + PIXELS
    pd.testing.assert_frame_equal(a.frame, load_generative("digits-denoise", seed=0).frame)
    assert not np.allclose(a.frame[INPUTS], b.frame[INPUTS])  # another seed, other noise
    np.testing.assert_array_equal(a.frame[PIXELS], b.frame[PIXELS])  # the same clean images
    assert a.frame[INPUTS].to_numpy().min() >= 0 and a.frame[INPUTS].to_numpy().max() <= 1
    assert "digits-denoise" in SKLEARN_SETS and known_task("sklearn:digits-denoise")[0] == \
        "regression"


def test_digits_inpaint_zeroes_one_square_per_image():
    raw = load_generative("digits-inpaint", seed=3)
    x = raw.frame[INPUTS].to_numpy().reshape(-1, 8, 8)
    clean = raw.frame[PIXELS].to_numpy().reshape(-1, 8, 8)
    changed = x != clean
    assert (x[changed] == 0).all()  # only the hole differs, and it is black
    assert changed.reshape(len(x), -1).sum(1).max() <= HOLE * HOLE


def test_copies_keep_every_image_in_one_split():
    raw = load_generative("digits-denoise?copies=3", seed=2)
    n = len(raw.frame) // 3
    assert len(raw.frame) == 3 * n and raw.split is not None
    assert (raw.split.reshape(3, n) == raw.split[:n]).all()  # each copy: its image's split
    assert set(raw.split) == {"train", "val", "test"}
    x = raw.frame[INPUTS].to_numpy().reshape(3, n, 64)
    assert not np.allclose(x[0], x[1])  # another noise draw per copy
    with pytest.raises(mlplab.DataError, match="has no option 'copy'; did you mean 'copies'"):
        load_generative("digits-denoise?copy=2")
    with pytest.raises(mlplab.DataError, match=r"copies='0': expected an integer in \[1, 20\]"):
        load_generative("digits-denoise?copies=0")


def test_a_spec_on_digits_denoise_trains_64_outputs(tmp_path):
    result = mlplab.train({"data": {"source": "sklearn:digits-denoise", "max_rows": 300},
                           "model": {"block": "hourglass", "width": 32, "depth": 1},
                           "train": {"epochs": 2, "patience": None}}, out=tmp_path / "run")
    assert result.model(torch.zeros(2, 64)).shape == (2, 64)
    pred = mlplab.load_run(tmp_path / "run").predict(load_generative("digits-denoise").frame[:5])
    assert pred.shape == (5, 64)
    assert 0 < result.metrics["test"]["rmse"] < 0.5


# --- the verdict from the data ----------------------------------------------------------------

def hourglass_runs(shift: dict[str, float], *, budgets=(1e4, 3e4, 1e5), seeds: int = 3,
                   noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Final runs (as `collect` makes them) with RMSE `base + shift[family] + noise`."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, budget in enumerate(budgets):
        for s in range(seeds):
            split = rng.normal(0, 0.005)
            for fam, delta in shift.items():
                rows.append({"part": f"p-{fam}", "label": "digits-denoise", "family": fam,
                             "budget": budget, "seed": s, "higher": False,
                             "quality": 0.2 - 0.02 * i + split + delta + rng.normal(0, noise),
                             "metric": "test.rmse", "params": budget, "flops": 2 * budget,
                             "train_seconds": 1.0, "domain": "generative", "match": "params"})
    return pd.DataFrame(rows)


def test_verdict_agrees_when_hourglass_is_lower_and_disagrees_when_higher():
    repro = get("hourglass")
    protocol = repro.protocol()
    holds = repro.verdict(hourglass_runs({"standard": 0.0, "hourglass": -0.01}), protocol)
    assert holds.outcome == AGREES and len(holds.comparisons[0].cells) == 3
    fails = repro.verdict(hourglass_runs({"standard": 0.0, "hourglass": 0.01}), protocol)
    assert fails.outcome == DISAGREES
    # the frozen-lift comparison is shown with --full but never counted
    full = repro.verdict(hourglass_runs({"standard": 0.0, "hourglass": -0.01,
                                         "hourglass-frozen": 0.01}), repro.protocol(True))
    assert full.outcome == AGREES and not full.comparisons[1].counts
    assert full.comparisons[1].outcome == DISAGREES


def test_trend_reads_the_searched_depth_and_the_solved_width():
    def table(depths, widths, ratios=(0.25, 0.25, 0.25)):
        return pd.DataFrame({"task": "t", "family": "hourglass", "budget": [1e4, 3e4, 1e5],
                             "depth": depths, "width": widths, "ratio": list(ratios)})

    grows = trend(table([1, 2, 4], [60, 100, 180], (0.5, 0.25, 0.125)))
    assert grows["deeper"] and grows["wider"] and grows["narrower"]
    flat = trend(table([2, 2, 2], [60, 100, 180]))
    assert not flat["deeper"] and flat["wider"] and not flat["narrower"]
    assert not trend(table([4, 2, 4], [60, 50, 180]))["wider"]


def test_protocols_are_valid_sweeps_with_lr_and_depth_searched():
    from mlplab.lab.spec import parse_sweep

    repro = get("hourglass")
    for full in (False, True):
        parts = repro.parts(repro.protocol(full))
        assert {p.tags["group"] for p in parts} == {"standard", "hourglass"}
        for part in parts:
            sweep = parse_sweep(part.sweep)
            assert {"train.lr", "model.depth"} <= set(sweep.search.space)
            assert sweep.budget.kind == "params"
    full = repro.parts(repro.protocol(True))
    assert any("model.ratio" in p.sweep["search"]["space"] for p in full)
    assert any("hourglass-frozen" in p.sweep["family"] for p in full)
    with pytest.raises(SpecError, match="unknown task 'digits-x'"):
        repro.parts(repro.protocol(overrides={"tasks": ["digits-x"]}))


# --- end to end -------------------------------------------------------------------------------

def test_tiny_protocol_writes_the_frontier_and_the_trend(tmp_path):
    out = tmp_path / "hg"
    v = mlplab.repro("hourglass", out=out, protocol=TINY, workers=0, reports=False)
    assert v.outcome in OUTCOMES and v.comparisons[0].pairs == 4
    assert (out / "frontier.png").stat().st_size > 0
    info = json.loads((out / "verdict.json").read_text())["info"]
    assert {r["family"] for r in info["shapes"]} == {"standard", "hourglass"}
    assert set(info["trend"]) == {"deeper", "wider", "narrower", "per_task"}
    text = (out / "verdict.md").read_text()
    assert "best Hourglass per budget" in text and "frontier.png" in text
    from mlplab.lab.results import load_results

    res = load_results(out, v.info["parts"][1])
    table = shapes({v.info["parts"][1]: res}, get("hourglass").parts(
        get("hourglass").protocol(overrides=TINY))[1:2])
    assert set(table["depth"]) <= {1, 2} and (table["width"] > 0).all()


@pytest.mark.slow
def test_default_protocol_computes_a_verdict(tmp_path):
    v = mlplab.repro("hourglass", out=tmp_path / "hg")
    counted = [c for c in v.comparisons if c.counts]
    assert v.outcome in OUTCOMES and counted[0].pairs >= 9 and not np.isnan(counted[0].effect)
    assert "trend" in v.info
