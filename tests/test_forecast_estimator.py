"""MLPForecaster: fit on long frames, predict future timestamps, save/load, new histories."""

import numpy as np
import pandas as pd
import pytest

import mlplab
from mlplab.errors import DataError


def frame(n=96, ids=("a", "b"), exog=True):
    parts = []
    for k, uid in enumerate(ids):
        t = np.arange(n)
        part = pd.DataFrame({"unique_id": uid,
                             "ds": pd.date_range("2021-01-01", periods=n, freq="D"),
                             "y": 5.0 * (k + 1) + np.sin(2 * np.pi * t / 7)})
        if exog:
            part["temp"] = np.cos(2 * np.pi * t / 7)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fitted():
    return mlplab.MLPForecaster(h=7, input_size=21, model="tsmixer", max_epochs=3,
                                threads=1).fit(frame())


def test_predict_returns_the_future_of_every_series(fitted):
    out = fitted.predict()
    assert list(out.columns) == ["unique_id", "ds", "TSMixer"]
    assert len(out) == 14 and sorted(out.unique_id.unique()) == ["a", "b"]
    last = pd.Timestamp("2021-01-01") + pd.Timedelta(days=95)
    a = out[out.unique_id == "a"]
    assert list(a.ds) == list(pd.date_range(last + pd.Timedelta(days=1), periods=7, freq="D"))
    assert fitted.exog_ == ["temp"]
    assert len(fitted.predict(h=3)) == 6
    with pytest.raises(ValueError, match="forecasts 1 to 7 steps"):
        fitted.predict(h=8)


def test_save_load_predicts_the_same(fitted, tmp_path):
    fitted.save(tmp_path / "fc")
    again = mlplab.load(tmp_path / "fc")
    assert isinstance(again, mlplab.MLPForecaster)
    pd.testing.assert_frame_equal(again.predict(), fitted.predict())
    new = frame(60)
    pd.testing.assert_frame_equal(again.predict(df=new), fitted.predict(df=new))


def test_predict_from_another_history(fitted):
    shifted = frame(60)
    shifted["y"] += 100.0  # a new level: the known ids' scalers are kept, RevIN adapts
    out = fitted.predict(df=shifted)
    assert out.ds.min() == pd.Timestamp("2021-01-01") + pd.Timedelta(days=60)
    assert out.TSMixer.mean() > 50
    with pytest.raises(DataError, match="input_size = 21"):
        fitted.predict(df=frame(10))


@pytest.mark.parametrize("model,column", [("mlp", "MLP"), ("linear", "Linear")])
def test_other_models_and_multivariate(model, column):
    fc = mlplab.MLPForecaster(h=5, input_size=14, model=model, channels="multivariate",
                              max_epochs=2, threads=1).fit(frame(exog=False))
    out = fc.predict()
    assert list(out.columns) == ["unique_id", "ds", column] and len(out) == 10


def test_fit_errors_are_clear():
    with pytest.raises(DataError, match="needs at least"):
        mlplab.MLPForecaster(h=30, input_size=60, max_epochs=1).fit(frame(80))
    with pytest.raises(mlplab.SpecError, match="unknown forecasting model 'tsmix'"):
        mlplab.MLPForecaster(h=7, input_size=21, model="tsmix").fit(frame())


def test_forecaster_is_a_scikit_learn_estimator(fitted):
    from sklearn.base import BaseEstimator, clone
    from sklearn.utils.validation import check_is_fitted

    assert isinstance(fitted, BaseEstimator)
    params = fitted.get_params()
    assert params["h"] == 7 and params["model"] == "tsmixer" and params["max_epochs"] == 3
    copy = clone(fitted)
    assert copy.get_params() == params and not hasattr(copy, "model_")
    with pytest.raises(ValueError, match="not fitted"):
        copy.predict()
    assert copy.set_params(h=3, model="linear") is copy and copy.h == 3
    assert copy.name == "Linear" and fitted.h == 7
    check_is_fitted(fitted)
    learned = set(vars(fitted)) - set(params)
    assert learned and all(k.endswith("_") for k in learned)
    again = copy.fit(frame())
    assert len(again.predict()) == 6 and list(again.predict().columns)[-1] == "Linear"
