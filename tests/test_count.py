"""`mlplab.count`: parameters from the model; matmul FLOPs from `torch.utils.flop_counter`,
elementwise and reduction FLOPs from `mlplab.flops` (one per elementary operation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mlplab
from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.nn import BLOCKS
from mlplab.nn.kan import KANUnit
from mlplab.spec import ModelSpec


def linear_stack(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize("sizes", [[7, 13, 5, 3], [64, 32, 10], [3, 1]])
def test_plain_linear_stack(sizes: list[int]):
    model = linear_stack(sizes)
    counts = mlplab.count(model, torch.randn(8, sizes[0]))
    pairs = list(zip(sizes, sizes[1:], strict=False))
    matmul = 2 * sum(a * b for a, b in pairs)  # a multiply-add = 2
    assert counts["matmul_flops_per_sample"] == matmul
    assert counts["flops_per_sample"] == matmul + sum(sizes[1:-1])  # + 1 per ReLU output
    expected_params = sum(a * b + b for a, b in pairs)
    assert counts["params"] == expected_params == sum(p.numel() for p in model.parameters())
    assert counts["trainable_params"] == expected_params and counts["frozen_params"] == 0


def test_flops_are_per_sample_whatever_the_batch():
    model = linear_stack([10, 20, 4])
    one = mlplab.count(model, torch.randn(1, 10))["flops_per_sample"]
    many = mlplab.count(model, torch.randn(37, 10))["flops_per_sample"]
    assert one == many == 2 * (10 * 20 + 20 * 4) + 20


def test_plain_mlp_model_flops_from_layer_sizes():
    d_in, width, depth, d_out = 12, 24, 3, 5
    schema = FeatureSchema([f"f{i}" for i in range(d_in)], [], [])
    model = build_model(ModelSpec(block="plain", width=width, depth=depth, norm="none",
                                  activation="relu"), schema, d_out)
    sizes = [d_in] + [width] * depth + [d_out]
    counts = mlplab.count(model, (torch.randn(4, d_in), None))
    pairs = list(zip(sizes, sizes[1:], strict=False))
    assert counts["matmul_flops_per_sample"] == 2 * sum(a * b for a, b in pairs)
    assert counts["flops_per_sample"] == 2 * sum(a * b for a, b in pairs) + depth * width  # ReLUs
    assert counts["params"] == sum(a * b + b for a, b in pairs)
    assert counts["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["standard", "hourglass", "glu", "swiglu", "bilinear"])
def test_residual_model_flops_count_every_projection(name: str):
    d_in, width, depth, d_out = 10, 16, 2, 3
    schema = FeatureSchema([f"f{i}" for i in range(d_in)], [], [])
    model = build_model(ModelSpec(block=name, width=width, depth=depth), schema, d_out)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    # lift, depth x (in-projection, out-projection), head
    assert len(linears) == 2 + 2 * depth
    counts = mlplab.count(model, (torch.randn(6, d_in), None))
    matmul = counts["matmul_flops_per_sample"]
    assert matmul == 2 * sum(m.in_features * m.out_features for m in linears)
    block = BLOCKS.get(name)(width)
    hidden_out = 2 * block.hidden if name in ("glu", "swiglu", "bilinear") else block.hidden
    by_hand = d_in * width + depth * (width * hidden_out + block.hidden * width) + width * d_out
    assert matmul == 2 * by_hand
    assert counts["params"] == sum(p.numel() for p in model.parameters())


def test_frozen_lift_counts_as_frozen():
    d_in, width = 9, 32
    schema = FeatureSchema([f"f{i}" for i in range(d_in)], [], [])
    model = build_model(ModelSpec(block="hourglass", width=width, depth=2, lift="frozen"),
                        schema, 2)
    counts = mlplab.count(model, (torch.randn(4, d_in), None))
    assert counts["frozen_params"] == d_in * width
    assert counts["trainable_params"] == sum(p.numel() for p in model.parameters())
    assert counts["params"] == counts["trainable_params"] + counts["frozen_params"]
    # the frozen projection still costs FLOPs
    learned = build_model(ModelSpec(block="hourglass", width=width, depth=2), schema, 2)
    assert mlplab.count(learned, (torch.randn(4, d_in), None))["flops_per_sample"] == counts[
        "flops_per_sample"]


def test_frozen_parameters_without_grad_count_as_frozen():
    model = linear_stack([4, 6, 2])
    model[0].weight.requires_grad_(False)
    counts = mlplab.count(model, torch.randn(3, 4))
    assert counts["frozen_params"] == 24 and counts["trainable_params"] == 6 + 12 + 2


def test_count_leaves_the_model_in_its_mode():
    schema = FeatureSchema(["a", "b"], ["c"], [3])
    model = build_model(ModelSpec(width=8, depth=1, norm="batchnorm", dropout=0.5), schema, 2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    counts = mlplab.count(model, (torch.randn(5, 2), torch.tensor([[0], [1], [2], [3], [1]])))
    assert model.training and counts["flops_per_sample"] > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no BatchNorm stat updates


def test_linear_gelu_mlp_closed_form():
    sizes = [9, 16, 12, 4]
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(d_in, d_out), nn.GELU()]
    counts = mlplab.count(nn.Sequential(*layers[:-1]), torch.randn(10, sizes[0]))
    matmul = 2 * (9 * 16 + 16 * 12 + 12 * 4)  # the bias add is fused into addmm: free
    assert counts["matmul_flops_per_sample"] == matmul
    assert counts["flops_per_sample"] == matmul + 16 + 12  # one FLOP per GELU output


@pytest.mark.parametrize("d_in,d_out,grid,order", [(3, 5, 5, 3), (4, 2, 8, 2), (2, 6, 3, 1)])
def test_kan_layer_closed_form(d_in, d_out, grid, order):
    counts = mlplab.count(KANUnit(d_in, d_out, grid=grid, order=order), torch.randn(16, d_in))
    coefs = grid + order
    assert counts["matmul_flops_per_sample"] == 2 * d_in * d_out + 2 * d_in * coefs * d_out
    # per input, on the evenly spaced initial knots (splines.py, `_local`): the position in
    # steps (subtract, scale), its floor and offset f, inside the knots (2 comparisons, and),
    # the clamped interval; left_r = f + r - 1 (r = 2..order), right_r = r - f (r = 1..order);
    # de Boor's triangle, for degree d: d products by 1/d, d by right, d by left, d - 1 sums;
    # the order + 1 basis indices; plus SiLU of the base branch. The check that the knots are
    # even and the per-edge scaling of the spline weights do not grow with the batch and are
    # not charged.
    triangle = sum(4 * d - 1 for d in range(1, order + 1))
    other = d_in * (2 + 2 + 3 + 1 + (order - 1) + order + triangle + (order + 1) + 1)
    assert counts["flops_per_sample"] == counts["matmul_flops_per_sample"] + other


def test_per_op_costs_of_norms_and_softmax():
    d = 6
    model = nn.Sequential(nn.LayerNorm(d), nn.Softmax(-1))
    counts = mlplab.count(model, torch.randn(4, d))
    assert counts["matmul_flops_per_sample"] == 0
    assert counts["flops_per_sample"] == 7 * d + 5 * d  # LayerNorm 5 + weight + bias; softmax 5
    bn = nn.BatchNorm1d(d)
    assert mlplab.count(bn, torch.randn(4, d))["flops_per_sample"] == 4 * d  # eval: 2 + affine


def test_work_that_does_not_grow_with_the_batch_is_not_charged():
    unit = KANUnit(3, 4)
    small = mlplab.count(unit, torch.randn(2, 3))
    large = mlplab.count(unit, torch.randn(64, 3))
    assert small == large
