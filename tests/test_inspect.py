"""mlplab.inspect: hooks on every block family, activation statistics, tracking during
training (resume included), top-k blocks, ablation and probes."""

from __future__ import annotations

import inspect as stdlib_inspect

import numpy as np
import pytest
import torch
from torch import nn

import mlplab
from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema
from mlplab.errors import SpecError
from mlplab.inspect.ablation import ablation, importance
from mlplab.inspect.capture import Recorder, blocks_of
from mlplab.inspect.probes import probes
from mlplab.inspect.stats import SMOOTH_THRESHOLD, activation_stats
from mlplab.inspect.track import SPARSITY_FILE, read_sparsity
from mlplab.spec import parse_spec
from mlplab.tasks import make_task

SCHEMA = FeatureSchema(["a", "b", "c", "d"], [], [])

FAMILIES = [
    {"block": "standard"}, {"block": "hourglass", "width": 32}, {"block": "glu"},
    {"block": "swiglu"}, {"block": "bilinear"}, {"block": "plain", "activation": "relu"},
    {"block": "standard", "ensemble": "tabm", "k": 4},
    {"block": "plain", "ensemble": "tabm-mini", "k": 3},
    {"block": "standard", "unit": "kan"}, {"block": "glu", "unit": "fan"},
    {"block": "standard", "unit": "rbf"}, {"block": "plain", "unit": "moe"},
]


def _model(**model) -> nn.Module:
    spec = parse_spec({"data": {"source": "sklearn:iris"},
                       "model": {"width": 16, "depth": 3, **model}})
    torch.manual_seed(0)
    return build_model(spec.model, SCHEMA, 3).eval()


def test_inspect_package_does_not_shadow_the_stdlib_inspect():
    import sys

    import mlplab.inspect
    import mlplab.train.hooks  # noqa: F401  (does `import inspect`)

    assert stdlib_inspect.signature(len) is not None
    assert sys.modules["mlplab.train.hooks"].inspect is stdlib_inspect
    assert callable(mlplab.inspect) and mlplab.inspect.stats.SMOOTH_THRESHOLD == SMOOTH_THRESHOLD


@pytest.mark.parametrize("model", FAMILIES, ids=lambda m: "-".join(map(str, m.values())))
def test_hooks_see_every_block_and_leave_outputs_unchanged(model):
    net = _model(**model)
    x = torch.randn(40, 4)
    with torch.no_grad():
        before = net(x)
    sites = blocks_of(net)
    assert len(sites) == 3 and [s.number for s in sites] == [1, 2, 3]
    stats = activation_stats(net, [(x, None)])
    assert [s.number for s in stats] == [1, 2, 3]
    members = model.get("k", 1)
    for s in stats:
        assert s.examples == 40 and s.units % members == 0 and 0 <= s.frac_active <= 1
        assert len(s.frequency) == s.units
    with torch.no_grad():
        after = net(x)
    assert torch.equal(before, after)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_relu_counts_exact_zeros_and_smooth_blocks_use_the_threshold():
    relu = activation_stats(_model(block="standard", activation="relu"), [(torch.randn(8, 4), None)])
    gelu = activation_stats(_model(block="standard"), [(torch.randn(8, 4), None)])
    assert {s.threshold for s in relu} == {0.0}
    assert {s.threshold for s in gelu} == {SMOOTH_THRESHOLD}
    assert all(s.frac_active < 0.8 for s in relu)  # about half the units of a ReLU layer


def test_dead_units_are_counted_on_a_constructed_model():
    net = _model(block="standard", activation="relu", depth=1)
    block = blocks_of(net)[0].block
    with torch.no_grad():  # units 0..4 can never fire: zero weights, negative bias
        block.fc1.weight[:5] = 0.0
        block.fc1.bias[:5] = -1.0
        block.fc1.bias[5:] = 10.0  # every other unit always fires (LayerNorm bounds the input)
        block.fc1.weight[5:] = 0.01
    (s,) = activation_stats(net, [(torch.randn(64, 4), None)])
    assert s.dead == 5 and s.units == 64
    assert s.frac_active == pytest.approx(59 / 64)
    assert (s.frequency[:5] == 0).all() and (s.frequency[5:] == 1).all()


def test_top_k_block_option_keeps_k_units(tiny_spec):
    spec = parse_spec(tiny_spec(model={"block": "standard", "width": 16, "depth": 2,
                                       "block_options": {"top_k": 3}}))
    net = build_model(spec.model, SCHEMA, 3).eval()
    hidden = []
    with Recorder(blocks_of(net), ("hidden",)) as rec:
        net(torch.randn(10, 4))
        hidden = rec.get("hidden", 1)
    assert ((hidden != 0).sum(1) == 3).all()
    stats = activation_stats(net, [(torch.randn(10, 4), None)])
    assert all(s.threshold == 0.0 and s.frac_active == pytest.approx(3 / 64) for s in stats)
    with pytest.raises(SpecError, match="model.block_options.top_k"):
        parse_spec(tiny_spec(model={"block_options": {"top_k": 0}}))
    with pytest.raises(SpecError, match="top_k"):
        build_model(parse_spec(tiny_spec(model={"block_options": {"top_k": 64}})).model,
                    SCHEMA, 3)


