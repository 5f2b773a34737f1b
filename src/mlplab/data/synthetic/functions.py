"""What a synthetic source is: a named vectorised function with input ranges per split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Ranges = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Function:
    """`fn(*columns)` maps one `(n,)` array per input (in `train` order) to targets `(n,)`.

    Training inputs are drawn uniformly from `train`, test inputs from `test` (the same
    ranges when None; a wider interval for extrapolation).
    """

    fn: Callable[..., np.ndarray]
    train: Ranges
    text: str
    test: Ranges | None = None

    @property
    def test_ranges(self) -> Ranges:
        return self.test if self.test is not None else self.train

    def describe(self) -> str:
        """One line: the description and the input ranges (`; test …` when they differ)."""
        line = f"{self.text}; {format_ranges(self.train)}"
        return line if self.test is None else f"{line}, test {format_ranges(self.test)}"


def format_ranges(ranges: Ranges) -> str:
    """`x, y in [-1, 1]` for shared ranges, else `x in [0, 1], y in [1, 5]`; `x1 … x100 (100)`
    for more than six names."""
    groups: dict[tuple[float, float], list[str]] = {}
    for name, bounds in ranges.items():
        groups.setdefault(bounds, []).append(name)
    return ", ".join(f"{_names(names)} in [{_num(lo)}, {_num(hi)}]"
                     for (lo, hi), names in groups.items())


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 6 else f"{names[0]} … {names[-1]} ({len(names)})"


def _num(value: float) -> str:
    ratio = value / np.pi
    if value != 0 and abs(ratio - round(ratio)) < 1e-12:
        return {1: "π", -1: "-π"}.get(round(ratio), f"{round(ratio)}π")
    return f"{value:g}"


def same(names: str, lo: float, hi: float) -> Ranges:
    """`same("x y", -1, 1)` -> `{"x": (-1, 1), "y": (-1, 1)}`."""
    return {name: (float(lo), float(hi)) for name in names.split()}
