"""The learnable B-spline activation (`model.activation = "bspline"`, per channel
`"bspline-channel"`), the KAN-or-MLP control."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

import mlplab
from mlplab.errors import SpecError
from mlplab.nn.layers import make_activation
from mlplab.nn.spline_activation import (
    GRID,
    ORDER,
    RANGE,
    BSplineActivation,
    ChannelBSplineActivation,
    support,
)
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


def test_per_channel_splines_are_separate_functions_of_their_channel():
    act = make_activation("bspline-channel", 3).double()
    assert isinstance(act, ChannelBSplineActivation) and act.coef.shape == (3, GRID + ORDER)
    shared = BSplineActivation().double()
    x = torch.linspace(-6, 6, 600, dtype=torch.float64).reshape(2, 100, 3)
    assert torch.allclose(act(x), shared(x), atol=1e-12)  # all start as the same SiLU fit
    with torch.no_grad():
        act.coef.normal_()
    for c in range(3):  # channel c follows its own coefficients
        ref = basis(x[..., c].reshape(-1, 1), act.knots, ORDER).reshape(-1, GRID + ORDER)
        assert torch.allclose(act(x)[..., c].reshape(-1), ref @ act.coef[c], atol=1e-12)
    inputs = (torch.rand(4, 3, dtype=torch.float64) * 5 - 2.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, c: functional_call(act, {"coef": c}, (x,)),
                                    (inputs, act.coef.detach().clone().requires_grad_()))
    with pytest.raises(ValueError, match="expected 3 channels"):
        act(torch.randn(2, 4, dtype=torch.float64))


def test_an_mlp_with_per_channel_splines_trains(tiny_spec):
    model = {"block": "plain", "width": 8, "depth": 2}
    shared = mlplab.train(tiny_spec(model={**model, "activation": "bspline"}))
    channel = mlplab.train(tiny_spec(model={**model, "activation": "bspline-channel"}))
    # depth 2 = the plain lift + 1 plain block, each one activation over 8 channels
    assert channel.counts["params"] == shared.counts["params"] + 2 * 7 * (GRID + ORDER)
    acts = [m for m in channel.model.modules() if isinstance(m, ChannelBSplineActivation)]
    assert len(acts) == 2 and not torch.equal(acts[0].coef[0], acts[0].coef[1])  # trained apart
    standard = mlplab.train(tiny_spec(model={"block": "standard", "width": 8, "depth": 1,
                                             "activation": "bspline-channel"}))
    hidden = [m.coef.shape[0] for m in standard.model.modules()
              if isinstance(m, ChannelBSplineActivation)]
    assert 32 in hidden  # the standard block's activation is on its hidden width (4 x 8)


def test_a_per_channel_activation_needs_the_width():
    with pytest.raises(SpecError, match="model.activation: 'bspline-channel' learns one function"):
        make_activation("bspline-channel")
