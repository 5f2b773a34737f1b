"""The domain contract: task kinds, adapters and heads by name; multi-output targets end to
end; token-shaped adapters through blocks and heads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

import mlplab
from mlplab.build import build_model
from mlplab.data.dataset import FeatureSchema, Split
from mlplab.data.preprocess import TargetCoder
from mlplab.domains import TASKS, TaskKind, register_task, task_kind, task_kinds
from mlplab.errors import SpecError
from mlplab.nn.blocks import Block
from mlplab.nn.registry import ADAPTERS, BLOCKS, register_adapter, register_block
from mlplab.spec import ModelSpec, parse_spec
from mlplab.tasks import Regression, make_task


def _two_targets(tmp_path, n: int = 240):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    frame["a"] = 3.0 * x[:, 0] + 10.0
    frame["b"] = -200.0 * x[:, 1] + x[:, 2]
    path = tmp_path / "two.csv"
    frame.to_csv(path, index=False)
    return frame, path


def _spec(path, **model):
    return {"data": {"source": str(path), "target": ["a", "b"]},
            "model": {"width": 16, "depth": 1, **model},
            "train": {"epochs": 3, "batch_size": 32, "patience": None}}


# --- registries ---------------------------------------------------------------------------

def test_builtin_kinds_are_registered():
    assert {"classification", "regression"} <= set(task_kinds())
    assert task_kind("regression").make_task(TargetCoder("regression")).d_out == 1


def test_unknown_task_kind_names_the_field_and_the_close_kind():
    with pytest.raises(SpecError, match=r"task\.kind: unknown task kind 'regresion'; "
                                        r"did you mean 'regression'\?"):
        parse_spec({"data": {"source": "sklearn:iris"}, "task": {"kind": "regresion"}})


def test_task_options_are_checked_by_the_kind():
    with pytest.raises(SpecError, match=r"task\.options\.foo: unknown key"):
        parse_spec({"data": {"source": "sklearn:iris"},
                    "task": {"kind": "classification", "options": {"foo": 1}}})
    with pytest.raises(SpecError, match=r"task\.options: needs a task\.kind"):
        parse_spec({"data": {"source": "sklearn:iris"}, "task": {"options": {"foo": 1}}})


def test_a_registered_kind_builds_its_own_data_and_is_monitored(monkeypatch):
    """A new kind: its own builder (no table), its own options (did-you-mean), its monitor."""
    from pydantic import BaseModel, ConfigDict

    from mlplab.data.preprocess import FeaturePreprocessor
    from mlplab.domains import build_data

    class EchoOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        scale: float = 1.0

    @register_task("echo-test")
    class EchoKind(TaskKind):
        Options = EchoOptions

        @classmethod
        def build_dataset(cls, spec):
            g = torch.Generator().manual_seed(spec.seed)
            x = torch.randn(60, 2, generator=g)
            y = x * spec.task.options.get("scale", 1.0)

            def split(sl):
                return Split(x[sl], None, y[sl])

            coder = TargetCoder("regression", mean=[0.0, 0.0], std=[1.0, 1.0], columns=["u", "v"])
            return mlplab.data.Dataset(FeatureSchema(["p", "q"], [], []),
                                       FeaturePreprocessor(["p", "q"], []), coder,
                                       split(slice(0, 40)), split(slice(40, 50)),
                                       split(slice(50, 60)))

        @classmethod
        def make_task(cls, target, *, options=None, label_smoothing=0.0):
            return Regression(target)

        @classmethod
        def example_task(cls, spec, *, n_classes=2):
            return Regression(TargetCoder("regression"))

    try:
        with pytest.raises(SpecError, match=r"task\.options\.scal: unknown key; did you mean "
                                            r"'scale'\?"):
            parse_spec({"data": {"source": "none"}, "task": {"kind": "echo-test",
                                                               "options": {"scal": 2}}})
        with pytest.raises(SpecError, match=r"train\.monitor: 'accuracy' is not a metric"):
            parse_spec({"data": {"source": "none"}, "task": {"kind": "echo-test"},
                        "train": {"monitor": "accuracy"}})
        spec = parse_spec({"data": {"source": "none"},
                           "task": {"kind": "echo-test", "options": {"scale": 2.0}},
                           "model": {"width": 8, "depth": 1},
                           "train": {"epochs": 2, "patience": None}})
        assert build_data(spec).kind == "echo-test"
        result = mlplab.train(spec)
        assert set(result.metrics["test"]) >= {"rmse", "r2"}
    finally:
        TASKS._entries.pop("echo-test")


def test_adapter_and_head_are_looked_up_with_did_you_mean():
    with pytest.raises(SpecError, match=r"model\.adapter: unknown adapter 'imag'; did you mean "
                                        r"'image'\?"):
        parse_spec({"data": {"source": "sklearn:digits"}, "model": {"adapter": "imag"}})
    with pytest.raises(SpecError, match=r"model\.head: unknown head 'pol'; did you mean 'pool'\?"):
        parse_spec({"data": {"source": "sklearn:iris"}, "model": {"head": "pol"}})


def test_auto_adapter_comes_from_the_schema():
    schema = FeatureSchema(["p"], [], [], adapter="image", image_shape=(1, 2, 2))
    model = build_model(ModelSpec(width=8, depth=1), schema, 3)
    assert type(model.adapter).__name__ == "ImageAdapter"
    schema = FeatureSchema.from_dict(FeatureSchema(["p"], [], [], adapter="x",
                                                   info={"n": 2}).to_dict())
    assert (schema.adapter, schema.info) == ("x", {"n": 2})
    # an older run's schema (no adapter key) still means image / tabular
    assert FeatureSchema.from_dict({"numeric": [], "categorical": [], "cardinalities": [],
                                    "image_shape": [1, 8, 8]}).default_adapter == "image"


def test_block_options_are_checked_per_block():
    with pytest.raises(SpecError, match=r"model\.block_options\.n_tokens: unknown option; "
                                        r"block 'standard' takes (no|only)"):
        parse_spec({"data": {"source": "sklearn:iris"},
                    "model": {"block_options": {"n_tokens": 4}}})


# --- multi-output targets -----------------------------------------------------------------

def test_target_coder_standardises_each_column_and_round_trips(tmp_path):
    frame, _ = _two_targets(tmp_path)
    coder = TargetCoder("regression").fit(frame[["a", "b"]])
    z = coder.encode(frame[["a", "b"]])
    assert z.shape == (len(frame), 2)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-4)
    again = TargetCoder.from_dict(json.loads(json.dumps(coder.to_dict())))
    np.testing.assert_allclose(again.decode_values(z.astype(np.float64)),
                               frame[["a", "b"]].to_numpy(), rtol=1e-5, atol=1e-3)


def test_single_target_coder_keeps_scalars():
    coder = TargetCoder("regression").fit(pd.Series([1.0, 2.0, 4.0], name="y"))
    assert isinstance(coder.mean, float) and coder.columns == [] and coder.n_targets == 1
    assert coder.encode(pd.Series([1.0, 2.0], name="y")).shape == (2,)


def test_multi_output_metrics_average_over_targets():
    coder = TargetCoder("regression", mean=[0.0, 0.0], std=[1.0, 10.0], columns=["a", "b"])
    task = make_task("regression", coder)
    y = torch.zeros(4, 2)
    out = torch.tensor([[1.0, 0.0]] * 4)  # a off by 1, b exact
    m = task.metrics(out, y)
    assert m["rmse"] == pytest.approx(0.5) and m["mae"] == pytest.approx(0.5)
    assert m["loss"] == pytest.approx(0.5)
    ensemble = out.unsqueeze(1).expand(4, 3, 2)
    assert task.loss(ensemble, y) == pytest.approx(0.5)


def test_multi_output_end_to_end(tmp_path):
    """train -> Split.y (n, 2) -> predict (2 columns) -> CLI predict -> resume -> ONNX."""
    from mlplab.domains import build_data

    frame, path = _two_targets(tmp_path)
    spec = parse_spec(_spec(path))
    data = build_data(spec)
    assert data.train.y.shape == (len(data.train), 2) and data.target.columns == ["a", "b"]
    run = tmp_path / "run"
    result = mlplab.train(spec, out=run)
    assert result.metrics["test"]["r2"] > 0.2
    loaded = mlplab.load_run(run)
    pred = loaded.predict(frame)
    assert pred.shape == (len(frame), 2)
    # the scale of each column is undone: b's spread (x200) is far larger than a's (x3)
    assert pred[:, 1].std() > 10 * pred[:, 0].std()
    table = loaded.predictor().table(frame)
    assert list(table.columns) == ["prediction_a", "prediction_b"]
    np.testing.assert_allclose(table.to_numpy(), pred)

    from mlplab import cli
    out_csv = tmp_path / "pred.csv"
    assert cli.run(["predict", str(run), str(path), "--out", str(out_csv)]) == 0
    written = pd.read_csv(out_csv)
    assert {"prediction_a", "prediction_b"} <= set(written.columns)

    pytest.importorskip("onnxruntime")
    from mlplab.export import OnnxPredictor, export_onnx
    onnx = export_onnx(run, tmp_path / "m.onnx")
    np.testing.assert_allclose(OnnxPredictor(onnx).predict(frame), pred, rtol=1e-4, atol=1e-3)


def test_multi_output_resumes_bitwise(tmp_path):
    from mlplab.train import checkpoint as ckpt

    _, path = _two_targets(tmp_path, n=120)
    spec = _spec(path)
    full = mlplab.train(spec, out=tmp_path / "full")
    part = tmp_path / "part"
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(mlplab.errors.TrainingStopped):
        mlplab.train(spec, out=part, stop=stop)
    assert ckpt.latest_checkpoint(part) is not None
    resumed = mlplab.resume(part)
    assert resumed.metrics == full.metrics


def test_several_targets_refuse_classification(tmp_path):
    _, path = _two_targets(tmp_path, n=60)
    spec = _spec(path)
    spec["task"] = {"kind": "classification"}
    with pytest.raises(mlplab.DataError, match="several target columns need task.kind"):
        mlplab.train(spec)


# --- tokens -------------------------------------------------------------------------------

class _TokenAdapter(nn.Module):
    """`(batch, 4*c) -> (batch, 4 tokens, c)`."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.n_tokens, self.d_out = 4, d // 4

    @classmethod
    def from_spec(cls, spec, schema):
        return cls(schema.n_num)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return x.reshape(len(x), self.n_tokens, self.d_out)