def test_tracking_records_every_epoch_and_survives_resume(tiny_spec, tmp_path):
    spec = tiny_spec(inspect={"track": "sparsity", "probe_rows": 32})
    full = mlplab.train(spec, out=tmp_path / "full")
    table = read_sparsity(tmp_path / "full")
    assert sorted(table["epoch"].unique()) == [0, 1, 2, 3, 4]
    assert set(table["block"]) == {1, 2} and (table["examples"] == 32).all()
    # a killed run (2 epochs checkpointed) resumed ends with the same file
    with pytest.raises(mlplab.errors.TrainingStopped):
        calls = iter(range(100))
        mlplab.train(spec, out=tmp_path / "cut", stop=lambda: next(calls) >= 2)
    cut = read_sparsity(tmp_path / "cut")
    assert cut["epoch"].max() == 3  # epoch 3 recorded, then stopped before its checkpoint
    resumed = mlplab.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics  # tracking does not change training
    assert read_sparsity(tmp_path / "cut").equals(table)
    assert not (tmp_path / "untracked").exists()
    mlplab.train(tiny_spec(), out=tmp_path / "untracked")
    assert not (tmp_path / "untracked" / SPARSITY_FILE).exists()


def _iris_data_task():
    spec = parse_spec({"data": {"source": "sklearn:iris"}})
    data = mlplab.build_dataset(spec.data, seed=0)
    return data, make_task(data.target.kind, data.target)


def test_ablating_an_identity_block_changes_nothing():
    data, task = _iris_data_task()
    net = _model(block="standard", depth=2)
    with torch.no_grad():  # block 2's branch is zero: the block is the identity
        blocks_of(net)[1].block.fc2.weight.zero_()
        blocks_of(net)[1].block.fc2.bias.zero_()
    frame = ablation(net, task, data.test)
    two = frame[frame["block"] == 2].set_index("mode")
    assert two.loc["skip", "delta_loss"] == pytest.approx(0.0, abs=1e-6)
    assert two.loc["loop", "delta_loss"] == pytest.approx(0.0, abs=1e-6)
    one = frame[frame["block"] == 1].set_index("mode")
    assert one.loc["zero", "delta_loss"] != pytest.approx(0.0, abs=1e-6)
    ranked = importance(frame)
    assert list(ranked["rank"]) == [1, 2]
    assert ranked.set_index("block").loc[2, "importance"] == pytest.approx(0.0, abs=1e-6)


def test_plain_first_layer_cannot_be_skipped():
    data, task = _iris_data_task()
    frame = ablation(_model(block="plain", depth=2), task, data.test)
    rows = frame.set_index(["block", "mode"])
    assert np.isnan(rows.loc[(1, "skip"), "loss"]) and np.isnan(rows.loc[(1, "loop"), "loss"])
    assert np.isfinite(rows.loc[(2, "skip"), "loss"]) and np.isfinite(rows.loc[(1, "zero"), "loss"])
    assert np.isfinite(importance(frame)["importance"]).all()  # zero stands in for skip


def test_probes_score_each_layer_and_accept_other_labels():
    data, _ = _iris_data_task()
    net = _model(block="standard", depth=2)
    frame = probes(net, data.train, data.test, classification=True)
    assert list(frame["block"]) == [0, 1, 2] and (frame["score_name"] == "accuracy").all()
    assert (frame["score"] > 0.6).all()  # iris is nearly linearly separable
    petal = (data.train.x[:, 2].numpy(), data.test.x[:, 2].numpy())  # a numeric column: R²
    frame = probes(net, data.train, data.test, classification=True, labels=petal)
    assert (frame["score_name"] == "r2").all() and frame["score"].iloc[0] > 0.99


@pytest.mark.parametrize("block", ["mixer", "gmlp", "resmlp"])
def test_token_mixing_blocks_report_their_channel_hidden_layer(block):
    from mlplab.nn.backbone import Backbone

    class Net(nn.Module):
        def __init__(self, top_k: int | None = None) -> None:
            super().__init__()
            extra = {"top_k": top_k} if top_k else {}
            self.backbone = Backbone(8, block=block, width=8, depth=2,
                                     block_options={"tokens": 4, **extra})

        def forward(self, x, x_cat=None):
            return self.backbone(x)

    x = torch.randn(5, 4, 8)
    stats = activation_stats(Net().eval(), [(x, None)])
    assert [s.number for s in stats] == [1, 2] and all(s.units % 4 == 0 for s in stats)
    sparse = activation_stats(Net(top_k=3).eval(), [(x, None)])
    hidden = sparse[0].units // 4  # units = tokens x hidden
    assert all(s.threshold == 0 and s.frac_active == pytest.approx(3 / hidden) for s in sparse)


def test_inspect_a_model_with_its_data():
    data, _ = _iris_data_task()
    net = _model(block="standard", depth=2)
    report = mlplab.inspect(net, data, what=["sparsity", "probes", "ablation"], split="val")
    assert report.split == "val" and report.run_dir is None
    assert list(report.sparsity["block"]) == [1, 2]
    assert report.sparsity["examples"].iloc[0] == len(data.val)
    assert list(report.importance["block"]) != [] and report.tracked is None
    with pytest.raises(SpecError, match="needs its data"):
        mlplab.inspect(net)
    with pytest.raises(SpecError, match="split"):
        mlplab.inspect(net, data, split="holdout")
    with pytest.raises(SpecError, match="out="):
        report.write()
