"""ONNX export of saved estimators and run directories: parity with PyTorch under onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import TINY_SPEC, merge, mlplab_executable

import mlplab
from mlplab.data.dataset import FeatureSchema
from mlplab.export import OnnxPredictor, export_onnx, load_predictor, onnx_inputs, predict_onnx

TOL = 1e-5


def onnx_vs_torch(path, onnx_file, n: int = 33) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of the ONNX file and of the PyTorch predictor on the same random inputs."""
    predictor, record = load_predictor(path)
    schema = FeatureSchema.from_dict(record["schema"])
    torch.manual_seed(0)
    shape = (n, *schema.image_shape) if schema.image_shape else (n, schema.n_num)
    inputs = [torch.randn(shape)]
    if schema.categorical:
        inputs.append(torch.stack([torch.randint(0, c + 1, (n,)) for c in schema.cardinalities], 1))
    session = ort.InferenceSession(str(onnx_file))
    got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs,
                                                               strict=True)})[0]
    with torch.no_grad():
        want = predictor(*inputs).numpy()
    return got, want


@pytest.mark.parametrize("cat_encoding", ["onehot", "embedding"])
def test_estimator_tabm_ple_with_categoricals(tmp_path, cat_encoding: str) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120),
                      "c": rng.choice(["x", "y", "z"], size=120)})
    y = np.where(X["a"] + (X["c"] == "x") > 0.5, "pos", "neg")
    clf = mlplab.TabMClassifier(k=4, d_block=16, num_embeddings="ple", max_epochs=3,
                                cat_encoding=cat_encoding, random_state=0).fit(X, y)
    assert clf.model_spec_.cat_encoding == cat_encoding
    clf.save(tmp_path / "clf")
    out = export_onnx(tmp_path / "clf", tmp_path / "clf.onnx")
    got, want = onnx_vs_torch(tmp_path / "clf", out)
    assert got.shape == (33, 2) and np.allclose(got.sum(1), 1.0, atol=1e-5)
    assert np.abs(got - want).max() <= TOL
    meta = json.loads((tmp_path / "clf.onnx.json").read_text())
    assert meta["inputs"] == ["x_num", "x_cat"] and meta["target"]["classes"] == ["neg", "pos"]
    # the ONNX graph on rows preprocessed by onnx_inputs reproduces predict_proba
    session = ort.InferenceSession(str(out))
    proba = session.run(None, onnx_inputs(X.head(5), tmp_path / "clf.onnx.json"))[0]
    assert np.abs(proba - clf.predict_proba(X.head(5))).max() <= TOL
    assert np.array_equal(OnnxPredictor(out).predict(X), clf.predict(X))


def test_estimator_regressor_plr(tmp_path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    reg = mlplab.MLPRegressor(arch="resnet", num_embeddings="plr", d_block=16, max_epochs=2,
                              random_state=0).fit(X, X[:, 0] - X[:, 1])
    reg.save(tmp_path / "reg")
    got, want = onnx_vs_torch(tmp_path / "reg", export_onnx(tmp_path / "reg", tmp_path / "r.onnx"))
    assert got.shape == (33,) and np.abs(got - want).max() <= TOL


def test_cli_export_run_dir(tmp_path, frozen_run) -> None:
    out = tmp_path / "run.onnx"
    proc = subprocess.run([mlplab_executable(), "export", str(frozen_run.run_dir), "--onnx",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got, want = onnx_vs_torch(frozen_run.run_dir, out)
    assert got.shape == (33, 3) and np.abs(got - want).max() <= TOL


def test_cli_export_tabm_run_with_images(tmp_path, tiny_spec) -> None:
    spec = tiny_spec(data={"source": "sklearn:digits", "max_rows": 300},
                     model={"block": "plain", "ensemble": "tabm", "k": 3, "width": 16},
                     train={"epochs": 1})
    mlplab.train(spec, out=tmp_path / "run")
    export_onnx(tmp_path / "run", tmp_path / "digits.onnx")
    got, want = onnx_vs_torch(tmp_path / "run", tmp_path / "digits.onnx")
    assert got.shape == (33, 10) and np.abs(got - want).max() <= TOL


def test_cli_export_errors(tmp_path) -> None:
    proc = subprocess.run([mlplab_executable(), "export", str(tmp_path), "--onnx",
                           str(tmp_path / "x.onnx")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    with pytest.raises(mlplab.SpecError, match=".onnx"):
        export_onnx(tmp_path, tmp_path / "x.txt")


@pytest.mark.parametrize("data", [{"source": "sklearn:wine"},
                                  {"source": "sklearn:diabetes", "target_transform": "log"}])
def test_onnx_on_raw_rows_matches_loaded_run(tmp_path, data: dict) -> None:
    """From raw rows to labels/values with no hand-written preprocessing; a log target comes
    back in the target's units from both."""
    mlplab.train(merge(TINY_SPEC, {"data": data}), out=tmp_path / "run")
    export_onnx(tmp_path / "run", tmp_path / "m.onnx")
    run = mlplab.load_run(tmp_path / "run")
    frame = _raw_frame(data["source"])
    got, want = predict_onnx(tmp_path / "m.onnx", frame), run.predict(frame)
    if run.target.kind == "classification":
        assert np.array_equal(got, want)
        onnx = OnnxPredictor(tmp_path / "m.onnx")
        diff = onnx.predict_proba(frame) - run.predict_proba(frame)
        assert np.abs(diff.to_numpy()).max() <= 1e-4
        log_diff = onnx.predict_proba(frame, raw=True) - run.predict_proba(frame, raw=True)
        assert np.abs(log_diff.to_numpy()).max() <= 1e-3
        assert np.array_equal(onnx.predict(frame, raw=True), want)
    else:
        assert np.allclose(got, want, rtol=1e-4, atol=0)
        assert np.allclose(got, np.exp(run.predict(frame, raw=True)), rtol=1e-4)
        raw = OnnxPredictor(tmp_path / "m.onnx").predict(frame, raw=True)
        assert np.allclose(raw, run.predict(frame, raw=True), rtol=0, atol=1e-4)


def _raw_frame(source: str) -> pd.DataFrame:
    from mlplab.data.sources import load_source

    return load_source(source).frame.sample(40, random_state=0)


def test_onnx_predictor_without_onnxruntime_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(mlplab.MlplabError, match="pip install onnxruntime"):
        OnnxPredictor(tmp_path / "m.onnx")
    with pytest.raises(mlplab.SpecError, match="does not exist"):
        onnx_inputs(pd.DataFrame({"a": [1.0]}), tmp_path / "m.onnx.json")
