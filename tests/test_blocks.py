"""Model layers: every registered block's shapes and gradients, closed-form parameter counts,
backbone and full-model shapes for the tabular and image adapters, the frozen lift."""

from __future__ import annotations

import pytest
import torch

from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.errors import SpecError
from mlplab.nn import BLOCKS, Backbone, FrozenLinear
from mlplab.nn.blocks import hidden_width
from mlplab.spec import ModelSpec, parse_spec

NORMS = ["layernorm", "batchnorm", "none"]
# token-mixing blocks (mixer, gmlp, resmlp, tsmixer) need (batch, tokens, d): tests/test_mixing.py
FLAT_BLOCKS = [n for n in BLOCKS.names() if not getattr(BLOCKS.get(n), "token_mixing", False)]
RESIDUAL_BLOCKS = [name for name in FLAT_BLOCKS if BLOCKS.get(name).residual]
GATED_BLOCKS = ["glu", "swiglu", "bilinear"]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def norm_params(norm: str, d: int) -> int:
    return 0 if norm == "none" else 2 * d


def test_registry_holds_the_foundation_blocks():
    assert {"standard", "hourglass", "glu", "swiglu", "bilinear", "plain"} <= set(BLOCKS.names())
    with pytest.raises(SpecError, match="model.block: unknown block 'hourglas'; did you mean "
                                        "'hourglass'\\? choose one of"):
        BLOCKS.get("hourglas", field="model.block")


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", FLAT_BLOCKS)
def test_block_shapes_and_gradients(name: str, norm: str):
    torch.manual_seed(0)
    block = BLOCKS.get(name)(12, norm=norm)
    x = torch.randn(5, 3, 12, requires_grad=True)  # (..., d): any leading shape
    out = block(x)
    assert out.shape == (5, 3, 12)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}/{norm}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}/{norm}: {pname} has an all-zero gradient"


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", FLAT_BLOCKS)
def test_block_gradients_match_finite_differences(name: str, norm: str):
    torch.manual_seed(1)
    block = BLOCKS.get(name)(4, norm=norm, ratio=1.5).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", FLAT_BLOCKS)
def test_block_dropout_is_active_in_train_mode_only(name: str):
    torch.manual_seed(0)
    block = BLOCKS.get(name)(16, dropout=0.5)
    x = torch.randn(8, 16)
    block.train()
    assert not torch.equal(block(x), block(x))
    block.eval()
    assert torch.equal(block(x), block(x))


def test_plain_block_maps_d_in_to_d():
    block = BLOCKS.get("plain")(8, d_in=5)
    assert block(torch.randn(3, 5)).shape == (3, 8)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("d,ratio", [(8, None), (12, 2.0), (10, 0.5)])
def test_standard_param_count_closed_form(norm: str, d: int, ratio: float | None):
    block = BLOCKS.get("standard")(d, ratio=ratio, norm=norm)
    h = round((4.0 if ratio is None else ratio) * d)
    assert block.fc1.out_features == h
    # norm (scale + shift) + fc1 d*h+h + fc2 h*d+d
    assert n_params(block) == norm_params(norm, d) + (d * h + h) + (h * d + d)


def test_standard_param_count_worked_example():
    # d = 8, ratio 4, layernorm: 16 + (8*32 + 32) + (32*8 + 8) = 568
    assert n_params(BLOCKS.get("standard")(8)) == 568


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("d,ratio", [(64, None), (32, 0.5), (40, 0.1)])
def test_hourglass_param_count_closed_form(norm: str, d: int, ratio: float | None):
    block = BLOCKS.get("hourglass")(d, ratio=ratio, norm=norm)
    h = round((0.25 if ratio is None else ratio) * d)
    assert h < d  # wide skip, narrow bottleneck
    assert (block.fc1.in_features, block.fc1.out_features) == (d, h)
    assert (block.fc2.in_features, block.fc2.out_features) == (h, d)
    assert n_params(block) == norm_params(norm, d) + (d * h + h) + (h * d + d)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", GATED_BLOCKS)
@pytest.mark.parametrize("d", [9, 24])
def test_gated_param_count_closed_form(name: str, norm: str, d: int):
    block = BLOCKS.get(name)(d, norm=norm)
    h = round(8 / 3 * d)
    assert block.hidden == h
    # norm + fused gate/value d*2h+2h + output h*d+d
    assert n_params(block) == norm_params(norm, d) + (d * 2 * h + 2 * h) + (h * d + d)


def test_hidden_width_is_at_least_one():
    assert hidden_width(3, 0.01) == 1
    assert hidden_width(10, 0.25) == 2  # round(2.5) -> 2 (banker's rounding is fine, just fixed)


@pytest.mark.parametrize("name", FLAT_BLOCKS)
def test_backbone_shapes(name: str):
    torch.manual_seed(0)
    backbone = Backbone(7, block=name, width=16, depth=3)
    out = backbone(torch.randn(5, 7))
    assert out.shape == (5, 16)
    out.sum().backward()
    assert all(p.grad is not None for p in backbone.parameters())


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", RESIDUAL_BLOCKS)
def test_residual_backbone_param_count(name: str, norm: str):
    d_in, width, depth = 7, 16, 3
    backbone = Backbone(d_in, block=name, width=width, depth=depth, norm=norm)
    one_block = n_params(BLOCKS.get(name)(width, norm=norm))
    lift = d_in * width + width
    assert n_params(backbone) == lift + depth * one_block + norm_params(norm, width)


