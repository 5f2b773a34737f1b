"""Estimator options: the early-stopping monitor, `eval_set`, the model/threads/device
keywords, and predictions that do not depend on the other rows."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

import mlplab

FAST = dict(d_block=16, max_epochs=15, lr=1e-2, batch_size=32, random_state=0, threads=1)
# curves vs predict: validation runs under bf16 autocast in a bf16 fit, predict in fp32
FP32 = {**FAST, "precision": "fp32"}


def imbalanced(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """~6% positives whose probability stays below 0.5 everywhere: predicting the majority
    class is the best accuracy there is, while the ranking (ROC-AUC) can be learned."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logit = -2.7 + X[:, 0] - 0.7 * X[:, 1] ** 2 + 0.5 * X[:, 2]
    p = 1 / (1 + np.exp(-np.clip(logit, None, -0.5)))
    return X, (rng.random(n) < p).astype(int)


def test_log_loss_monitor_trains_past_the_first_epoch_on_imbalanced_data() -> None:
    X, y = imbalanced(1000, 0)
    X_test, y_test = imbalanced(4000, 1)
    assert 0.05 < y.mean() < 0.07
    kw = dict(d_block=16, max_epochs=20, lr=1e-2, batch_size=64, patience=5, random_state=0,
              threads=1)
    by_loss = mlplab.MLPClassifier(**kw).fit(X, y)  # the default monitor: validation log-loss
    by_accuracy = mlplab.MLPClassifier(monitor="accuracy", **kw).fit(X, y)
    # accuracy is flat at the majority rate from epoch 1, so it keeps the first epoch
    assert by_accuracy.best_epoch_ == 1
    assert {c["val_accuracy"] for c in by_accuracy.curves_[1:]} == {by_accuracy.curves_[0][
        "val_accuracy"]}
    assert by_loss.best_epoch_ > 1
    auc_loss = roc_auc_score(y_test, by_loss.predict_proba(X_test)[:, 1])
    auc_accuracy = roc_auc_score(y_test, by_accuracy.predict_proba(X_test)[:, 1])
    assert auc_loss > auc_accuracy + 0.05
    best = by_loss.curves_[by_loss.best_epoch_ - 1]
    assert best["val_log_loss"] == min(c["val_log_loss"] for c in by_loss.curves_)


def test_monitor_choices_and_errors() -> None:
    X, y = imbalanced(300, 0)
    clf = mlplab.MLPClassifier(monitor="roc_auc", **FAST).fit(X, y)
    best = clf.curves_[clf.best_epoch_ - 1]["val_roc_auc"]
    assert best == max(c["val_roc_auc"] for c in clf.curves_)
    with pytest.raises(mlplab.SpecError, match="monitor: 'f1' is not a metric of this task; "
                                               "choose one of 'accuracy', 'log_loss'"):
        mlplab.MLPClassifier(monitor="f1", **FAST).fit(X, y)
    three = np.arange(300) % 3
    with pytest.raises(mlplab.SpecError, match="monitor: 'roc_auc' is not a metric"):
        mlplab.MLPClassifier(monitor="roc_auc", **FAST).fit(X, three)  # binary only
    with pytest.raises(mlplab.SpecError, match="'rmse', 'mae', 'r2', 'loss'"):
        mlplab.MLPRegressor(monitor="accuracy", **FAST).fit(X, X[:, 0])
    reg = mlplab.MLPRegressor(**FAST).fit(X, X[:, 0])  # default: rmse, like the training MSE
    assert reg.best_epoch_ == 1 + int(np.argmin([c["val_rmse"] for c in reg.curves_]))


def frames(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    n = 240
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "city": pd.Categorical(rng.choice(["Oslo", "Lima", "Pune"], n))})
    y = pd.Series(np.where(X["a"] + (X["city"] == "Lima") > 0.5, "yes", "no"))
    return X[:160], y[:160], X[160:].reset_index(drop=True), y[160:].reset_index(drop=True)


