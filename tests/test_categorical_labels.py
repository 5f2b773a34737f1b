"""Categorical codes do not depend on how a CSV reader typed the column (int vs float)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlplab.data.preprocess import FeaturePreprocessor


def test_integer_codes_survive_a_gap_that_makes_the_column_float() -> None:
    train = pd.DataFrame({"zone": [3, 7, 7, 11, 3], "x": [0.0, 1.0, 2.0, 3.0, 4.0]})
    with_gap = pd.DataFrame({"zone": [3.0, np.nan, 11.0, 7.0], "x": [0.0, 1.0, 2.0, 3.0]})
    pre = FeaturePreprocessor(["x"], ["zone"]).fit(train)
    _, cat = pre.transform(with_gap)
    assert cat[:, 0].tolist() == [2, 0, 1, 3]  # vocab sorted as strings: "11", "3", "7"
    assert pre.vocab["zone"] == ["11", "3", "7"]

    pre_gap = FeaturePreprocessor(["x"], ["zone"]).fit(with_gap)  # fitted on the float column
    assert pre_gap.vocab["zone"] == ["11", "3", "7"]
    _, cat_int = pre_gap.transform(train)
    assert cat_int[:, 0].tolist() == [2, 3, 3, 1, 2]


def test_fractional_floats_and_strings_keep_their_labels() -> None:
    frame = pd.DataFrame({"c": [0.5, 2.0, 0.5], "s": ["1.0", "a", "1.0"]})
    pre = FeaturePreprocessor([], ["c", "s"]).fit(frame)
    assert pre.vocab == {"c": ["0.5", "2"], "s": ["1.0", "a"]}


def test_a_vocabulary_saved_with_float_labels_still_matches_integers() -> None:
    old = FeaturePreprocessor.from_dict({"numeric": [], "categorical": ["zone"],
                                         "vocab": {"zone": ["11.0", "3.0", "7.0"]}})
    _, cat = old.transform(pd.DataFrame({"zone": [7, 3, 11, 5]}))
    assert cat[:, 0].tolist() == [3, 2, 1, 0]
