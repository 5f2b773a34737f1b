"""Units beyond Linear (kan, rbf, fan, moe): shapes, gradients, state, every block, grid
refits, sparse dispatch, option errors, the activation rule and auxiliary losses."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from conftest import crash_after_checkpoint
from safetensors.torch import load, save
from torch import nn
from torch.func import functional_call

import mlplab
from mlplab.build import build_model
from mlplab.data import build_dataset
from mlplab.data.dataset import FeatureSchema
from mlplab.errors import SpecError
from mlplab.lab.budget import ModelMeter, solve_spec
from mlplab.nn.aux_loss import aux_modules, total_aux_loss
from mlplab.nn.backbone import Backbone
from mlplab.nn.kan import KANUnit
from mlplab.nn.moe import MoEUnit
from mlplab.nn.registry import BLOCKS, UNITS
from mlplab.nn.splines import basis, data_knots, uniform_knots
from mlplab.spec import ModelSpec
from mlplab.tasks import make_task
from mlplab.train.trainer import Trainer

NEW_UNITS = ["kan", "rbf", "fan", "moe"]
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("kan", {}), ("kan", {"order": 1, "base": "none", "spline_scale": False}),
    ("kan", {"grid": 3, "grid_range": [-2, 2]}),
    ("rbf", {}), ("rbf", {"learnable_centers": True, "base": "none", "n_centers": 3}),
    ("fan", {}), ("fan", {"gated": True, "p_ratio": 0.4}),
    ("moe", {}), ("moe", {"top_k": 2, "experts": 3}), ("moe", {"router": "gumbel"}),
]


def make(name: str, d_in: int, d_out: int, **options: Any) -> nn.Module:
    return UNITS.get(name)(d_in, d_out, **options)


@pytest.mark.parametrize("name,options", VARIANTS)
@pytest.mark.parametrize("bias", [True, False])
def test_shapes_with_any_leading_dims(name, options, bias):
    unit = make(name, 5, 7, bias=bias, **options)
    for lead in [(), (3,), (2, 4), (2, 3, 2)]:  # none, (batch,), TabM's (batch, k), + tokens
        assert unit(torch.randn(*lead, 5)).shape == (*lead, 7)
    if not bias:
        assert not any(n.endswith("bias") for n, _ in unit.named_parameters())


@pytest.mark.parametrize("name,options", VARIANTS)
def test_gradcheck_float64(name, options):
    torch.manual_seed(0)
    unit = make(name, 3, 4, **options).double()
    names = [n for n, _ in unit.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in unit.named_parameters())
    x = (torch.rand(5, 2, 3, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()

    def fn(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):  # the same Gumbel noise at every call
            torch.manual_seed(1)
            return functional_call(unit, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.mark.parametrize("name,options", VARIANTS)
def test_state_dict_round_trip_through_safetensors(name, options):
    torch.manual_seed(0)
    a = make(name, 4, 6, **options).eval()
    if isinstance(a, KANUnit):
        a.update_grid(torch.randn(64, 4))  # moved knots are state too
    torch.manual_seed(1)
    b = make(name, 4, 6, **options).eval()
    x = torch.randn(9, 4)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(load(save({k: v.contiguous() for k, v in a.state_dict().items()})))
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("unit", NEW_UNITS)
@pytest.mark.parametrize("block", [n for n in BLOCKS.names()  # flat blocks: token
                                   if not getattr(BLOCKS.get(n), "token_mixing", False)])  # mixers: test_mixing
def test_every_unit_trains_in_every_block(tiny_spec, unit, block):
    spec = tiny_spec(model={"block": block, "unit": unit}, train={"epochs": 1})
    result = mlplab.train(spec)
    assert result.epochs == 1 and result.counts["flops_per_sample"] > 0
    cls = UNITS.get(unit)
    backbone = result.model.backbone
    lift = backbone.lift.fc if block == "plain" else backbone.lift
    assert isinstance(lift, cls)  # the unit is the lift too
    assert sum(isinstance(m, cls) for m in backbone.blocks.modules()) >= 1


@pytest.mark.parametrize("unit", NEW_UNITS)
def test_units_in_a_tabm_mini_ensemble(tiny_spec, unit):
    spec = tiny_spec(model={"unit": unit, "ensemble": "tabm-mini", "k": 3}, train={"epochs": 1})
    result = mlplab.train(spec)
    assert result.epochs == 1
    x = torch.randn(4, 4)
    assert result.model.eval()(x, None).shape == (4, 3, 3)  # (batch, k, classes)


def test_tabm_with_another_unit_is_refused(tiny_spec):
    with pytest.raises(SpecError, match=r"model.*tabm.*model.unit = 'linear'"):
        mlplab.parse_spec(tiny_spec(model={"unit": "kan", "ensemble": "tabm"}))


# -- activation rule ------------------------------------------------------------------------


def block_acts(spec: ModelSpec) -> list[type]:
    model = build_model(spec, FeatureSchema(["a", "b", "c"], [], []), 2)
    return [type(b.act) for b in model.backbone.blocks]


@pytest.mark.parametrize("block", ["standard", "glu", "swiglu", "plain"])
def test_no_second_activation_after_a_nonlinear_unit(block):
    for unit in ("kan", "rbf", "fan"):
        assert set(block_acts(ModelSpec(block=block, unit=unit, width=8, depth=2))) == {
            nn.Identity}
        assert set(block_acts(ModelSpec(block=block, unit=unit, width=8, depth=2,
                                        activation="relu"))) <= {nn.ReLU, nn.SiLU}
    for unit in ("linear", "moe"):
        expected = nn.SiLU if block == "swiglu" else nn.GELU
        assert set(block_acts(ModelSpec(block=block, unit=unit, width=8, depth=2))) == {expected}


def test_activation_default_round_trips_through_the_saved_spec():
    spec = ModelSpec(unit="kan")
    assert ModelSpec.model_validate(spec.model_dump(mode="json")).activation is None


# -- KAN grids ------------------------------------------------------------------------------


def smooth_kan(d_in: int = 2, d_out: int = 3) -> KANUnit:
    """A KAN whose splines are smooth (coefficients sampled from sines at the Greville points)."""
    torch.manual_seed(0)
    unit = KANUnit(d_in, d_out, grid=5)
    k, order = unit.knots, unit.order
    greville = torch.stack([k[:, j + 1:j + order + 1].mean(-1)
                            for j in range(unit.grid + order)], -1)
    with torch.no_grad():
        scale = torch.linspace(-1.5, 2.0, d_out).view(d_out, 1, 1)
        unit.spline_weight.copy_(torch.sin(3 * greville).unsqueeze(0) * scale)
    return unit


def test_update_grid_moves_knots_to_the_data_and_keeps_the_function():
    unit = smooth_kan()
    x = (torch.randn(2000, 2) * 0.4).clamp(-0.99, 0.99)
    before = unit(x)
    knots = unit.knots.clone()
    unit.update_grid(x)
    after = unit(x)
    inner = unit.knots[:, unit.order: unit.order + unit.grid + 1]
    assert not torch.allclose(knots, unit.knots)
    assert torch.allclose(inner[:, 0], x.min(0).values, atol=0.02)
    assert torch.allclose(inner[:, -1], x.max(0).values, atol=0.02)
    rms = (after - before).pow(2).mean().sqrt() / before.pow(2).mean().sqrt()
    assert rms < 1e-2 and (after - before).abs().max() < 0.05 * before.abs().max()


def test_extend_grid_refines_exactly_and_from_data():
    unit = smooth_kan()
    x = torch.rand(500, 2) * 1.98 - 0.99
    before = unit(x)
    unit.extend_grid(10)  # a uniform grid split in two: the old spline is representable
    assert unit.grid == 10 and unit.spline_weight.shape == (3, 2, 13)
    assert unit.knots.shape == (2, 10 + 2 * 3 + 1)
    assert torch.allclose(unit(x), before, atol=1e-5)
    unit.extend_grid(20, x)
    assert unit.spline_weight.shape == (3, 2, 23)
    assert (unit(x) - before).abs().max() < 1e-2 * before.abs().max()


def test_kan_regularisation_is_an_aux_loss_when_weighted():
    assert KANUnit(3, 2).aux_loss() is None
    unit = KANUnit(3, 2, l1=0.5, entropy=0.1)
    expected = unit.regularization_loss(0.5, 0.1)
    a = unit.scaled_spline_weight().abs().mean(-1)
    p = a / a.sum()
    assert torch.allclose(expected, 0.5 * a.sum() - 0.1 * (p * p.log()).sum())
    assert torch.allclose(unit.aux_loss(), expected)


# -- MoE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 2])
def test_moe_top_k_dispatch_equals_a_dense_reference(top_k):
    torch.manual_seed(0)
    unit = MoEUnit(5, 3, experts=4, top_k=top_k)
    x = torch.randn(2, 10, 5)
    rows = x.reshape(-1, 5)
    probs = (rows @ unit.router_weight.T).softmax(-1)
    gate, idx = probs.topk(top_k, dim=-1)
    if top_k > 1:
        gate = gate / gate.sum(-1, keepdim=True)
    every = torch.einsum("eoi,ni->neo", unit.weight, rows) + unit.bias  # (n, experts, d_out)
    expected = (every[torch.arange(len(rows))[:, None], idx] * gate[..., None]).sum(1)
    assert torch.allclose(unit(x), expected.reshape(2, 10, 3), atol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_moe_unused_experts_do_no_matmul(top_k):
    d_in, d_out, experts = 6, 5, 4
    counts = mlplab.count(MoEUnit(d_in, d_out, experts=experts, top_k=top_k), torch.randn(32, d_in))
    assert counts["matmul_flops_per_sample"] == 2 * d_in * experts + top_k * 2 * d_in * d_out


def test_moe_gumbel_gate_is_random_in_training_and_the_softmax_at_eval():
    torch.manual_seed(0)
    unit = MoEUnit(4, 3, router="gumbel", experts=3)
    x = torch.randn(8, 4)
    assert not torch.allclose(unit(x), unit(x))
    unit.eval()
    gate = (x @ unit.router_weight.T).softmax(-1)
    every = torch.einsum("eoi,ni->neo", unit.weight, x) + unit.bias
    assert torch.allclose(unit(x), (gate[..., None] * every).sum(1), atol=1e-6)


def test_moe_balance_loss_is_the_switch_loss_of_the_last_training_pass():
    torch.manual_seed(0)
    unit = MoEUnit(4, 3, experts=4, balance=0.5)
    x = torch.randn(64, 4)
    unit(x)
    probs = (x @ unit.router_weight.T).softmax(-1)
    share = torch.bincount(probs.argmax(-1), minlength=4).float() / 64
    assert torch.allclose(unit.aux_loss(), 0.5 * 4 * (share * probs.mean(0)).sum())
    assert unit.aux_loss() is None  # handed out once
    unit.eval()
    unit(x)
    assert unit.aux_loss() is None  # only training passes balance


# -- auxiliary losses in the one trainer ----------------------------------------------------


def test_total_aux_loss_sums_contributors_found_once():
    model = nn.Sequential(KANUnit(3, 4, l1=1.0), nn.GELU(), MoEUnit(4, 2, balance=1.0),
                          KANUnit(2, 2))
    assert len(aux_modules(model)) == 3 and aux_modules(model) is aux_modules(model)
    model(torch.randn(16, 3))
    moe_term = model[2]._aux
    assert torch.allclose(total_aux_loss(model), model[0].aux_loss() + moe_term)
    assert total_aux_loss(nn.Linear(2, 2)) is None


def first_step_grad(tiny_spec, unit_options: dict[str, Any]) -> torch.Tensor:
    spec = mlplab.parse_spec(tiny_spec(
        model={"block": "plain", "unit": "kan", "width": 8, "depth": 1,
               "unit_options": unit_options},
        train={"epochs": 1, "batch_size": 1000, "grad_clip": None, "warmup_epochs": 0}))
    data = build_dataset(spec.data, task_kind="auto", seed=0)
    task = make_task(data.target.kind, data.target)
    torch.manual_seed(0)
    model = build_model(spec.model, data.schema, task.d_out)
    kan = model.backbone.lift.fc
    grads: list[torch.Tensor] = []
    kan.spline_weight.register_hook(lambda g: grads.append(g.clone()))
    Trainer(model, task, data, spec.train, quiet=True).fit()
    assert len(grads) == 1
    return grads[0]


def test_the_trainer_adds_aux_losses_to_the_gradient(tiny_spec):
    plain = first_step_grad(tiny_spec, {})
    regularised = first_step_grad(tiny_spec, {"l1": 2.0})
    torch.manual_seed(0)  # the same initial weights, the regulariser's own gradient
    spec = mlplab.parse_spec(tiny_spec(model={"block": "plain", "unit": "kan", "width": 8,
                                              "depth": 1}))
    data = build_dataset(spec.data, task_kind="auto", seed=0)
    torch.manual_seed(0)
    kan = build_model(spec.model, data.schema, 3).backbone.lift.fc
    kan.regularization_loss(2.0, 0.0).backward()
    assert not torch.allclose(plain, regularised)
    assert torch.allclose(regularised - plain, kan.spline_weight.grad, atol=1e-6)


# -- option errors --------------------------------------------------------------------------


@pytest.mark.parametrize("unit,options,field", [
    ("kan", {"grid": 0}, "grid"), ("kan", {"order": 0}, "order"),
    ("kan", {"grid": 2.5}, "grid"), ("kan", {"grid_range": [1, -1]}, "grid_range"),
    ("kan", {"grid_range": 3}, "grid_range"), ("kan", {"base": "swish"}, "base"),
    ("kan", {"grid_eps": 0}, "grid_eps"), ("kan", {"l1": -1}, "l1"),
    ("rbf", {"n_centers": 0}, "n_centers"), ("rbf", {"width": 0}, "width"),
    ("rbf", {"learnable_centers": "yes"}, "learnable_centers"),
    ("fan", {"p_ratio": 0}, "p_ratio"), ("fan", {"p_ratio": 0.5}, "p_ratio"),
    ("fan", {"p_ratio": 1.5}, "p_ratio"), ("fan", {"activation": "none"}, "activation"),
    ("moe", {"top_k": 3, "experts": 2}, "top_k"), ("moe", {"top_k": 0}, "top_k"),
    ("moe", {"experts": 0}, "experts"), ("moe", {"router": "hash"}, "router"),
    ("moe", {"balance": -0.1}, "balance"), ("moe", {"temperature": 0}, "temperature"),
])
def test_bad_unit_options_are_spec_errors_naming_the_field(tiny_spec, unit, options, field):
    pattern = rf"^model\.unit_options\.{field}: expected"
    with pytest.raises(SpecError, match=pattern):
        mlplab.parse_spec(tiny_spec(model={"unit": unit, "unit_options": options}))
    with pytest.raises(SpecError, match=pattern):  # also when built without a spec
        Backbone(4, unit=unit, unit_options=options, width=8, depth=1)
    with pytest.raises(SpecError, match=pattern):
        UNITS.get(unit)(4, 8, **options)


def test_unknown_unit_option_is_a_spec_error(tiny_spec):
    with pytest.raises(SpecError, match=r"model\.unit_options: unit 'kan'.*'gird'"):
        mlplab.parse_spec(tiny_spec(model={"unit": "kan", "unit_options": {"gird": 3}}))


def test_units_save_with_their_run(tiny_spec, tmp_path):
    spec = tiny_spec(model={"unit": "kan", "unit_options": {"grid": 4}}, train={"epochs": 1})
    result = mlplab.train(spec, out=tmp_path / "run")
    loaded = mlplab.load_run(tmp_path / "run")
    x = torch.randn(5, 4)
    assert torch.equal(result.model.eval()(x, None), loaded.model.eval()(x, None))
    buffer = io.BytesIO(save({k: v.contiguous() for k, v in result.model.state_dict().items()}))
    assert "backbone.lift.knots" in load(buffer.getvalue())


@pytest.mark.parametrize("unit", NEW_UNITS)
@pytest.mark.parametrize("kind,budget", [("params", 2e4), ("flops", 2e5)])
def test_budget_matching_solves_every_unit(unit, kind, budget):
    spec = mlplab.parse_spec({"data": {"source": "sklearn:digits", "max_rows": 200},
                              "model": {"depth": 1, "unit": unit}})
    solved_spec, solved = solve_spec(ModelMeter(spec), spec, budget, kind=kind)
    measured = solved.params if kind == "params" else solved.flops  # flops: the total
    assert abs(measured - budget) <= 0.05 * budget and solved_spec.model.unit == unit


def test_moe_exports_with_the_same_function(monkeypatch):
    torch.manual_seed(0)
    unit = MoEUnit(5, 3, experts=4, top_k=2).eval()
    x = torch.randn(7, 5)
    sparse = unit(x)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)  # as torch.export runs it
    assert torch.allclose(unit(x), sparse, atol=1e-6)


@pytest.mark.parametrize("unit", NEW_UNITS)
def test_units_train_in_bf16(tiny_spec, unit):
    result = mlplab.train(tiny_spec(model={"unit": unit}, train={"epochs": 1,
                                                                "precision": "bf16"}))
    assert result.epochs == 1 and all(torch.isfinite(p).all()
                                      for p in result.model.parameters())


@pytest.mark.parametrize("options", [{"router": "gumbel", "balance": 0.1},
                                     {"top_k": 2, "experts": 3}])
def test_moe_resume_is_bitwise(tiny_spec, tmp_path, options):
    spec = tiny_spec(model={"unit": "moe", "unit_options": options, "dropout": 0.1})
    reference = mlplab.train(spec, out=tmp_path / "reference")

    class Crash(Exception):
        pass

    with crash_after_checkpoint(2, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=tmp_path / "run")
    torch.manual_seed(999)  # the resumed run restores the RNG (Gumbel noise) itself
    resumed = mlplab.resume(tmp_path / "run")
    assert resumed.metrics == reference.metrics


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("spacing", ["data", "even"])
def test_spline_basis_backward_matches_autograd_of_the_recursion(order, spacing):
    # data knots take the general path (knot lookups), evenly spaced ones the floor path
    knots = data_knots(torch.randn(300, 2, dtype=torch.float64), 4, order, eps=0.3) \
        if spacing == "data" else uniform_knots(2, 4, order, torch.tensor([-1.3, -0.5]),
                                                torch.tensor([1.7, 0.9]), dtype=torch.float64)
    x = torch.linspace(-4, 4, 797, dtype=torch.float64).unsqueeze(1).expand(-1, 2) * \
        torch.tensor([1.0, 0.7], dtype=torch.float64)  # beyond the knots on both sides too
    x = x.contiguous().requires_grad_()
    upstream = torch.randn(797, 2, 4 + order, dtype=torch.float64)
    bases = basis(x, knots, order)
    (fast,) = torch.autograd.grad((bases * upstream).sum(), x)
    plain = reference_bases(x, knots, order)
    (reference,) = torch.autograd.grad((plain * upstream).sum(), x)
    assert torch.allclose(bases, plain, atol=1e-12)
    assert torch.allclose(fast, reference, atol=1e-9)


def reference_bases(x: torch.Tensor, t: torch.Tensor, order: int) -> torch.Tensor:
    """Cox-de Boor as textbooks write it, out of place (autograd differentiates it)."""
    x = x.unsqueeze(-1)
    b = ((x >= t[:, :-1]) & (x < t[:, 1:])).to(x.dtype)
    for k in range(1, order + 1):
        left = (x - t[:, :-(k + 1)]) / (t[:, k:-1] - t[:, :-(k + 1)]) * b[..., :-1]
        right = (t[:, k + 1:] - x) / (t[:, k + 1:] - t[:, 1:-k]) * b[..., 1:]
        b = left + right
    return b
