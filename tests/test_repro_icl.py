"""`mlplab repro icl`: the in-context regression source and a tiny protocol."""

import mlplab


def test_repro_icl_sequences_and_a_small_protocol(tmp_path):
    from mlplab.repro.icl import sequences

    x, y, ridge = sequences(500, 8, 3, 0.1, seed=0)
    assert x.shape == (500, 9, 4) and y.shape == (500, 1) and bool((x[:, -1, -1] == 0).all())
    assert float(((ridge - y) ** 2).mean()) < 0.1  # ridge on 8 pairs in 3-d: near the noise
    verdict = mlplab.repro("icl", out=tmp_path / "icl", protocol={
        "contexts": [4], "seeds": [0], "train": 256, "test": 128, "epochs": 1})
    assert set(verdict.table.columns) >= {"cell", "ridge MSE", "mlp excess",
                                          "transformer excess", "mixer excess"}


def test_repro_icl_solves_each_matched_width_once(monkeypatch):
    """The FLOP-matched widths depend on the shapes only: solved once per context length and
    model, not again for every seed; the table shows mean ± std over the seeds."""
    from mlplab.repro import icl

    calls = []
    solve = icl.matched_width
    monkeypatch.setattr(icl, "matched_width", lambda *a, **k: calls.append(a[0]) or solve(*a, **k))
    runs = icl.measure(icl.ICLProtocol(contexts=(4,), seeds=(0, 1, 2), train=64, test=32,
                                       epochs=1))
    assert len(calls) == 2  # the flat MLP and the Mixer, once each
    assert runs.groupby("family")["width"].nunique().max() == 1 and len(runs) == 9
    assert " ± " in icl.table(runs)["mlp excess"].iloc[0]
