"""Synthetic sources: formulas and periodic functions generated from the seed, offline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import mlplab
from mlplab import cli
from mlplab.data.dataset import build_dataset, load_table
from mlplab.data.sources import load_source, suggest_sources
from mlplab.data.splits import fixed_split_indices
from mlplab.data.synthetic import catalogue, formulas, periodic
from mlplab.spec import DataSpec

SOURCES = [source for source, _ in catalogue()]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_catalogue_has_the_required_families():
    names = list(formulas.FORMULAS)
    assert len(names) >= 12 and "kan-hello" in names
    assert sum(n.startswith("feynman-") for n in names) >= 6
    assert {"bessel-j0", "ellipj", "lpmv-m0", "sph-harm-n1m1"} <= set(names)
    assert len(periodic.PERIODIC) >= 5
    for module, table in ((formulas, formulas.FORMULAS), (periodic, periodic.PERIODIC)):
        for name in table:  # the module docstring's table names every function
            assert f"`{name}`" in module.__doc__ or f"-{name.rpartition('-')[2]}`" in module.__doc__


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_builds_finite_rows_with_its_split(source):
    raw = load_source(source, seed=0)
    fn = (formulas.FORMULAS | periodic.PERIODIC)[source.rpartition("/")[2]]
    assert list(raw.frame.columns) == [*fn.train, "target"]
    assert raw.target == "target" and raw.kind == "regression"
    assert len(raw.frame) == 2000 and np.isfinite(raw.frame.to_numpy()).all()
    assert list(raw.split).count("train") == 1000 and list(raw.split).count("test") == 1000
    train = raw.frame[raw.split == "train"]
    for column, (lo, hi) in fn.train.items():
        assert lo <= train[column].min() and train[column].max() <= hi
    assert raw.frame["target"].std() > 0


def test_rows_and_noise_options():
    raw = load_source("synthetic:formula/kan-hello?n_train=50&n_test=20", seed=0)
    assert len(raw.frame) == 70 and list(raw.split) == ["train"] * 50 + ["test"] * 20
    clean = load_source("synthetic:formula/kan-hello?n_train=200&n_test=30", seed=3).frame
    noisy_raw = load_source("synthetic:formula/kan-hello?n_train=200&n_test=30&noise=0.1", seed=3)
    noisy = noisy_raw.frame
    assert noisy[["x", "y"]].equals(clean[["x", "y"]])
    assert noisy["target"].iloc[200:].equals(clean["target"].iloc[200:])  # test stays clean
    residual = (noisy["target"] - clean["target"]).iloc[:200]
    assert 0.05 < residual.std() / clean["target"].iloc[:200].std() < 0.2


def test_same_seed_same_rows_other_seed_other_rows():
    source = "synthetic:formula/feynman-I.6.2?n_train=100&n_test=50"
    a, b = load_source(source, seed=7).frame, load_source(source, seed=7).frame
    assert a.equals(b)
    c = load_source(source, seed=8).frame
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    more = load_source(source.replace("n_train=100", "n_train=300"), seed=7).frame
    assert more.iloc[300:].reset_index(drop=True).equals(a.iloc[100:].reset_index(drop=True))
    hello = load_source("synthetic:formula/kan-xy?n_train=100&n_test=50", seed=7).frame
    assert not np.allclose(hello["x"], load_source(
        "synthetic:formula/kan-hello?n_train=100&n_test=50", seed=7).frame["x"])


@pytest.mark.parametrize("name", list(periodic.PERIODIC))
def test_periodic_tests_on_a_wider_interval(name):
    raw = load_source(f"synthetic:periodic/{name}", seed=0)
    x = raw.frame["x"].abs()
    train_max, test_max = x[raw.split == "train"].max(), x[raw.split == "test"].max()
    assert test_max > 1.5 * train_max
    assert train_max <= periodic.PERIODIC[name].train["x"][1]


def test_the_dataset_keeps_the_sources_split():
    spec = DataSpec(source="synthetic:periodic/sin?n_train=400&n_test=300")
    data = build_dataset(spec, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (340, 60, 300)
    x_train = data.features.numeric_features  # standardised with the training rows' statistics
    assert x_train == ["x"]
    assert data.test.x.abs().max() > 2 * data.train.x.abs().max()  # [-18π, 18π] vs [-6π, 6π]
    again = build_dataset(spec, seed=0)
    assert bool((again.train.x == data.train.x).all()) and bool((again.test.y == data.test.y).all())
    pooled = build_dataset(spec.model_copy(update={"split": "random"}), seed=0)
    assert len(pooled.test) == round(0.15 * 700)


def test_max_rows_keeps_the_split_labels_with_their_rows():
    spec = DataSpec(source="synthetic:periodic/sin?n_train=400&n_test=400", max_rows=200)
    raw, _ = load_table(spec, seed=0)
    assert len(raw.frame) == len(raw.split) == 200
    x = raw.frame["x"].abs()
    assert x[raw.split == "train"].max() <= 6 * np.pi
    assert x[raw.split == "test"].max() > 6 * np.pi


def test_fixed_split_indices():
    labels = np.array(["train"] * 8 + ["val"] * 2 + ["test"] * 3)
    train, val, test = fixed_split_indices(labels, val_fraction=0.5, seed=0)
    assert list(train) == list(range(8)) and list(val) == [8, 9] and list(test) == [10, 11, 12]
    train, val, _ = fixed_split_indices(np.array(["train"] * 10 + ["test"]), val_fraction=0.2,
                                        seed=0)
    assert len(train) == 8 and len(val) == 2 and not set(train) & set(val)
    with pytest.raises(mlplab.DataError, match="label 'dev'"):
        fixed_split_indices(np.array(["train", "dev", "test"]), val_fraction=0.2, seed=0)
    with pytest.raises(mlplab.DataError, match="no test rows"):
        fixed_split_indices(np.array(["train"] * 10), val_fraction=0.2, seed=0)


@pytest.mark.parametrize(("source", "expected"), [
    ("synthetic:formula/kan-helo", "did you mean 'synthetic:formula/kan-hello'?"),
    ("synthetic:formula/FEYNMAN-i.6.2x", "did you mean 'synthetic:formula/feynman-I.6.2'"),
    ("synthetic:periodic/sine", "did you mean 'synthetic:periodic/sin'"),
    ("synthetic:formulas/kan-hello", "did you mean 'synthetic:formula/kan-hello'?"),
    ("synthetic:kan-hello", "expected synthetic:formula/<name> or synthetic:periodic/<name>"),
    ("synthetic:formula/kan-hello?ntrain=5", "unknown option 'ntrain'"),
    ("synthetic:formula/kan-hello?ntrain=5", "did you mean 'n_train'?"),
    ("synthetic:formula/kan-hello?n_train=abc", "option n_train of"),
    ("synthetic:formula/kan-hello?n_train=5", "an integer from 10 to 1,000,000, got '5'"),
    ("synthetic:formula/kan-hello?n_test=0", "option n_test"),
    ("synthetic:formula/kan-hello?noise=-1", "a finite number >= 0, got '-1'"),
    ("synthetic:formula/kan-hello?noise=nan", "a finite number >= 0"),
    ("synthetic:formula/kan-hello?noise=0.1&noise=0.2", "option noise is given twice"),
    ("synthetic:formula/kan-hello?n_train", "cannot read the options 'n_train'"),
])
def test_bad_names_and_options_are_one_line_errors(source, expected):
    with pytest.raises(mlplab.DataError) as err:
        load_source(source)
    message = str(err.value)
    assert expected in message and "\n" not in message and message.startswith("data.source: ")


def test_case_insensitive_names_and_bare_names_suggest_the_source():
    assert load_source("synthetic:formula/FEYNMAN-i.6.2?n_train=10&n_test=5").frame.shape == (15, 3)
    assert "synthetic:formula/kan-hello" in suggest_sources("kan-hello")
    with pytest.raises(mlplab.DataError, match="did you mean 'synthetic:formula/kan-hello'"):
        load_source("kan-hello")


def test_spherical_harmonics_match_scipy():
    if not hasattr(special, "sph_harm_y"):
        pytest.skip("scipy < 1.15 has no sph_harm_y")
    phi, theta = np.linspace(0, 2 * np.pi, 9), np.linspace(0, np.pi, 9)
    for n, m in ((1, 1), (2, 1), (2, 2)):
        ours = formulas.FORMULAS[f"sph-harm-n{n}m{m}"].fn(phi, theta)
        np.testing.assert_allclose(ours, special.sph_harm_y(n, m, theta, phi).real, atol=1e-12)


def test_synthetic_sources_are_regression_before_loading():
    with pytest.raises(mlplab.SpecError, match="train.monitor"):
        mlplab.parse_spec({"data": {"source": "synthetic:formula/kan-hello"},
                           "train": {"monitor": "accuracy"}})


def test_datasets_lists_synthetic_sources_and_their_columns(capsys):
    assert cli.run(["datasets"]) == 0
    out = flat(capsys.readouterr().out)
    assert "synthetic:formula/kan-hello" in out and "synthetic:periodic/sin" in out
    assert "hello formula exp(sin(πx)" in out and "SOURCE?n_train=1000&n_test=1000" in out
    assert cli.run(["datasets", "--columns", "synthetic:formula/kan-hello"]) == 0
    out = flat(capsys.readouterr().out)
    assert "2,000 rows, 3 columns" in out and "target" in out
    assert cli.run(["datasets", "--columns", "synthetic:formula/kan-helo"]) == 2
    assert "did you mean 'synthetic:formula/kan-hello'?" in flat(capsys.readouterr().err)


def test_a_tiny_kan_trains_on_a_formula(tiny_spec):
    spec = tiny_spec(data={"source": "synthetic:formula/kan-xy?n_train=64&n_test=32"},
                     model={"unit": "kan", "unit_options": {"grid": 3}, "block": "plain",
                            "width": 4, "depth": 1, "norm": "none"},
                     train={"epochs": 2})
    result = mlplab.train(spec)
    assert np.isfinite(result.metrics["test"]["rmse"])
    assert result.metrics["test"]["rmse"] == mlplab.train(spec).metrics["test"]["rmse"]
