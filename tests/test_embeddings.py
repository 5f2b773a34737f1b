"""Numeric embeddings: PLR (periodic) and PLE (piecewise-linear) with their bins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mlplab
from mlplab.build import build_model
from mlplab.data.bins import compute_bins, quantile_bins, tree_bins
from mlplab.data.dataset import FeatureSchema
from mlplab.nn.num_embeddings import (
    PeriodicEmbedding,
    PiecewiseLinearEmbedding,
    PiecewiseLinearEncoding,
)
from mlplab.spec import ModelSpec
from mlplab.train.checkpoint import read_json


@pytest.mark.parametrize("lite", [False, True])
def test_plr_shapes_and_gradients(lite: bool) -> None:
    torch.manual_seed(0)
    emb = PeriodicEmbedding(5, 24, n_frequencies=48, sigma=0.01, lite=lite)
    assert emb.frequencies.shape == (5, 48)
    assert emb.frequencies.abs().max() <= 0.03 + 1e-7  # truncated at 3 sigma
    out = emb(torch.randn(7, 5))
    assert out.shape == (7, 5 * 24) and bool((out >= 0).all())  # ReLU
    out.sum().backward()
    assert emb.frequencies.grad is not None and emb.frequencies.grad.abs().sum() > 0


def test_plr_lite_shares_the_linear_map() -> None:
    full = PeriodicEmbedding(5, 24, lite=False)
    lite = PeriodicEmbedding(5, 24, lite=True)
    n_full = sum(p.numel() for p in full.linear.parameters())
    n_lite = sum(p.numel() for p in lite.linear.parameters())
    assert n_full == 5 * n_lite  # one linear (96 -> 24) per feature vs one shared


def test_ple_encoding_values() -> None:
    enc = PiecewiseLinearEncoding([[0.0, 1.0, 2.0, 4.0], [0.0, 10.0]])
    x = torch.tensor([[0.5, 5.0], [3.0, -10.0], [-1.0, 20.0], [9.0, 10.0]])
    out = enc(x)
    assert out.shape == (4, 2, 3)
    # feature 0: first bin unclipped below, middle clipped to [0, 1], last unclipped above
    torch.testing.assert_close(out[0, 0], torch.tensor([0.5, 0.0, 0.0]))
    torch.testing.assert_close(out[1, 0], torch.tensor([1.0, 1.0, 0.5]))
    torch.testing.assert_close(out[2, 0], torch.tensor([-1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[3, 0], torch.tensor([1.0, 1.0, 3.5]))
    # feature 1 has a single bin: linear in x, zero padding after it
    torch.testing.assert_close(out[:, 1, 0], torch.tensor([0.5, -1.0, 2.0, 1.0]))
    assert bool((out[:, 1, 1:] == 0).all())


def test_ple_embedding_starts_linear_and_learns() -> None:
    torch.manual_seed(0)
    emb = PiecewiseLinearEmbedding([[-1.0, 0.0, 1.0], [0.0, 0.5, 1.0, 2.0]], d_embedding=8)
    x = torch.randn(6, 2)
    expected = (x.unsqueeze(-1) * emb.linear_weight + emb.linear_bias).flatten(-2)
    torch.testing.assert_close(emb(x), expected)  # PLE weights start at zero
    emb(x).square().sum().backward()
    assert emb.ple.weight.grad is not None and emb.ple.weight.grad.abs().sum() > 0


def test_bins_constant_columns_ties_and_trees() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=500), np.full(500, 3.0),
                         rng.integers(0, 3, size=500).astype(float)])
    bins = compute_bins(x, 48)
    assert len(bins[0]) == 49 and np.all(np.diff(bins[0]) > 0)
    assert bins[1] == [3.0, 4.0]  # constant column: one bin, no crash
    assert bins[2] == [0.0, 1.0, 2.0]  # ties collapse duplicate quantiles
    y = (x[:, 0] > 0.3).astype(int)
    tree = tree_bins(x[:, 0], y, 48, regression=False)
    assert len(tree) < 10 and any(abs(e - 0.3) < 0.1 for e in tree)  # finds the split
    assert tree_bins(np.full(100, 1.0), y[:100], 8, regression=False) == [1.0, 2.0]
    assert quantile_bins(np.array([1.0, 1.0, 1.0 + 1e-12]), 4)[0] == 1.0
    enc = PiecewiseLinearEncoding(bins)
    assert torch.isfinite(enc(torch.from_numpy(x).float())).all()


def test_ple_model_needs_bins() -> None:
    schema = FeatureSchema(["a", "b"], [], [])
    with pytest.raises(mlplab.SpecError, match="ple"):
        build_model(ModelSpec(num_embeddings="ple"), schema, 1)
    schema.bins = [[0.0, 1.0], [0.0, 0.5, 1.0]]
    model = build_model(ModelSpec(num_embeddings="ple", width=8, depth=1), schema, 1)
    assert model(torch.randn(3, 2)).shape == (3, 1)


@pytest.mark.parametrize("method", ["quantile", "tree"])
def test_ple_run_saves_bins_and_reloads(tmp_path, tiny_spec, method: str) -> None:
    spec = tiny_spec(data={"source": "sklearn:wine"},
                     model={"num_embeddings": "ple", "ple_bins": 8, "ple_method": method},
                     train={"epochs": 2})
    result = mlplab.train(spec, out=tmp_path / "run")
    record = read_json(tmp_path / "run" / "model.json")
    bins = record["schema"]["bins"]
    assert len(bins) == 13 and all(2 <= len(b) <= 9 for b in bins)
    loaded = mlplab.load_run(tmp_path / "run")
    x = torch.randn(4, 13)
    result.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), result.model(x))


def test_plr_spec_trains(tiny_spec) -> None:
    spec = tiny_spec(model={"num_embeddings": "plr-lite", "num_embedding_dim": 8},
                     train={"epochs": 10})
    result = mlplab.train(spec)
    assert result.metrics["test"]["accuracy"] > 0.6


def test_image_adapter_rejects_num_embeddings() -> None:
    schema = FeatureSchema(["p"] * 64, [], [], image_shape=(1, 8, 8))
    with pytest.raises(mlplab.SpecError, match="tabular"):
        build_model(ModelSpec(num_embeddings="plr"), schema, 10)
