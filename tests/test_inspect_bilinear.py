"""Bilinear decomposition and transcoders (mlplab.inspect.bilinear, .transcoder)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema, Split
from mlplab.errors import SpecError
from mlplab.inspect.bilinear import (
    branch_from_tensor,
    decompose,
    decompose_model,
    input_patterns,
    interaction_tensor,
)
from mlplab.inspect.capture import blocks_of
from mlplab.inspect.transcoder import Reconstruction, Transcoder, train_transcoder
from mlplab.nn.blocks import StandardBlock
from mlplab.spec import parse_spec

SCHEMA = FeatureSchema([f"x{i}" for i in range(6)], [], [])


def _bilinear(norm: str = "layernorm") -> nn.Module:
    spec = parse_spec({"data": {"source": "sklearn:iris"},
                       "model": {"block": "bilinear", "width": 12, "depth": 2, "norm": norm}})
    torch.manual_seed(1)
    return build_model(spec.model, SCHEMA, 4).eval()


@pytest.mark.parametrize("norm", ["layernorm", "none"])
def test_interaction_tensor_reconstructs_the_block_output(norm):
    model = _bilinear(norm)
    for site in blocks_of(model):
        x = torch.randn(50, 12) * 3
        with torch.no_grad():
            branch = site.block(x) - x
            n = site.block.norm(x)
        t, b2 = interaction_tensor(site.block)
        assert torch.allclose(t, t.transpose(1, 2))
        assert torch.allclose(branch_from_tensor(t, b2, n), branch.double(), atol=1e-5)


def test_eigendecomposition_reconstructs_each_direction():
    model = _bilinear()
    site = blocks_of(model)[1]
    u = torch.randn(3, 12)
    dec = decompose(site.block, u, ["a", "b", "c"], site.number)
    x = torch.randn(20, 12)
    with torch.no_grad():
        branch = (site.block(x) - x).double()
        n = site.block.norm(x).double()
    aug = torch.cat([n, torch.ones(20, 1, dtype=torch.float64)], 1)
    _, b2 = interaction_tensor(site.block)
    for i in range(3):  # u·branch = Σ λ (v·ñ)² + u·b2
        proj = aug @ dec.eigenvectors[i]
        got = (proj ** 2 * dec.eigenvalues[i]).sum(1) + u[i].double() @ b2
        assert torch.allclose(got, branch @ u[i].double(), atol=1e-5)
    share = dec.top_share(13)
    assert torch.allclose(share, torch.ones(3, dtype=torch.float64))
    assert (dec.top_share(2) < 1).all()
    vals, vecs = dec.top(0, 2, -1)
    assert vals[0] == dec.eigenvalues[0].min() and vecs.shape == (2, 13)


def test_decompose_model_uses_head_rows_and_maps_to_inputs():
    model = _bilinear()
    decs = decompose_model(model, ["a", "b", "c", "d"])
    assert [d.block for d in decs] == [1, 2] and decs[0].labels == ["a", "b", "c", "d"]
    assert decs[0].eigenvalues.shape == (4, 13)
    pats = input_patterns(model, blocks_of(model)[0], decs[0].top(0, 3, 1)[1])
    assert pats.shape == (3, 6)
    standard = build_model(parse_spec({"data": {"source": "sklearn:iris"}}).model, SCHEMA, 4)
    with pytest.raises(SpecError, match="bilinear"):
        decompose_model(standard)


class _Linear(nn.Module):
    """A model whose only block is linear: `x + W2 W1 x` (identity activation, no norm)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.block = StandardBlock(d, ratio=1.0, activation="identity", norm="none")
        self.head = nn.Linear(d, 1)

    def forward(self, x, x_cat=None):
        return self.head(self.block(x))


def test_transcoder_trained_on_a_linear_block_recovers_it():
    torch.manual_seed(0)
    d = 6
    model = _Linear(d).eval()
    data = type("D", (), {})()
    for name, n in (("train", 512), ("val", 128), ("test", 128)):
        setattr(data, name, Split(torch.randn(n, d), None, torch.randn(n)))
    task = Reconstruction(1, 1.0)  # any task with metrics(out, y) works here
    task.metrics = lambda out, y: {"loss": float(((out.squeeze(-1) - y) ** 2).mean())}
    result = train_transcoder(model, task, data, block=1, expansion=4, k=4, epochs=30,
                              lr=1e-2, batch_size=128, patience=None)
    assert result.fvu < 1e-3 and result.l0 <= 4
    with torch.no_grad():  # the effective map on new inputs matches the block's branch
        x = torch.randn(64, d)
        tc = result.transcoder
        assert torch.allclose(tc(x), model.block(x) - x, atol=0.05)
    intact, replaced = result.intact_metrics["loss"], result.task_metrics["loss"]
    assert replaced == pytest.approx(intact, rel=0.05)


def test_transcoder_topk_bounds_l0_and_checks_k():
    tc = Transcoder(8, 8, expansion=4, k=5)
    z = tc.encode(torch.randn(30, 8))
    assert z.shape == (30, 32) and ((z > 0).sum(1) <= 5).all()
    with pytest.raises(SpecError, match="k"):
        Transcoder(8, 8, expansion=2, k=17)


def test_l1_transcoder_adds_its_penalty_in_training_only():
    tc = Transcoder(4, 4, expansion=2, k=8, l1=0.1)
    with torch.no_grad():
        tc.decoder.weight.fill_(1.0)
    tc.train()
    tc(torch.randn(16, 4))
    assert tc.aux_loss() is not None and float(tc.aux_loss().detach()) > 0
    tc.eval()
    tc(torch.randn(16, 4))
    assert tc.aux_loss() is None
    with pytest.raises(SpecError, match="l1"):
        Transcoder(4, 4, l1=-1.0)


def test_resampling_revives_dead_latents():
    from types import SimpleNamespace

    from mlplab.inspect.resample import ResampleDead

    torch.manual_seed(0)
    x, y = torch.randn(128, 6), torch.randn(128, 6)
    tc = Transcoder(6, 6, expansion=4, k=4)
    tc.fit_input_stats(x, y)
    with torch.no_grad():
        tc.decoder.weight.normal_()
        tc.encoder.bias[:10] = -100.0  # latents 0..9 can never be in the top k
    assert ((tc.encode(x) > 0).sum(0)[:10] == 0).all()
    resets = []
    trainer = SimpleNamespace(model=tc, data=SimpleNamespace(train=Split(x, None, y)),
                              state=SimpleNamespace(epoch=10), spec=SimpleNamespace(epochs=100),
                              reset_optimizer=lambda: resets.append(1))
    hook = ResampleDead(every=10)
    hook.on_epoch_end(trainer)
    fired = (tc.encode(x) > 0).sum(0)
    assert hook.resampled >= 10 and resets == [1] and (tc.encoder.bias[:10] == 0).all()
    assert (fired[:10] > 0).sum() >= 5  # most revived latents now win the top-k somewhere
    trainer.state.epoch = 60  # past `until` (half of training): nothing more happens
    hook.on_epoch_end(trainer)
    assert resets == [1]
