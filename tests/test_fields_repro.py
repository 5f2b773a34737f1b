"""The field reproductions are registered, build valid sweeps, and judge FreSh against the
grid's best value."""

from __future__ import annotations

import pandas as pd

from mlplab.lab.spec import parse_sweep
from mlplab.repro import get
from mlplab.repro.verdict import AGREES, DISAGREES


def test_fourier_features_protocol_builds_sweeps() -> None:
    repro = get("fourier-features")
    parts = repro.parts(repro.protocol(overrides={"images": ["camera"], "epochs": 2}))
    assert [p.name for p in parts] == ["fourier-features-camera"]
    sweep = parse_sweep(parts[0].sweep)
    assert set(parts[0].sweep["family"]) == {"none", "posenc", "fourier"}
    assert sweep.base.task.kind == "field"
    assert sweep.base.task.options["split"] == "every-second"
    assert [c.better for c in repro.claims(repro.protocol())][:2] == ["posenc", "fourier"]


def _runs(fresh: list[float], best: list[float], other: list[float]) -> pd.DataFrame:
    rows = []
    for fam, values in (("fresh", fresh), ("sigma-4", best), ("sigma-1", other)):
        for seed, q in enumerate(values):
            rows.append({"part": "fresh-camera", "label": "camera", "family": fam,
                         "budget": float("nan"), "seed": seed, "quality": q, "higher": True,
                         "metric": "test.psnr", "params": 1.0, "flops": 1.0,
                         "train_seconds": 1.0, "domain": "image"})
    return pd.DataFrame(rows)


def test_fresh_is_judged_against_the_best_grid_value() -> None:
    repro = get("fresh")
    protocol = repro.protocol(overrides={"images": ["camera"], "candidates": [1.0, 4.0]})
    parts = repro.parts(protocol)
    families = parts[0].sweep["family"]
    assert set(families) == {"sigma-1", "sigma-4", "fresh"}
    assert families["fresh"]["model.adapter_options"]["sigma"] == "fresh"
    assert families["fresh"]["task.options"]["fresh_candidates"] == [1.0, 4.0]
    parse_sweep(parts[0].sweep)
    close = repro.verdict(_runs([30.0, 30.2, 29.9], [30.1, 30.0, 30.2], [25, 25.5, 25.2]),
                          protocol)
    assert close.outcome == AGREES and "camera: sigma-4" in close.comparisons[0].claim
    far = repro.verdict(_runs([26.0, 26.1, 25.9], [30.1, 30.0, 30.2], [25, 25.5, 25.2]),
                        protocol)
    assert far.outcome == DISAGREES