class _TokenMixBlock(Block):
    """Mixes along the token axis (dim -2): `(batch, n_tokens, d) -> same`."""

    def __init__(self, d: int, *, n_tokens: int, scale: float = 1.0, **kwargs) -> None:
        super().__init__(d, **kwargs)
        self.mix = nn.Linear(n_tokens, n_tokens)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.mix(x.transpose(-1, -2)).transpose(-1, -2)


@pytest.fixture
def token_parts():
    """The test adapter and block, registered for one test only (other tests list the
    registries in their messages)."""
    register_adapter("tokens-test")(_TokenAdapter)
    register_block("tokenmix-test")(_TokenMixBlock)
    yield
    ADAPTERS._entries.pop("tokens-test")
    BLOCKS._entries.pop("tokenmix-test")


def test_token_adapter_through_blocks_and_heads(token_parts):
    schema = FeatureSchema([f"f{i}" for i in range(8)], [], [])
    x = torch.randn(5, 8)
    for head in ("pool", "flatten", "auto"):
        spec = ModelSpec(adapter="tokens-test", block="tokenmix-test", head=head, width=6,
                         depth=2, block_options={"scale": 0.5})
        model = build_model(spec, schema, 3)
        assert model(x).shape == (5, 3)
        assert model.backbone.blocks[0].mix.in_features == 4  # n_tokens from the adapter
    if "mixer" in BLOCKS:  # the token count reaches a block that takes it as `tokens`
        assert build_model(ModelSpec(adapter="tokens-test", block="mixer", width=6, depth=1),
                           schema, 2)(x).shape == (5, 2)
    # a standard (per-token) block works on tokens too
    model = build_model(ModelSpec(adapter="tokens-test", width=6, depth=1), schema, 2)
    assert model(x).shape == (5, 2)
    with pytest.raises(SpecError, match=r"model\.head: 'linear' needs a flat"):
        build_model(ModelSpec(adapter="tokens-test", head="linear", width=6, depth=1), schema, 2)
    with pytest.raises(SpecError, match=r"model\.ensemble: 'tabm-mini' needs a flat"):
        build_model(ModelSpec(adapter="tokens-test", ensemble="tabm-mini", k=2, width=6,
                              depth=1), schema, 2)
    with pytest.raises(SpecError, match=r"model\.block_options\.scal: unknown option; did you "
                                        r"mean 'scale'\?"):
        parse_spec({"data": {"source": "sklearn:iris"},
                    "model": {"block": "tokenmix-test", "block_options": {"scal": 1.0}}})


def test_mlp_regressor_fits_a_2d_y(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.stack([3 * X[:, 0] + 5, -100 * X[:, 1]], axis=1)
    est = mlplab.MLPRegressor(random_state=0, max_epochs=10)
    est.fit(X, Y, eval_set=(X[:50], Y[:50]))
    pred = est.predict(X)
    assert pred.shape == (200, 2) and est.target_.columns == ["y0", "y1"]
    assert pred[:, 1].std() > 10 * pred[:, 0].std()  # each column back in its own units
    est.save(tmp_path / "est")
    np.testing.assert_allclose(mlplab.load(tmp_path / "est").predict(X), pred, rtol=1e-6)
    assert est.fit(X, Y[:, 0]).predict(X).shape == (200,)  # one target stays (n,)
