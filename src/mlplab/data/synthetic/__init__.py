"""Synthetic sources: data generated offline, deterministically from the spec's `seed`.

`synthetic:formula/<name>` (formulas with input ranges, `formulas.py`) and
`synthetic:periodic/<name>` (train on one interval, test on a wider one, `periodic.py`).
Options follow the name as a query string, `synthetic:formula/kan-hello?n_train=2000&noise=0.01`:

- `n_train` (1000), `n_test` (1000): rows drawn uniformly over the ranges; they become the
  dataset's train and test splits (validation rows are carved from the training rows);
- `noise` (0): gaussian noise added to the training targets, its std relative to the std of the
  clean training targets; test targets stay noise-free, so test RMSE measures the distance to
  the true function.

Same seed, same rows; train inputs, test inputs and noise come from separate streams, so
`n_train` does not change the test rows.
"""

from __future__ import annotations

import math
import zlib
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from mlplab.data.sources import RawTable
from mlplab.data.synthetic.formulas import FORMULAS
from mlplab.data.synthetic.functions import Function
from mlplab.data.synthetic.periodic import PERIODIC
from mlplab.errors import DataError
from mlplab.messages import close_matches, did_you_mean, name_list, short_repr, suggest

FAMILIES: dict[str, dict[str, Function]] = {"formula": FORMULAS, "periodic": PERIODIC}
DEFAULTS: dict[str, float] = {"n_train": 1000, "n_test": 1000, "noise": 0.0}
MAX_ROWS = 1_000_000
TARGET = "target"


def catalogue() -> list[tuple[str, str]]:
    """`(source, one-line description with input ranges)` for every synthetic source."""
    return [(f"synthetic:{family}/{name}", fn.describe())
            for family, table in FAMILIES.items() for name, fn in table.items()]


def _lookup(ref: str, source: str) -> tuple[str, str, Function]:
    family, sep, name = ref.partition("/")
    if not sep or family not in FAMILIES:
        hint = suggest(f"synthetic:{f}/{name or '<name>'}"
                       for f in close_matches(family, FAMILIES, n=1))
        raise DataError(f"data.source: expected synthetic:formula/<name> or "
                        f"synthetic:periodic/<name>, got {short_repr(source)}"
                        f"{'; ' + hint if hint else ''}")
    table = FAMILIES[family]
    by_lower = {n.lower(): n for n in table}
    if name.lower() not in by_lower:
        hint = suggest(f"synthetic:{family}/{n}" for n in close_matches(name, table, n=3))
        raise DataError(f"data.source: synthetic:{family} has no function {short_repr(name)}; "
                        f"{hint + ' ' if hint else ''}choose one of {name_list(table, limit=40)}")
    name = by_lower[name.lower()]
    return family, name, table[name]


def _value(key: str, text: str, source: str) -> float:
    try:
        value = int(text) if key != "noise" else float(text)
    except ValueError:
        value = math.nan
    low = 10 if key == "n_train" else (1 if key == "n_test" else 0)
    if key == "noise" and math.isfinite(value) and value >= 0:
        return value
    if key != "noise" and not math.isnan(value) and low <= value <= MAX_ROWS:
        return value
    expected = ("a finite number >= 0" if key == "noise"
                else f"an integer from {low} to {MAX_ROWS:,}")
    raise DataError(f"data.source: option {key} of {short_repr(source)} expected {expected}, "
                    f"got {short_repr(text)}")


def parse_options(query: str, source: str) -> dict[str, float]:
    """`n_train=2000&noise=0.01` -> the options with defaults filled in; `DataError` naming an
    unknown, repeated or bad option."""
    options = dict(DEFAULTS)
    if not query:
        return options
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DataError(f"data.source: cannot read the options {short_repr(query)} of "
                        f"{short_repr(source)}; write them as ?n_train=2000&noise=0.01") from None
    seen: set[str] = set()
    for key, text in pairs:
        if key not in DEFAULTS:
            hint = did_you_mean(key, DEFAULTS)
            raise DataError(f"data.source: unknown option {short_repr(key)} in "
                            f"{short_repr(source)}; {hint + ' ' if hint else ''}options: "
                            f"{', '.join(DEFAULTS)}")
        if key in seen:
            raise DataError(f"data.source: option {key} is given twice in {short_repr(source)}")
        seen.add(key)
        options[key] = _value(key, text, source)
    return options


def _draw(rng: np.random.Generator, ranges: dict[str, tuple[float, float]],
          n: int) -> dict[str, np.ndarray]:
    return {name: rng.uniform(lo, hi, size=n) for name, (lo, hi) in ranges.items()}


def load_synthetic(ref: str, *, seed: int = 0) -> RawTable:
    """Generate `synthetic:<family>/<name>[?options]` (`ref` without the scheme) from `seed`.

    The table holds the inputs and `target`, `n_train + n_test` rows; `split` marks them
    `train` / `test`.
    """
    source = "synthetic:" + ref
    ref, _, query = ref.partition("?")
    family, name, fn = _lookup(ref, source)
    options = parse_options(query, source)
    n_train, n_test = int(options["n_train"]), int(options["n_test"])
    stream = np.random.SeedSequence([seed, zlib.crc32(f"{family}/{name}".encode())])
    train_rng, test_rng, noise_rng = (np.random.default_rng(s) for s in stream.spawn(3))
    x_train, x_test = _draw(train_rng, fn.train, n_train), _draw(test_rng, fn.test_ranges, n_test)
    with np.errstate(all="ignore"):
        y_train = np.asarray(fn.fn(*x_train.values()), dtype=np.float64)
        y_test = np.asarray(fn.fn(*x_test.values()), dtype=np.float64)
    if options["noise"] > 0:
        scale = options["noise"] * float(np.std(y_train))
        y_train = y_train + scale * noise_rng.standard_normal(n_train)
    columns = {c: np.concatenate([x_train[c], x_test[c]]) for c in x_train}
    frame = pd.DataFrame({**columns, TARGET: np.concatenate([y_train, y_test])})
    if not np.isfinite(frame.to_numpy()).all():
        raise DataError(f"data.source: {short_repr(source)} produced non-finite values")
    split = np.repeat(np.array(["train", "test"]), [n_train, n_test])
    return RawTable(frame, TARGET, "regression", split=split)
