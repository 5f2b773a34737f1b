"""`mlplab.count`: parameters from the model, FLOPs from `torch.utils.flop_counter`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mlplab
from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.nn import BLOCKS
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
    assert counts["flops_per_sample"] == 2 * sum(a * b for a, b in pairs)  # a multiply-add = 2
    expected_params = sum(a * b + b for a, b in pairs)
    assert counts["params"] == expected_params == sum(p.numel() for p in model.parameters())
    assert counts["trainable_params"] == expected_params and counts["frozen_params"] == 0


def test_flops_are_per_sample_whatever_the_batch():
    model = linear_stack([10, 20, 4])
    one = mlplab.count(model, torch.randn(1, 10))["flops_per_sample"]
    many = mlplab.count(model, torch.randn(37, 10))["flops_per_sample"]
    assert one == many == 2 * (10 * 20 + 20 * 4)


def test_plain_mlp_model_flops_from_layer_sizes():
    d_in, width, depth, d_out = 12, 24, 3, 5
    schema = FeatureSchema([f"f{i}" for i in range(d_in)], [], [])
    model = build_model(ModelSpec(block="plain", width=width, depth=depth, norm="none",
                                  activation="relu"), schema, d_out)
    sizes = [d_in] + [width] * depth + [d_out]
    counts = mlplab.count(model, (torch.randn(4, d_in), None))
    pairs = list(zip(sizes, sizes[1:], strict=False))
    assert counts["flops_per_sample"] == 2 * sum(a * b for a, b in pairs)
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
    assert counts["flops_per_sample"] == 2 * sum(m.in_features * m.out_features for m in linears)
    block = BLOCKS.get(name)(width)
    hidden_out = 2 * block.hidden if name in ("glu", "swiglu", "bilinear") else block.hidden
    by_hand = d_in * width + depth * (width * hidden_out + block.hidden * width) + width * d_out
    assert counts["flops_per_sample"] == 2 * by_hand
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
