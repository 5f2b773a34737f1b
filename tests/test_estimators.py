"""The scikit-learn estimators: pandas input, errors, weights, warm start, persistence, sklearn tools."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlplab

FAST = dict(d_block=16, max_epochs=15, lr=1e-2, batch_size=32, random_state=0)


def frame(n: int = 160, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, categorical (pandas category + object) and NaN columns; the label depends on all."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = pd.Categorical(rng.choice(["S", "M", "L"], size=n))
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x2[rng.random(n) < 0.2] = np.nan
    score = x1 + (colour == "red") * 2.0 - (np.asarray(size) == "L") * 1.5
    y = pd.Series(np.where(score > 0.3, "yes", "no"), name="label")
    X = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "size": size})
    return X, y


def test_pandas_categoricals_nans_and_unseen_categories() -> None:
    X, y = frame()
    clf = mlplab.MLPClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert list(clf.feature_names_in_) == ["x1", "x2", "colour", "size"]
    assert clf.n_features_in_ == 4
    assert clf.features_.categorical == ["colour", "size"]
    assert clf.features_.indicators == ["x2"]  # NaN -> median imputation + indicator column
    assert clf.score(X, y) > 0.8
    new = X.head(4).copy()
    new["colour"] = ["purple", None, "red", "green"]  # unseen and missing -> the unknown slot
    new.loc[new.index[0], "x2"] = np.nan
    proba = clf.predict_proba(new)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1.0)
    assert set(clf.predict(new)) <= {"no", "yes"}


def test_tabm_classifier_multiclass_decision_function() -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    clf = mlplab.TabMClassifier(k=4, num_embeddings="plr", **FAST).fit(X, y)
    assert clf.model_(torch.zeros(2, 4)).shape == (2, 4, 3)  # k members
    proba = clf.predict_proba(X)
    dec = clf.decision_function(X)
    assert dec.shape == (150, 3)
    assert np.array_equal(dec.argmax(1), clf.predict(X)) and np.allclose(np.exp(dec), proba)
    assert clf.score(X, y) > 0.85


def test_binary_decision_function_is_log_odds() -> None:
    X, y = frame()
    clf = mlplab.MLPClassifier(arch="resnet", **FAST).fit(X, y)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(clf.decision_function(X), np.log(p[:, 1] / p[:, 0]), rtol=1e-6)


def test_single_class_and_string_target_errors() -> None:
    X, _ = frame(40)
    with pytest.raises(mlplab.DataError, match="one class"):
        mlplab.MLPClassifier(**FAST).fit(X, ["a"] * 40)
    with pytest.raises(mlplab.DataError, match="numeric target"):
        mlplab.MLPRegressor(**FAST).fit(X, ["cheap", "dear"] * 20)
    with pytest.raises(mlplab.SpecError, match="arch"):
        mlplab.MLPRegressor(arch="transformer").fit(X, np.arange(40.0))
    with pytest.raises(mlplab.SpecError, match="num_embeddings"):
        mlplab.MLPRegressor(num_embeddings="fourier").fit(X, np.arange(40.0))


def test_regressor_archs_and_ple() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 100 + 10 * np.sin(2 * X[:, 0]) + 5 * X[:, 1]
    for arch, emb in [("mlp", None), ("tabm-mini", "ple"), ("hourglass", None)]:
        reg = mlplab.MLPRegressor(arch=arch, num_embeddings=emb, k=4 if arch == "tabm-mini" else None,
                                  **{**FAST, "max_epochs": 30}).fit(X, y)
        assert reg.predict(X).shape == (300,)
        assert reg.score(X, y) > 0.6, arch


def test_sample_weight_changes_the_fit() -> None:
    X, y = frame()
    base = mlplab.MLPClassifier(**FAST).fit(X, y)
    w = np.where(y == "yes", 50.0, 1.0)
    weighted = mlplab.MLPClassifier(**FAST).fit(X, y, sample_weight=w)
    assert weighted.predict_proba(X)[:, 1].mean() > base.predict_proba(X)[:, 1].mean()
    ones = mlplab.MLPClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(ones.predict_proba(X), base.predict_proba(X))


def test_fit_is_reproducible_and_warm_start_continues() -> None:
    X, y = frame()
    a = mlplab.MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    b = mlplab.MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    warm = mlplab.MLPClassifier(**{**FAST, "max_epochs": 3}, warm_start=True).fit(X, y)
    model = warm.model_
    first = warm.predict_proba(X)
    warm.fit(X, y)
    assert warm.model_ is model  # the same network kept training
    assert not np.array_equal(first, warm.predict_proba(X))


def test_save_load_and_pickle_predict_identically(tmp_path) -> None:
    X, y = frame()
    clf = mlplab.TabMClassifier(k=4, num_embeddings="ple", **FAST).fit(X, y)
    clf.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["estimator.json",
                                                                   "model.safetensors"]
    loaded = mlplab.load(tmp_path / "clf")
    assert type(loaded) is mlplab.TabMClassifier and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert list(loaded.feature_names_in_) == list(clf.feature_names_in_)
    assert len(clf.curves_) == clf.n_iter_ > 0 and loaded.curves_ == clf.curves_
    assert (loaded.n_iter_, loaded.best_epoch_) == (clf.n_iter_, clf.best_epoch_)
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(mlplab.SpecError, match="no saved estimator"):
        mlplab.load(tmp_path)


def test_cat_encoding_defaults_per_arch_and_validation() -> None:
    assert mlplab.TabMClassifier()._model_spec().cat_encoding == "onehot"  # TabM paper
    assert mlplab.MLPRegressor(arch="tabm-mini")._model_spec().cat_encoding == "onehot"
    assert mlplab.MLPClassifier()._model_spec().cat_encoding == "embedding"
    assert mlplab.TabMRegressor(cat_encoding="embedding")._model_spec().cat_encoding == "embedding"
    assert mlplab.MLPClassifier(cat_encoding="onehot")._model_spec().cat_encoding == "onehot"
    X, y = frame(40)
    with pytest.raises(mlplab.SpecError, match="cat_encoding: unknown 'one-hot'; choose None"):
        mlplab.MLPClassifier(cat_encoding="one-hot", **FAST).fit(X, y)


def test_onehot_categoricals_unseen_and_save_load(tmp_path) -> None:
    X, y = frame()
    clf = mlplab.MLPClassifier(cat_encoding="onehot", **FAST).fit(X, y)
    assert clf.model_spec_.cat_encoding == "onehot"
    assert clf.model_.adapter.feature_widths[-2:] == [4, 4]  # 3 categories + the unknown slot
    assert clf.score(X, y) > 0.8
    new = X.head(4).copy()
    new["colour"] = ["purple", None, "red", "green"]  # unseen and missing -> the unknown slot
    proba = clf.predict_proba(new)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1.0)
    clf.save(tmp_path / "clf")
    loaded = mlplab.load(tmp_path / "clf")
    assert loaded.get_params() == clf.get_params() and loaded.cat_encoding == "onehot"
    assert loaded.model_spec_.cat_encoding == "onehot"
    np.testing.assert_array_equal(loaded.predict_proba(new), proba)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_regressor_save_load(tmp_path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) * 1000
    reg = mlplab.MLPRegressor(**FAST).fit(X, y)
    reg.save(tmp_path / "reg")
    np.testing.assert_array_equal(mlplab.load(tmp_path / "reg").predict(X), reg.predict(X))


def test_sklearn_tools_pipeline_cv_grid_clone() -> None:
    X, y = frame(120)
    # the label is a linear rule of these three numbers: far above the majority rate (0.6)
    numeric = np.column_stack([X["x1"], X["colour"] == "red", np.asarray(X["size"]) == "L"])
    scores = cross_val_score(make_pipeline(StandardScaler(), mlplab.MLPClassifier(**FAST)),
                             numeric.astype(float), y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    # one hidden unit cannot learn the rule, sixteen can: the search must find that
    grid = GridSearchCV(mlplab.MLPClassifier(**FAST), {"d_block": [1, 16]}, cv=2).fit(X, y)
    low, high = grid.cv_results_["mean_test_score"]
    assert high > low + 0.1
    assert grid.best_params_ == {"d_block": 16} and grid.best_estimator_.d_block == 16
    assert grid.best_estimator_.model_spec_.width == 16  # refit with the winning value
    cloned = clone(mlplab.TabMRegressor(k=8, d_block=32))
    assert cloned.get_params()["k"] == 8 and not hasattr(cloned, "model_")


def test_bf16_precision_and_verbose_progress(capsys) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] * 3 + 1
    reg = mlplab.MLPRegressor(precision="bf16", verbose=1, **{**FAST, "max_epochs": 20}).fit(X, y)
    assert reg.score(X, y) > 0.5
    assert "epoch 1/20" in capsys.readouterr().err
    with pytest.raises(mlplab.SpecError, match="precision"):
        mlplab.MLPRegressor(precision="fp8").fit(X, y)
