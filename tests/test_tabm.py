"""TabM: BatchEnsemble units, tabm-mini, ensemble heads and the tasks' ensemble handling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

import mlplab
from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.data.preprocess import TargetCoder
from mlplab.nn.ensemble import (
    BatchEnsembleLinear,
    EnsembleBackbone,
    LinearEnsembleHead,
    ScaleEnsemble,
    init_scaling_,
)
from mlplab.spec import ModelSpec
from mlplab.tasks import Classification, Regression

SCHEMA = FeatureSchema(["a", "b", "c"], ["colour"], [4])


def tabm_spec(**kw) -> ModelSpec:
    base = dict(
        block="plain",
        activation="relu",
        norm="none",
        width=16,
        depth=3,
        dropout=0.1,
        ensemble="tabm",
        k=4,
    )
    return ModelSpec(**{**base, **kw})


def test_batchensemble_matches_k_separate_linear_maps() -> None:
    torch.manual_seed(0)
    layer = BatchEnsembleLinear(5, 3, k=4)
    with torch.no_grad():
        layer.r.normal_()
        layer.s.normal_()
        layer.bias.normal_()
    x = torch.randn(7, 4, 5)
    out = layer(x)
    assert out.shape == (7, 4, 3)
    for i in range(4):
        expected = F.linear(x[:, i] * layer.r[i], layer.weight) * layer.s[i] + layer.bias[i]
        torch.testing.assert_close(out[:, i], expected)


def test_batchensemble_init_and_gradients() -> None:
    torch.manual_seed(0)
    layer = BatchEnsembleLinear(6, 8, k=3)
    assert torch.equal(layer.r, torch.ones(3, 6)) and torch.equal(layer.s, torch.ones(3, 8))
    assert torch.equal(layer.bias[0], layer.bias[2])  # members start with one shared bias
    layer(torch.randn(5, 3, 6)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_scaling_init_random_signs_per_chunk() -> None:
    torch.manual_seed(0)
    r = init_scaling_(torch.empty(16, 6), "random-signs", chunks=[1, 2, 3])
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(r[:, 1], r[:, 2]) and torch.equal(r[:, 3], r[:, 5])
    with pytest.raises(ValueError, match="chunks"):
        init_scaling_(torch.empty(2, 6), "normal", chunks=[1, 2])


def test_tabm_model_shapes_first_layer_random_rest_ones() -> None:
    torch.manual_seed(0)
    model = build_model(tabm_spec(), SCHEMA, d_out=3)
    out = model(torch.randn(5, 3), torch.randint(0, 5, (5, 1)))
    assert out.shape == (5, 4, 3)
    units = [m for m in model.modules() if isinstance(m, BatchEnsembleLinear)]
    assert len(units) == 3
    assert set(units[0].r.unique().tolist()) <= {-1.0, 1.0} and not bool((units[0].r == 1).all())
    for unit in units[1:]:
        assert bool((unit.r == 1).all()) and bool((unit.s == 1).all())
    # one random sign per input feature: the 3-wide colour embedding shares one value
    widths = model.adapter.feature_widths
    assert widths == [1, 1, 1, 3]
    assert bool((units[0].r[:, 3:6] == units[0].r[:, 3:4]).all())
    assert isinstance(model.head, LinearEnsembleHead)


@pytest.mark.parametrize("ensemble", ["tabm", "tabm-mini"])
def test_tabm_onehot_categorical_is_one_scaling_chunk(ensemble: str) -> None:
    # as in the official package: a one-hot column's whole width shares one random sign
    torch.manual_seed(0)
    model = build_model(tabm_spec(ensemble=ensemble, cat_encoding="onehot", k=16), SCHEMA, d_out=2)
    assert model.adapter.feature_widths == [1, 1, 1, 5]
    scaling = (
        model.backbone.scale.weight
        if ensemble == "tabm-mini"
        else next(m for m in model.modules() if isinstance(m, BatchEnsembleLinear)).r
    )
    assert scaling.shape == (16, 8)
    assert bool((scaling[:, 3:] == scaling[:, 3:4]).all())
    assert set(scaling.unique().tolist()) == {-1.0, 1.0}
    assert model(torch.randn(5, 3), torch.randint(0, 5, (5, 1))).shape == (5, 16, 2)


def test_tabm_members_differ_and_all_get_gradients() -> None:
    torch.manual_seed(0)
    model = build_model(tabm_spec(dropout=0.0), SCHEMA, d_out=1)
    out = model(torch.randn(9, 3), torch.randint(0, 5, (9, 1)))
    assert not torch.allclose(out[:, 0], out[:, 1])  # random signs make the members differ
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_tabm_mini_shares_units_and_scales_input() -> None:
    torch.manual_seed(0)
    model = build_model(tabm_spec(ensemble="tabm-mini", k=5), SCHEMA, d_out=2)
    assert not any(isinstance(m, BatchEnsembleLinear) for m in model.modules())
    assert isinstance(model.backbone, EnsembleBackbone)
    assert isinstance(model.backbone.scale, ScaleEnsemble)
    assert model.backbone.scale.weight.shape == (5, model.adapter.d_out)
    out = model(torch.randn(4, 3), torch.randint(0, 5, (4, 1)))
    assert out.shape == (4, 5, 2)


def test_tabm_param_count_is_far_below_k_mlps() -> None:
    mlp = build_model(tabm_spec(ensemble="none", k=None, width=256), SCHEMA, 1)
    tabm = build_model(tabm_spec(width=256, k=32), SCHEMA, 1)
    n_mlp = sum(p.numel() for p in mlp.parameters())
    n_tabm = sum(p.numel() for p in tabm.parameters())
    assert n_mlp < n_tabm < 2 * n_mlp  # 32 members for < 2x the parameters of one


def test_ensemble_over_residual_blocks() -> None:
    model = build_model(tabm_spec(block="standard", norm="layernorm", k=3), SCHEMA, d_out=2)
    assert model(torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long)).shape == (4, 3, 2)


def test_spec_rejects_k_without_ensemble() -> None:
    with pytest.raises(mlplab.SpecError, match="k > 1"):
        mlplab.parse_spec({"data": {"source": "sklearn:iris"}, "model": {"k": 8}})
    assert ModelSpec(ensemble="tabm").n_members == 32 and ModelSpec().n_members == 1


def test_classification_ensemble_loss_is_mean_of_member_losses() -> None:
    torch.manual_seed(0)
    task = Classification(3)
    out, y = torch.randn(6, 4, 3), torch.randint(0, 3, (6,))
    members = torch.stack([F.cross_entropy(out[:, i], y) for i in range(4)])
    torch.testing.assert_close(task.loss(out, y), members.mean())
    probs = out.softmax(-1).mean(1)
    torch.testing.assert_close(task.combine(out).exp(), probs)
    metrics = task.metrics(out, y)
    assert math.isclose(metrics["accuracy"], float((probs.argmax(-1) == y).float().mean()))
    assert math.isclose(metrics["log_loss"], float(F.nll_loss(probs.log(), y)), rel_tol=1e-5)


def test_regression_ensemble_predicts_member_mean_and_weights() -> None:
    torch.manual_seed(0)
    task = Regression(TargetCoder("regression"))
    out, y = torch.randn(5, 3, 1), torch.randn(5)
    torch.testing.assert_close(task.combine(out), out.mean(1))
    torch.testing.assert_close(task.loss(out, y), ((out.squeeze(-1) - y[:, None]) ** 2).mean())
    w = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0])
    per_row = ((out.squeeze(-1) - y[:, None]) ** 2).mean(1)
    torch.testing.assert_close(task.loss(out, y, w), (per_row * w).sum() / w.sum())


def test_train_tabm_from_a_spec(tiny_spec) -> None:
    spec = tiny_spec(
        model={
            "block": "plain",
            "activation": "relu",
            "norm": "none",
            "width": 32,
            "ensemble": "tabm",
            "k": 4,
        },
        train={"epochs": 15},
    )
    result = mlplab.train(spec)
    assert result.metrics["test"]["accuracy"] > 0.8


@pytest.mark.parametrize("preset", [mlplab.TabMClassifier, mlplab.TabMRegressor])
def test_tabm_presets_print_progress_when_verbose(preset, capsys) -> None:
    X = torch.randn(60, 3).numpy()
    y = (X[:, 0] > 0).astype(int) if preset is mlplab.TabMClassifier else X[:, 0]
    preset(k=2, d_block=8, max_epochs=2, verbose=1, random_state=0, threads=1).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    preset(k=2, d_block=8, max_epochs=2, random_state=0, threads=1).fit(X, y)
    assert capsys.readouterr().err == ""


# -- the fused TabM path (nn/ensemble_fused.py) -----------------------------------------------


def _fused_model(d_out: int, *, width: int = 16, k: int = 4, dropout: float = 0.1):
    torch.manual_seed(0)
    model = build_model(tabm_spec(width=width, k=k, dropout=dropout), SCHEMA, d_out=d_out)
    with torch.no_grad():  # members that differ everywhere
        for name, p in model.named_parameters():
            if name.endswith((".r", ".s", "fc.bias")):
                p.normal_()
    return model


def _run(model, *, module_path: bool, bf16: bool = False, seed: int = 1):
    """Outputs and parameter gradients of one forward/backward; `module_path` forces the
    module-by-module path (a forward hook on the backbone turns the fused path off)."""
    handle = model.backbone.register_forward_hook(lambda *a: None) if module_path else None
    x, x_cat = (
        torch.randn(9, 3, generator=torch.Generator().manual_seed(2)),
        torch.randint(0, 5, (9, 1), generator=torch.Generator().manual_seed(3)),
    )
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x, x_cat)
    weights = torch.linspace(-1, 1, out.numel()).view(out.shape)
    (out.float() * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    if handle is not None:
        handle.remove()
    return out, grads


@pytest.mark.parametrize("d_out", [1, 3, 12])
@pytest.mark.parametrize("train", [True, False])
def test_fused_tabm_equals_the_module_path(d_out: int, train: bool) -> None:
    model = _fused_model(d_out)
    model.train(train)
    assert model.backbone.fused_blocks() is not None
    out, grads = _run(model, module_path=False)
    ref_out, ref_grads = _run(model, module_path=True)  # same seed: the same dropout masks
    assert out.shape == (9, 4, d_out)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    for name, g in ref_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
    if train:  # dropout changed something: another seed, other masks
        assert not torch.allclose(_run(model, module_path=False, seed=5)[0], out)


def test_fused_tabm_runs_no_module_forward(monkeypatch) -> None:
    model = _fused_model(2)

    def refuse(*args, **kwargs):
        raise AssertionError("the module path ran")

    monkeypatch.setattr(BatchEnsembleLinear, "forward", refuse)
    assert model(torch.randn(3, 3), torch.zeros(3, 1, dtype=torch.long)).shape == (3, 4, 2)
    with pytest.raises(AssertionError, match="module path"):  # a hook: the module path
        _run(model, module_path=True)


def test_a_backward_hook_on_a_block_fires(monkeypatch) -> None:
    """The fused path has no module backward: a backward hook turns it off, so it fires."""
    model = _fused_model(2)
    seen = []
    block = next(m for m in model.backbone.modules() if isinstance(m, BatchEnsembleLinear))
    block.register_full_backward_hook(lambda *a: seen.append(1))
    out = model(torch.randn(3, 3), torch.zeros(3, 1, dtype=torch.long))
    out.sum().backward()
    assert seen


def test_fused_tabm_only_for_the_plain_batchensemble_mlp() -> None:
    residual = build_model(tabm_spec(block="standard", norm="layernorm", k=3), SCHEMA, 2)
    assert residual.backbone.fused_blocks() is None
    mini = build_model(tabm_spec(ensemble="tabm-mini", k=3), SCHEMA, 2)
    assert mini.backbone.fused_blocks() is None
    gelu = build_model(tabm_spec(activation="gelu"), SCHEMA, 2)
    assert gelu.backbone.fused_blocks() is None


def test_fused_bf16_is_as_close_to_fp32_as_autocast() -> None:
    model = _fused_model(3, width=64, k=8)
    _, ref = _run(model, module_path=True)
    out, fused = _run(model, module_path=False, bf16=True)
    _, autocast = _run(model, module_path=True, bf16=True)
    assert out.dtype == torch.bfloat16

    def err(grads):
        return max(float((grads[n] - g).norm() / g.norm()) for n, g in ref.items())

    assert err(fused) < max(2 * err(autocast), 0.02)


@pytest.mark.parametrize("n_layers", [1, 3])
@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_stack_equals_the_plain_formulation(n_layers: int, input_grad: bool) -> None:
    from mlplab.nn.dropout import keep_bits
    from mlplab.nn.ensemble_fused import tabm_stack

    g = torch.Generator().manual_seed(0)
    batch, k, widths, p = 6, 5, [7, 4, 6, 3][: n_layers + 1], 0.3
    x = torch.randn(batch, widths[0], generator=g, requires_grad=input_grad)
    layers = [
        tuple(
            torch.randn(*shape, generator=g, requires_grad=True)
            for shape in [(d_out, d_in), (k, d_in), (k, d_out), (k, d_out)]
        )
        for d_in, d_out in zip(widths, widths[1:], strict=False)
    ]
    keeps = [keep_bits((batch, k, d), round(p * 2**15), torch.float32) for d in widths[1:]]
    out = tabm_stack(x, layers, keeps, [p] * n_layers)
    ref = x.unsqueeze(1)
    for (w, r, s, b), keep in zip(layers, keeps, strict=True):
        assert 0 < float((keep != 0).float().mean()) < 1
        ref = torch.relu(((ref * r) @ w.T) * s + b) * (keep != 0).float() / (1 - p)
    torch.testing.assert_close(out, ref)
    inputs = ([x] if input_grad else []) + [t for layer in layers for t in layer]
    upstream = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad((out * upstream).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), inputs)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)
    # no dropout: relu of each BatchEnsemble linear
    ref = x.unsqueeze(1)
    for w, r, s, b in layers:
        ref = torch.relu(((ref * r) @ w.T) * s + b)
    torch.testing.assert_close(tabm_stack(x, layers, [None] * n_layers, [0.0] * n_layers), ref)


@pytest.mark.parametrize("d_out", [1, 2, 9, 12])
def test_ensemble_head_equals_einsum(d_out: int) -> None:
    from mlplab.nn.ensemble_fused import ensemble_head

    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, 5, generator=g, requires_grad=True)
    w = torch.randn(3, 5, d_out, generator=g, requires_grad=True)
    b = torch.randn(3, d_out, generator=g, requires_grad=True)
    out, ref = ensemble_head(x, w, b), torch.einsum("bki,kio->bko", x, w) + b
    torch.testing.assert_close(out, ref)
    upstream = torch.randn(out.shape, generator=g)
    for got, want in zip(
        torch.autograd.grad((out * upstream).sum(), (x, w, b)),
        torch.autograd.grad((ref * upstream).sum(), (x, w, b)),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_bit_dropout_masks_values_and_gradients() -> None:
    from mlplab.nn.dropout import BitDropout, keep_bits

    torch.manual_seed(0)
    drop = BitDropout(0.1)
    assert drop.p == 3277 / 2**15  # 0.100006: p as asked, to 1/32768
    for dtype, int_type in [(torch.bfloat16, torch.int16), (torch.float32, torch.int32)]:
        mask = keep_bits((400, 500), drop.threshold, dtype)
        assert mask.dtype == int_type and set(mask.unique().tolist()) == {-1, 0}
        assert abs(float((mask == 0).float().mean()) - drop.p) < 0.005
    assert bool((keep_bits((1000,), 0, torch.float32) == -1).all())  # p = 0: all kept
    x = torch.ones(300, 300, requires_grad=True)
    y = drop(x)
    dropped = y == 0
    assert y.unique().tolist() == pytest.approx([0.0, 1 / (1 - drop.p)])
    y.sum().backward()
    assert torch.equal(x.grad == 0, dropped)  # the gradient is masked like the values
    drop.eval()
    assert drop(x) is x