def test_eval_set_is_the_validation_split_and_no_rows_are_held_out() -> None:
    X, y, X_val, y_val = frames()
    clf = mlplab.MLPClassifier(**FP32).fit(X, y, eval_set=(X_val, y_val))
    # preprocessing fitted on every training row, and on none of the validation rows
    np.testing.assert_allclose(clf.features_.means, X[["a", "b"]].mean(), rtol=1e-12)
    held_out = mlplab.MLPClassifier(**FP32).fit(X, y)
    assert not np.allclose(held_out.features_.means, X[["a", "b"]].mean(), rtol=1e-6)
    # the curves' validation log-loss is the loss on X_val at that epoch
    best = clf.curves_[clf.best_epoch_ - 1]
    assert best["val_log_loss"] == pytest.approx(
        log_loss(y_val, clf.predict_proba(X_val), labels=clf.classes_), rel=1e-5)
    # a list holding one pair (XGBoost/LightGBM style), shuffled columns, sample weights
    again = mlplab.MLPClassifier(**FP32).fit(X, y, eval_set=[(X_val[["city", "b", "a"]], y_val)],
                                            sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(again.predict_proba(X_val), clf.predict_proba(X_val))
    shifted = X_val.assign(a=X_val["a"] + 100)  # validation rows never move the preprocessing
    moved = mlplab.MLPClassifier(**FP32).fit(X, y, eval_set=(shifted, y_val))
    np.testing.assert_array_equal(moved.features_.means, clf.features_.means)


def test_eval_set_for_regression_with_arrays() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    y = 5 * X[:, 0] + 100
    reg = mlplab.MLPRegressor(**FP32).fit(X[:150], y[:150], eval_set=(X[150:], y[150:]))
    best = reg.curves_[reg.best_epoch_ - 1]
    rmse = float(np.sqrt(np.mean((reg.predict(X[150:]) - y[150:]) ** 2)))
    assert best["val_rmse"] == pytest.approx(rmse, rel=1e-4)
    assert reg.target_.mean == pytest.approx(y[:150].mean())


@pytest.mark.parametrize(("bad", "message"), [
    (lambda Xv, yv: (Xv,), "eval_set: expected a pair \\(X_val, y_val\\); got tuple of length 1"),
    (lambda Xv, yv: Xv, "eval_set: expected a pair"),
    (lambda Xv, yv: (None, yv), "got None in it"),
    (lambda Xv, yv: (Xv.drop(columns="b"), yv), "eval_set: X_val has no column 'b'"),
    (lambda Xv, yv: (Xv.assign(c=1.0), yv), "eval_set: X_val has a column 'c' that X does not"),
    (lambda Xv, yv: (Xv, yv[:-1]), "eval_set: X_val has 80 rows but y_val has 79"),
    (lambda Xv, yv: (Xv, yv.replace("yes", "maybe")),
     "eval_set: y_val holds a class 'maybe' that y does not have"),
    (lambda Xv, yv: (Xv.assign(a="x"), yv),
     "eval_set: column 'a' is numeric in X but holds non-numeric values like 'x' in X_val"),
])
def test_eval_set_errors_name_the_problem(bad, message: str) -> None:
    X, y, X_val, y_val = frames()
    with pytest.raises(mlplab.DataError, match=message):
        mlplab.MLPClassifier(**FAST).fit(X, y, eval_set=bad(X_val, y_val))


def test_eval_set_array_shapes() -> None:
    X = np.random.default_rng(0).normal(size=(60, 3))
    with pytest.raises(mlplab.DataError, match="eval_set: X_val has 2 columns but X has 3"):
        mlplab.MLPRegressor(**FAST).fit(X, X[:, 0], eval_set=(X[:10, :2], X[:10, 0]))
    with pytest.raises(mlplab.DataError, match="must be 2-D"):
        mlplab.MLPRegressor(**FAST).fit(X, X[:, 0], eval_set=(X[:10, 0], X[:10, 0]))


def test_block_activation_unit_keywords() -> None:
    X, y, _, _ = frames()
    clf = mlplab.MLPClassifier(block="swiglu", activation="gelu", **FAST).fit(X, y)
    spec = clf.model_spec_
    assert (spec.block, spec.activation, spec.norm, spec.ensemble) == (
        "swiglu", "gelu", "layernorm", "none")
    tabm = mlplab.TabMClassifier(block="standard", k=2, d_block=8, max_epochs=1, threads=1)
    assert (tabm._model_spec().block, tabm._model_spec().ensemble) == ("standard", "tabm")
    assert mlplab.MLPClassifier(arch="resnet")._model_spec().block == "standard"
    assert mlplab.MLPClassifier()._model_spec().activation == "relu"
    kan = mlplab.MLPRegressor(unit="kan", unit_options={"grid": 4}, **FAST)
    assert kan._model_spec().activation is None  # no ReLU stacked on a nonlinear unit
    assert mlplab.MLPRegressor(unit="kan", activation="silu")._model_spec().activation == "silu"
    kan.fit(X[["a"]], np.asarray(X["a"]) ** 2)
    assert not any(isinstance(m, torch.nn.ReLU) for m in kan.model_.modules())
    with pytest.raises(mlplab.SpecError, match="block: unknown block 'hourglas'; did you mean"):
        mlplab.MLPClassifier(block="hourglas", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="activation: unknown activation 'swish'"):
        mlplab.MLPClassifier(activation="swish", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="unit: unknown unit 'nope'"):
        mlplab.MLPClassifier(unit="nope", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="leave unit=None"):
        mlplab.TabMClassifier(unit="batchensemble", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="unit_options.*'bogus'"):
        mlplab.MLPClassifier(unit_options={"bogus": 1}, **FAST).fit(X, y)


def test_threads_apply_to_fit_and_predict_only(monkeypatch) -> None:
    X, y, _, _ = frames()
    seen = []
    forward = mlplab.estimators.base.predict_batches
    monkeypatch.setattr(mlplab.estimators.base, "predict_batches",
                        lambda *a, **k: seen.append(torch.get_num_threads()) or forward(*a, **k))
    before = torch.get_num_threads()
    clf = mlplab.MLPClassifier(**{**FAST, "threads": 2}).fit(X, y)
    clf.predict(X)
    assert seen == [2] and torch.get_num_threads() == before
    monkeypatch.setattr(mlplab.estimators.specs, "default_threads", lambda: 1)
    mlplab.MLPClassifier(**{**FAST, "threads": None}).fit(X, y).predict(X)
    assert seen == [2, 1]
    with pytest.raises(mlplab.SpecError, match="threads: expected None or a positive integer"):
        mlplab.MLPClassifier(**{**FAST, "threads": 0}).fit(X, y)


def test_device_auto_cpu_and_a_clear_cuda_error() -> None:
    X, y, _, _ = frames()
    mlplab.MLPClassifier(device="cpu", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="device: unknown device 'gpu'; choose 'auto', 'cpu'"):
        mlplab.MLPClassifier(device="gpu", **FAST).fit(X, y)
    with pytest.raises(mlplab.SpecError, match="device: 'cuda' is not available"):
        mlplab.MLPClassifier(device="cuda", **FAST).fit(X, y)


def test_predict_copies_nothing_and_rows_do_not_depend_on_each_other(monkeypatch) -> None:
    X, y, _, _ = frames()
    clf = mlplab.TabMClassifier(k=4, num_embeddings="plr", **FAST).fit(X, y)
    full = clf.predict_proba(X)
    monkeypatch.setattr(copy, "deepcopy", lambda *a: pytest.fail("predict copied the model"))
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(clf.predict_proba(X.iloc[order]), full[order])
    np.testing.assert_array_equal(clf.predict_proba(X.iloc[5:9]), full[5:9])
    singles = np.vstack([clf.predict_proba(X.iloc[i:i + 1]) for i in range(0, 160, 23)])
    np.testing.assert_array_equal(singles, full[::23])
    assert full.dtype == np.float64 and np.allclose(full.sum(1), 1.0, atol=1e-12)
