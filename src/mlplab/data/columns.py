"""Column discovery: what a source's table holds, before writing a spec for it."""

from __future__ import annotations

import pandas as pd

from mlplab.data.dataset import is_categorical
from mlplab.data.sources import RawTable

MAX_LEVELS_SHOWN = 4
MAX_LEVEL_CHARS = 24


def _cut(level: str) -> str:
    return level if len(level) <= MAX_LEVEL_CHARS else level[: MAX_LEVEL_CHARS - 1] + "…"


def describe_columns(raw: RawTable) -> pd.DataFrame:
    """One row per column: `column`, `dtype`, `kind` (numeric/categorical, as mlplab reads it),
    `missing` (share of rows, 0..1), `distinct` (number of distinct non-missing values),
    `levels` (the most frequent few for categorical columns) and `role` (`target` for the
    column a bundled set predicts)."""
    rows = []
    for name in raw.frame.columns:
        col = raw.frame[name]
        categorical = is_categorical(col)
        levels = ""
        if categorical:
            counts = col.astype(str)[col.notna()].value_counts().sort_index()
            counts = counts.sort_values(ascending=False, kind="stable")  # ties: by name
            shown = ", ".join(_cut(str(v)) for v in counts.index[:MAX_LEVELS_SHOWN])
            levels = shown + (", …" if len(counts) > MAX_LEVELS_SHOWN else "")
        rows.append({
            "column": str(name), "dtype": str(col.dtype),
            "kind": "categorical" if categorical else "numeric",
            "missing": float(col.isna().mean()) if len(col) else 0.0,
            "distinct": int(col.nunique()), "levels": levels,
            "role": "target" if name == raw.target else "",
        })
    return pd.DataFrame(rows, columns=["column", "dtype", "kind", "missing", "distinct", "levels",
                                       "role"])
