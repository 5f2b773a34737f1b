"""The learnable B-spline activation (`model.activation = "bspline"`), the KAN-or-MLP control."""

from __future__ import annotations

import torch
from torch.nn import functional as F

import mlplab
from mlplab.nn.layers import make_activation
from mlplab.nn.spline_activation import GRID, ORDER, RANGE, BSplineActivation, support
from mlplab.nn.splines import basis


def test_starts_as_silu_and_keeps_the_shape():
    act = make_activation("bspline")
    assert isinstance(act, BSplineActivation)
    x = torch.linspace(RANGE[0] + 0.01, RANGE[1] - 0.01, 294).reshape(3, 7, -1)
    y = act(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y - F.silu(x)).abs().max() < 2e-3
    low, high = support()
    assert act(torch.tensor([high + 0.1, low - 0.1])).abs().max() == 0  # outside: 0


def test_closed_form_equals_the_general_bspline_bases():
    act = BSplineActivation().double()
    with torch.no_grad():
        act.coef.normal_()
    x = torch.linspace(-7, 7, 4001, dtype=torch.float64)
    ref = basis(x.reshape(-1, 1), act.knots, ORDER).reshape(-1, GRID + ORDER) @ act.coef
    assert torch.allclose(act(x), ref, atol=1e-12)


def test_coefficients_are_learnable_and_gradients_exact():
    act = BSplineActivation().double()
    assert [p.numel() for p in act.parameters()] == [GRID + ORDER]
    x = (torch.rand(5, 4, dtype=torch.float64) * 5 - 2.5).requires_grad_()
    assert torch.autograd.gradcheck(act, (x,))
    act(x).sum().backward()
    assert act.coef.grad is not None and act.coef.grad.abs().sum() > 0


def test_an_mlp_with_bspline_activations_trains_saves_and_loads(tmp_path, tiny_spec):
    spec = tiny_spec(model={"block": "plain", "activation": "bspline"},
                     data={"source": "sklearn:diabetes"})
    run = mlplab.train(spec, out=tmp_path / "run")
    plain = mlplab.train(tiny_spec(model={"block": "plain"}, data={"source": "sklearn:diabetes"}),
                         out=tmp_path / "gelu")
    assert run.counts["params"] == plain.counts["params"] + 2 * (GRID + ORDER)  # 2 activations
    assert run.counts["flops_per_sample"] > plain.counts["flops_per_sample"]  # bases are counted
    loaded = mlplab.load_run(tmp_path / "run")
    x = torch.randn(4, 10)
    a = loaded.model.backbone.lift.act
    assert isinstance(a, BSplineActivation)
    assert torch.equal(a.coef, run.model.backbone.lift.act.coef)
    assert torch.isfinite(a(x)).all()
