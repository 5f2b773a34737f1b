"""Huge finite feature values (±1e308) pass the infinity check but overflow standardisation:
fit, transform (predict time) and `mlplab.train` name the column instead of blaming the lr."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlplab
from mlplab.data import FeaturePreprocessor
from mlplab.errors import DataError


def test_fit_names_a_column_whose_std_overflows():
    frame = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], "huge": [1e308, -1e308, 1.0, 2.0]})
    with pytest.raises(DataError, match=r"column 'huge' holds values too large to standardise "
                                        r"\(largest magnitude 1e\+308"):
        FeaturePreprocessor(["ok", "huge"], []).fit(frame)


def test_fit_names_a_column_whose_mean_overflows():
    frame = pd.DataFrame({"big": [1.7e308, 1.7e308, 1.7e308]})  # the sum overflows, not the std
    with pytest.raises(DataError, match="column 'big' holds values too large to standardise"):
        FeaturePreprocessor(["big"], []).fit(frame)


def test_transform_names_a_column_that_overflows_float32():
    pre = FeaturePreprocessor(["a", "b"], []).fit(
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 2.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning leaks either
        with pytest.raises(DataError, match=r"column 'b' holds values too large to standardise "
                                            r".*overflows float32"):
            pre.transform(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 1e300]}))
    num, _ = pre.transform(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 1e30]}))  # large but fine
    assert np.isfinite(num).all()


def test_train_reports_the_column_not_the_learning_rate(tmp_path: Path, tiny_spec):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
    frame.loc[::7, "x"] = 1e308
    frame.loc[1::7, "x"] = -1e308
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = tiny_spec(data={"source": str(tmp_path / "t.csv"), "target": "y"})
    with pytest.raises(DataError, match="column 'x' holds values too large to standardise"):
        mlplab.train(spec, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
