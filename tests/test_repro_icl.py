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
