"""Token-mixing blocks (mixer, gmlp, resmlp): axes, widths, init, ensemble axis, units."""

import pytest
import torch

from mlplab.errors import SpecError
from mlplab.nn.mixing import GMLPBlock, MixerBlock, ResMLPBlock
from mlplab.nn.registry import BLOCKS

B, T, D = 3, 5, 8


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["mixer", "gmlp", "resmlp"])
def test_registered_and_shape_preserving(name):
    block = BLOCKS.get(name)(D, tokens=T)
    x = _x(B, T, D)
    assert block(x).shape == (B, T, D)
    assert block(_x(B, 4, T, D)).shape == (B, 4, T, D)  # a TabM member axis at dim 1


@pytest.mark.parametrize("name", ["mixer", "gmlp", "resmlp"])
def test_wrong_shapes_are_refused_clearly(name):
    block = BLOCKS.get(name)(D, tokens=T)
    with pytest.raises(ValueError, match=rf"expects \(batch, {T}, {D}\)"):
        block(_x(B, T + 1, D))
    with pytest.raises(ValueError, match="got \\(3, 8\\)"):
        block(_x(B, D))
    with pytest.raises(SpecError, match="model.block_options.tokens"):
        BLOCKS.get(name)(D)


def test_mixer_widths_follow_the_paper():
    # Mixer-B/16: C = 768, D_S = 384, D_C = 3072 (token hidden is NOT 4 x tokens)
    block = MixerBlock(16, tokens=196)
    assert block.token_fc1.weight.shape == (8, 196)  # D_S = 0.5 * C, over the token axis
    assert block.channel_mlp.fc1.weight.shape == (64, 16)  # D_C = 4 * C, over channels


def test_permuting_tokens_permutes_token_mlp_input_not_channel_mlp():
    torch.manual_seed(0)
    block = MixerBlock(D, tokens=T)
    seen = {}
    block.token_fc1.register_forward_hook(lambda m, i, o: seen.__setitem__("token", i[0]))
    block.channel_mlp.fc1.register_forward_hook(lambda m, i, o: seen.__setitem__("chan", i[0]))
    x = _x(B, T, D)
    perm = torch.tensor([2, 0, 4, 1, 3])
    block(x)
    token_in, chan_in = seen["token"].clone(), seen["chan"].clone()
    block(x[:, perm])
    # the token MLP reads (batch, d, tokens): its input's last axis is permuted
    assert torch.allclose(seen["token"], token_in[..., perm], atol=1e-6)
    # ...while the channel MLP's input (after token mixing) is not just the permuted one
    assert not torch.allclose(seen["chan"], chan_in[:, perm], atol=1e-4)
    # channel mixing acts per token: one token's channel vector is never mixed into another
    block2 = MixerBlock(D, tokens=T)
    with torch.no_grad():
        block2.token_fc2.weight.zero_()
        block2.token_fc2.bias.zero_()  # no token mixing: the block is per-token
    out = block2(x)
    assert torch.allclose(block2(x[:, perm]), out[:, perm], atol=1e-6)
    # with token mixing, the output is not permutation-equivariant
    assert not torch.allclose(block(x[:, perm]), block(x)[:, perm], atol=1e-4)


def test_gmlp_starts_near_identity_gate_and_causal_mask():
    torch.manual_seed(0)
    block = GMLPBlock(D, tokens=T)
    assert torch.all(block.sgu.bias == 1)
    assert block.sgu.weight.abs().max() <= 1e-3 / T
    causal = GMLPBlock(D, tokens=T, causal=True)
    x = _x(B, T, D)
    y = causal(x)
    x2 = x.clone()
    x2[:, -1] = _x(B, D) * 3.0  # change the last token only
    assert torch.allclose(causal(x2)[:, :-1], y[:, :-1], atol=1e-6)  # the past is unaffected
    with torch.no_grad():
        block.sgu.weight.normal_()
    assert not torch.allclose(block(x2)[:, :-1], block(x)[:, :-1], atol=1e-4)


def test_resmlp_affine_and_layerscale():
    block = ResMLPBlock(D, tokens=T, layerscale=0.1)
    assert torch.all(block.ls1 == 0.1) and torch.all(block.aff1.alpha == 1)
    with torch.no_grad():
        block.ls1.zero_()
        block.ls2.zero_()
    x = _x(B, T, D)
    assert torch.equal(block(x), x)  # LayerScale 0: the identity


@pytest.mark.parametrize("unit,options", [("kan", {}), ("moe", {"experts": 2})])
def test_channel_mlp_built_from_the_unit(unit, options):
    from mlplab.nn.registry import UNITS

    block = MixerBlock(D, tokens=T, unit=unit, unit_options=options)
    assert isinstance(block.channel_mlp.fc1, UNITS.get(unit))
    out = block(_x(B, T, D))
    out.sum().backward()
    assert out.shape == (B, T, D)


def test_batchensemble_unit_sees_members_per_token():
    k = 4
    block = MixerBlock(D, tokens=T, unit="batchensemble", unit_options={"k": k})
    with torch.no_grad():
        block.channel_mlp.fc1.r.normal_()
    x = _x(B, 1, T, D).expand(B, k, T, D)
    out = block(x)
    assert out.shape == (B, k, T, D)
    assert not torch.allclose(out[:, 0], out[:, 1])  # members differ through their own r


def test_patch_adapter_makes_row_major_patch_tokens():
    from mlplab.nn.token_adapters import PatchAdapter

    adapter = PatchAdapter((1, 4, 4), patch=2)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    tokens = adapter(x)
    assert adapter.n_tokens == 4 and adapter.d_out == 4 and tokens.shape == (1, 4, 4)
    assert tokens[0, 0].tolist() == [0, 1, 4, 5] and tokens[0, 1].tolist() == [2, 3, 6, 7]
    with pytest.raises(SpecError, match="does not divide the image size 4x4"):
        PatchAdapter((1, 4, 4), patch=3)


@pytest.mark.parametrize("block", ["mixer", "gmlp", "resmlp"])
def test_digits_patches_through_the_spec(block):
    import mlplab
    from mlplab.spec import parse_spec

    spec = parse_spec({"data": {"source": "sklearn:digits"},
                       "model": {"adapter": "patch", "block": block, "width": 16, "depth": 1,
                                 "adapter_options": {"patch": 2}}})
    data = mlplab.build_dataset(spec.data, seed=0)
    model = mlplab.build_model(spec.model, data.schema, 10)
    assert model.adapter.n_tokens == 16 and model.backbone.blocks[0].tokens == 16
    assert model(data.train.x[:5]).shape == (5, 10)


def test_sequence_adapter_checks_the_window():
    from mlplab.nn.token_adapters import SequenceAdapter

    adapter = SequenceAdapter(12, channels=3)
    assert adapter(torch.zeros(2, 12, 3)).shape == (2, 12, 3)
    with pytest.raises(ValueError, match=r"expects \(batch, 12, C\)"):
        adapter(torch.zeros(2, 10, 3))
