"""The grid lookup against plain autograd: values and gradients (table and coordinates) for
every row width (word views and the per-feature fallback), fp32 and fp64, both kernels; the
(rows, features) table layout, and old (features, rows) checkpoints still loading."""

from __future__ import annotations

import pytest
import torch
from hashgrid_reference import reference_encoding

from mlplab.nn.grid_lookup import COPY_WORDS, GridLookup
from mlplab.nn.hashgrid import GridEncoding


def plain_lookup(table: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """`sum_c w[c, :, None] * table[idx[c]]`, every op differentiated by autograd."""
    return (w.unsqueeze(-1).to(table.dtype) * table[idx.long()]).sum(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("features", [1, 2, 3, 4, 6])
def test_lookup_matches_plain_autograd(features: int, dtype: torch.dtype) -> None:
    torch.manual_seed(features)
    rows, corners, n = 50, 4, 300  # few rows: many repeated indices, the backward must sum
    table = torch.randn(rows, features, dtype=dtype, requires_grad=True)
    idx = torch.randint(0, rows, (corners, n), dtype=torch.int32)
    w = torch.rand(corners, n, dtype=dtype, requires_grad=True)
    out = GridLookup.apply(table, idx, w)
    ref = plain_lookup(table, idx, w)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    got = torch.autograd.grad(out, (table, w), g)
    want = torch.autograd.grad(ref, (table, w), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    # only the table: the weights' gradient is not computed, and is not asked for
    table_only = torch.autograd.grad(GridLookup.apply(table, idx, w.detach()), table, g)[0]
    torch.testing.assert_close(table_only, want[0])


def test_word_paths_are_bitwise_copies() -> None:
    """Rows moved as int / complex words come back bit for bit (NaN, -0.0, tiny values)."""
    values = torch.tensor([[float("nan"), -0.0], [1e-40, -3.5], [float("inf"), 7.0]])
    assert COPY_WORDS[values.shape[1] * values.element_size()] is torch.int64
    one_hot = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    out = GridLookup.apply(values, one_hot, torch.ones(1, 3))
    assert torch.equal(out.view(torch.int32), values.view(torch.int32))


@pytest.mark.parametrize(("d", "features"), [(1, 2), (2, 2), (2, 1), (2, 4), (3, 3)])
def test_encoding_gradients_match_the_reference(d: int, features: int) -> None:
    torch.manual_seed(d * 10 + features)
    enc = GridEncoding(
        d,
        levels=4,
        features=features,
        log2_table=4 if d == 1 else 8,
        base_resolution=2,
        finest_resolution=30,
        init_scale=1.0,
    )
    assert any(enc.dense_levels) and not all(enc.dense_levels)
    assert enc.table.shape == (sum(enc.sizes), features)  # a row per vertex
    x = (torch.rand(200, d) * 2.2 - 1.1).requires_grad_(True)  # a few clamped onto the grid
    g = torch.randn(200, enc.d_out)
    out = enc(x)
    got = torch.autograd.grad(out, (enc.table, x), g)
    ref = reference_encoding(enc, x)
    want = torch.autograd.grad(ref, (enc.table, x), g)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-4)
    # without coordinate gradients (the in-place weight path) the values are the same
    torch.testing.assert_close(enc(x.detach()), out.detach())


def test_gaussian_kernel_gradients_match_plain_autograd() -> None:
    torch.manual_seed(0)
    enc = GridEncoding(
        2,
        levels=2,
        features=3,
        log2_table=6,
        base_resolution=4,
        finest_resolution=12,
        kernel="gaussian",
        init_scale=1.0,
    )
    x = torch.rand(64, 2) * 2 - 1
    idx, w = enc.lookup_indices(x)
    assert idx.dtype == torch.int32 and idx.shape == (16, 64 * 2)
    out = enc(x)
    ref = plain_lookup(enc.table, idx, w).view(64, enc.d_out)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(out, enc.table, g)[0], torch.autograd.grad(ref, enc.table, g)[0]
    )


def test_old_feature_major_tables_still_load() -> None:
    torch.manual_seed(0)
    enc = GridEncoding(
        2, levels=3, log2_table=6, base_resolution=4, finest_resolution=16, init_scale=1.0
    )
    x = torch.rand(10, 2) * 2 - 1
    old = {"table": enc.table.detach().t().contiguous()}  # (features, rows), as saved before
    fresh = GridEncoding(2, levels=3, log2_table=6, base_resolution=4, finest_resolution=16)
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh(x), enc(x))
    fresh.load_state_dict(enc.state_dict())  # the current layout, unchanged
    torch.testing.assert_close(fresh(x), enc(x))