def test_plain_backbone_is_a_classic_mlp():
    d_in, width, depth = 7, 16, 3
    backbone = Backbone(d_in, block="plain", width=width, depth=depth, norm="none")
    expected = (d_in * width + width) + (depth - 1) * (width * width + width)
    assert n_params(backbone) == expected
    assert backbone(torch.randn(4, d_in)).shape == (4, width)
    with pytest.raises(SpecError, match="model.lift"):
        Backbone(d_in, block="plain", lift="frozen")


def test_tabular_model_with_categorical_columns():
    schema = FeatureSchema(["a", "b", "c"], ["u", "v"], [3, 5])
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=16, depth=2), schema, d_out=4)
    # default embedding width min(16, 1 + card // 2): 2 and 3; one extra "unknown" row each
    assert model.adapter.d_out == 3 + 2 + 3
    emb_params = sum(n_params(e) for e in model.adapter.embeddings)
    assert emb_params == (3 + 1) * 2 + (5 + 1) * 3
    x = torch.randn(6, 3)
    x_cat = torch.tensor([[0, 0], [1, 5], [2, 4], [3, 1], [1, 2], [0, 3]])
    out = model(x, x_cat)
    assert out.shape == (6, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # changing only a categorical value changes only that row's output
    x_cat2 = x_cat.clone()
    x_cat2[1, 1] = 2
    with torch.no_grad():
        model.eval()
        a, b = model(x, x_cat), model(x, x_cat2)
    assert not torch.equal(a[1], b[1])
    assert torch.equal(a[[0, 2, 3, 4, 5]], b[[0, 2, 3, 4, 5]])


def test_tabular_model_embedding_dim_from_spec():
    schema = FeatureSchema(["a"], ["u", "v"], [3, 40])
    model = build_model(ModelSpec(width=8, depth=1, cat_embedding_dim=5), schema, d_out=1)
    assert model.adapter.d_out == 1 + 5 + 5


def test_tabular_model_onehot_categoricals_and_unknown_slot():
    schema = FeatureSchema(["a", "b", "c"], ["u", "v"], [3, 5])
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=16, depth=2, cat_encoding="onehot"), schema, d_out=4)
    adapter = model.adapter
    # one-hot width per column: cardinality + the unknown slot; no parameters in the adapter
    assert adapter.feature_widths == [1, 1, 1, 4, 6] and adapter.d_out == 3 + 4 + 6
    assert n_params(adapter) == 0
    x = torch.randn(4, 3)
    x_cat = torch.tensor([[1, 5], [3, 2], [0, 0], [2, 0]])  # 0 = unknown/unseen category
    z = adapter(x, x_cat)
    assert z.shape == (4, 13) and z.dtype == x.dtype
    torch.testing.assert_close(z[:, :3], x)
    assert torch.equal(z[:, 3:7].argmax(1), x_cat[:, 0]) and torch.equal(z[:, 7:].argmax(1),
                                                                         x_cat[:, 1])
    assert torch.equal(z[:, 3:].sum(1), torch.full((4,), 2.0))  # one 1 per column
    assert torch.equal(z[2, 3:], torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0, 0, 0]))
    assert adapter(x.double(), x_cat).dtype == torch.float64  # float64 predict path
    out = model(x, x_cat)
    assert out.shape == (4, 4) and bool(out.isfinite().all())


def test_image_model_flattens():
    schema = FeatureSchema([f"p{i}" for i in range(64)], [], [], (1, 8, 8))
    model = build_model(ModelSpec(width=16, depth=2), schema, d_out=10)
    assert model.adapter.d_out == 64
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_tabular_adapter_on_image_data_flattens_too():
    schema = FeatureSchema([f"p{i}" for i in range(64)], [], [], (1, 8, 8))
    model = build_model(ModelSpec(width=16, depth=1, adapter="tabular"), schema, d_out=10)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_image_adapter_needs_image_data():
    schema = FeatureSchema(["a", "b"], [], [])
    with pytest.raises(SpecError, match="model.adapter"):
        build_model(ModelSpec(adapter="image"), schema, d_out=2)


def test_frozen_lift_gets_no_gradient_and_is_saved():
    torch.manual_seed(0)
    backbone = Backbone(6, block="hourglass", width=32, depth=2, lift="frozen")
    assert isinstance(backbone.lift, FrozenLinear)
    weight = backbone.lift.weight
    assert not weight.requires_grad
    assert all(p is not weight for p in backbone.parameters())
    assert "lift.weight" in backbone.state_dict()
    x = torch.randn(4, 6, requires_grad=True)
    backbone(x).pow(2).sum().backward()
    assert weight.grad is None
    assert x.grad is not None and x.grad.abs().sum() > 0  # the gradient still flows through it
    learned = Backbone(6, block="hourglass", width=32, depth=2)
    assert n_params(learned) - n_params(backbone) == 6 * 32 + 32
    # loading the state dict into a fresh model restores the same random projection
    torch.manual_seed(123)
    fresh = Backbone(6, block="hourglass", width=32, depth=2, lift="frozen")
    assert not torch.equal(fresh.lift.weight, weight)
    fresh.load_state_dict(backbone.state_dict())
    assert torch.equal(fresh.lift.weight, weight)


def test_unknown_unit_options_are_spec_errors():
    with pytest.raises(SpecError, match=r"model.unit_options: unit 'linear': got an unexpected "
                                        r"keyword argument 'foo'"):
        Backbone(4, width=8, depth=1, unit_options={"foo": 1})
    with pytest.raises(SpecError, match=r"model.unit_options: unit 'linear': .*'x'"):
        parse_spec({"data": {"source": "sklearn:iris"},  # refused at spec time, before a build
                    "model": {"block": "plain", "unit_options": {"bias": 1, "x": 2}}})
    no_bias = Backbone(4, width=8, depth=1, unit_options={"bias": False})
    assert no_bias.lift.bias is None and no_bias.blocks[0].fc1.bias is None
