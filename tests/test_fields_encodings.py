"""Coordinate encodings: shapes, gradients, the hash grid against a per-level reference, its
indices in range and colliding as the table size says, SIREN's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from hashgrid_reference import reference_encoding

from mlplab.errors import SpecError
from mlplab.nn.encodings import FourierFeatures, PositionalEncoding, SirenInput
from mlplab.nn.hashgrid import GridEncoding, level_resolutions
from mlplab.nn.registry import ADAPTERS, UNITS

ENCODINGS = [("coords", {}), ("fourier", {"n_frequencies": 8}), ("posenc", {"n_frequencies": 4}),
             ("siren", {"n_features": 16}), ("hashgrid", {"levels": 4, "log2_table": 8}),
             ("densegrid", {"base_resolution": 8, "finest_resolution": 8}),
             ("rbfgrid", {"base_resolution": 8, "finest_resolution": 8}),
             ("hashgrid", {"levels": 3, "log2_table": 6, "kernel": "gaussian", "features": 3})]


@pytest.mark.parametrize(("name", "options"), ENCODINGS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_shapes_and_gradients(name: str, options: dict, d: int) -> None:
    torch.manual_seed(0)
    enc = ADAPTERS.get(name)(d, **options)
    x = (torch.rand(37, d) * 2 - 1).requires_grad_(True)
    out = enc(x)
    assert out.shape == (37, enc.d_out) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    (out ** 2).sum().backward()
    params = [p for p in enc.parameters() if p.requires_grad]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="coordinates"):
        enc(torch.zeros(3, d + 1))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_hashgrid_matches_per_level_reference(d: int) -> None:
    torch.manual_seed(1)
    enc = GridEncoding(d, levels=5, features=2, log2_table=4 if d == 1 else 7,
                       base_resolution=2, finest_resolution=40, init_scale=1.0)
    assert any(enc.dense_levels) and not all(enc.dense_levels)  # both kinds are exercised
    x = torch.rand(64, d) * 2.2 - 1.1  # a few outside [-1, 1]: clamped onto the grid
    torch.testing.assert_close(enc(x), reference_encoding(enc, x).detach(), rtol=1e-5, atol=1e-6)


def test_indices_in_range_and_collisions_as_the_table_size_says() -> None:
    enc = GridEncoding(2, levels=4, features=1, log2_table=10, base_resolution=8,
                       finest_resolution=256)
    size = enc.table_size
    for level, res in enumerate(enc.resolutions):
        axis = torch.linspace(-1, 1, res + 1)
        grid = torch.cartesian_prod(axis, axis)  # every vertex of this level, exactly
        idx, w = enc.lookup_indices(grid)
        corners = idx.view(4, len(grid), enc.levels)[:, :, level]
        rows = corners[w.view(4, len(grid), enc.levels)[:, :, level] > 0.5]  # the vertex itself
        lo, n = int(enc.offsets[level]), enc.sizes[level]
        assert int(idx.min()) >= 0 and int(idx.max()) < enc.table.shape[0]
        assert rows.min() >= lo and rows.max() < lo + n
        distinct = rows.unique().numel()
        vertices = (res + 1) ** 2
        if vertices <= size:  # dense: one row per vertex, no collision
            assert enc.dense_levels[level] and n == vertices and distinct == vertices
        else:  # hashed: the table is the limit, and the hash fills nearly all of it
            assert not enc.dense_levels[level] and n == size
            assert 0.9 * size < distinct <= size < vertices


def test_vertex_values_and_parameter_count() -> None:
    enc = GridEncoding(2, levels=3, features=2, log2_table=6, base_resolution=4,
                       finest_resolution=16, init_scale=1.0)
    assert enc.resolutions == level_resolutions(3, 4, 16) == [4, 8, 16]
    assert enc.table.numel() == 2 * (25 + 64 + 64)  # dense 5^2, then two hashed 2^6 levels
    x = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    out = enc(x).view(2, 3, 2)
    torch.testing.assert_close(out[0, 0], enc.table[enc.offsets[0]].detach())
    torch.testing.assert_close(out[1, 0], enc.table[enc.offsets[0] + 24].detach())


def test_coordinate_gradient_matches_finite_differences() -> None:
    torch.manual_seed(0)
    enc = GridEncoding(2, levels=3, log2_table=6, base_resolution=3, finest_resolution=20,
                       init_scale=1.0).double()
    enc.res = enc.res.double()
    x = (torch.rand(5, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: enc(t.float()).double().sum(1), (x,),
                                    eps=1e-4, atol=1e-2)


def test_fourier_and_posenc_frequencies() -> None:
    torch.manual_seed(0)
    ff = FourierFeatures(2, n_frequencies=4000, sigma=3.0)
    assert abs(float(ff.freqs.std()) - 3.0) < 0.1 and ff.d_out == 8000
    pe = PositionalEncoding(2, n_frequencies=4, sigma=16.0)
    torch.testing.assert_close(pe.freqs, torch.tensor([1.0, 2.0, 4.0, 8.0]))
    out = pe(torch.tensor([[0.25, 0.0]]))
    assert out.shape == (1, 16)
    torch.testing.assert_close(out[0, 0], torch.tensor(math.cos(2 * math.pi * 0.25)))


def test_siren_initialisation() -> None:
    torch.manual_seed(0)
    first = SirenInput(2, n_features=256, omega_0=30.0)
    top = float(first.linear.weight.detach().abs().max())
    assert 0.45 < top <= 0.5  # U(-1/d, 1/d) with d = 2
    hidden = UNITS.get("siren")(256, 256, omega_0=30.0)
    bound = math.sqrt(6 / 256) / 30
    top = float(hidden.weight.detach().abs().max())
    assert 0.95 * bound < top <= bound
    x = torch.rand(1000, 2) * 2 - 1
    h = hidden(first(x))
    # SIREN's init keeps the activations arcsine-distributed: std 1/sqrt(2) through depth
    assert 0.6 < float(h.detach().std()) < 0.8
    assert UNITS.get("siren").nonlinear


def test_siren_layers_and_fourier_phases_compute_in_fp32_under_bf16() -> None:
    """bf16 would round `z` in `sin(omega_0 z)` (omega_0 = 30) and the Fourier phases: both
    keep fp32 under autocast, and a model holding a SIREN layer trains with fp32 parameters,
    not bf16 masters."""
    from mlplab.fields.model import field_model
    from mlplab.train.master_weights import unsupported

    torch.manual_seed(0)
    first, hidden = SirenInput(2, n_features=64), UNITS.get("siren")(64, 64)
    x = torch.rand(50, 2) * 2 - 1
    want = hidden(first(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = hidden(first(x))
        linear = torch.nn.functional.linear(first(x), hidden.weight)  # autocast is on here
    assert got.dtype == torch.float32 and linear.dtype == torch.bfloat16
    assert torch.equal(got, want)
    fourier = FourierFeatures(2, n_frequencies=32, sigma=8.0)  # its phases too
    want = fourier(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fourier(x), want)
    model = field_model("siren", 2, 1)
    assert "computes in fp32" in str(unsupported(model, "adamw"))
    assert unsupported(field_model("none", 2, 1), "adamw") is None  # plain ReLU MLP: masters


def test_bad_options_name_the_field() -> None:
    with pytest.raises(SpecError, match="levels"):
        GridEncoding(2, levels=0)
    with pytest.raises(SpecError, match="finest_resolution"):
        GridEncoding(2, base_resolution=32, finest_resolution=16)
    with pytest.raises(SpecError, match="kernel"):
        GridEncoding(2, kernel="cubic")
    with pytest.raises(SpecError, match="sigma"):
        FourierFeatures(2, sigma=-1.0)


def test_grid_tables_get_their_own_learning_rate_and_no_weight_decay() -> None:
    from mlplab.fields.model import field_model
    from mlplab.train.optim import param_groups

    model = field_model("hashgrid", 2, 1, encoding_options={"levels": 2, "lr_scale": 10.0})
    groups = param_groups(model, weight_decay=0.1)
    table = [g for g in groups if any(p is model.adapter.table for p in g["params"])]
    assert len(table) == 1 and table[0]["lr_scale"] == 10.0 and table[0]["weight_decay"] == 0.0
    assert table[0]["params"] == [model.adapter.table]
    decayed = [p for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed and all(p.ndim == 2 for p in decayed)
    plain = field_model("hashgrid", 2, 1, encoding_options={"levels": 2})
    assert all("lr_scale" not in g for g in param_groups(plain, weight_decay=0.1))
    assert not any(p is plain.adapter.table for g in param_groups(plain, 0.1)
                   if g["weight_decay"] > 0 for p in g["params"])
