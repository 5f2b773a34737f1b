"""Classical baselines on the same windows as the networks: seasonal naive and ETS.

Both return forecasts `(n_windows, h, C)` in the original units for rolling origins
`starts (n,)` of a series `y (T, C)`: the forecast from origin `t` uses `y[:t]` only.

- `seasonal_naive`: `f[t + i] = y[t - m + (i mod m)]` (the last observed season repeated;
  `m = 1` is the naive forecast).
- `ets`: statsmodels' `ETSModel`, additive error, damped additive trend, additive season of
  length `m` (none when `m = 1` or the fit segment holds fewer than two seasons), fitted once
  per channel on the training part (its last `max_fit` steps); each origin's forecast comes
  from the smoothed state at that origin with the fitted parameters (no refit), the
  rolling-origin protocol of fixed-parameter evaluation.
"""

from __future__ import annotations

import warnings

import numpy as np


def seasonal_naive(y: np.ndarray, starts: np.ndarray, h: int, season: int) -> np.ndarray:
    """`(n, h, C)` forecasts; needs `starts >= season`."""
    m = max(1, season)
    lag = (np.arange(h) % m) - m  # -m, -m+1, ..., -1, -m, ...
    return y[np.asarray(starts)[:, None] + lag[None]]


def _ets_model(y: np.ndarray, season: int):  # noqa: ANN202  (statsmodels model)
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = "add" if season > 1 and len(y) >= 2 * season + 2 else None
    return ETSModel(y, error="add", trend="add", damped_trend=True, seasonal=seasonal,
                    seasonal_periods=season if seasonal else None)


def ets(y: np.ndarray, starts: np.ndarray, h: int, season: int, *, train_end: int,
        max_fit: int = 2000) -> np.ndarray:
    """`(n, h, C)` ETS(A,Ad,A) forecasts from origins `starts` (all `>= train_end - max_fit`
    plus one season), parameters fitted on `y[train_end - max_fit : train_end]`."""
    starts = np.asarray(starts)
    out = np.empty((len(starts), h, y.shape[1]))
    begin = max(0, train_end - max_fit)
    k = np.arange(1, h + 1)
    for c in range(y.shape[1]):
        series = y[begin:, c].astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = _ets_model(series[: train_end - begin], season).fit(disp=False)
            model = _ets_model(series, season)
            states = np.asarray(model.smooth(fitted.params).states)
        names = list(fitted.param_names)
        phi = float(fitted.params[names.index("damping_trend")])
        damp = np.cumsum(phi ** k)
        o = starts - begin - 1  # the state after the last observation before each origin
        f = states[o, 0][:, None] + damp[None] * states[o, 1][:, None]
        if model.seasonal:
            m = model.seasonal_periods
            idx = (o + 1)[:, None] - m + ((k - 1) % m)[None]
            f = f + states[idx, 2]
        out[:, :, c] = f
    return out
