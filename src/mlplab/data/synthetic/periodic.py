"""Periodic functions for extrapolation (`synthetic:periodic/<name>`): train on one interval,
test on a wider one, FAN's periodicity-modeling protocol (Dong et al. 2024,
`Periodicity_Modeling/generate_periodic_data.py`): test inputs cover the whole wider interval,
the training one included.

| name | f(x) | train x | test x |
|---|---|---|---|
| `sin` | sin x | [-6π, 6π] | [-18π, 18π] |
| `mod` | x mod 5 | [-20, 20] | [-40, 40] |
| `complex-1` | exp(sin²(πx) + cos x + (x mod 3) - 1) | [-4, 4] | [-8, 8] |
| `complex-2` | (1 + sin x) sin 2x | [-4, 4] | [-8, 8] |
| `complex-3` | sin(x + sin 2x) | [-4, 4] | [-8, 8] |
| `complex-4` | sin x cos² 2x + cos x sin² 3x | [-4, 4] | [-8, 8] |
| `complex-5` | Σ_{n=1..5} saw(nx)/n, saw(t) = t/π - floor(t/π + ½) | [-4, 4] | [-8, 8] |
| `complex-6` | exp(sin x) / (1 + cos² 2x) | [-4, 4] | [-8, 8] |
| `square` | +1 where sin x >= 0, else -1 | [-4π, 4π] | [-12π, 12π] |
| `harmonics` | sin x + cos 2x / 2 + sin 3x / 3 | [-4π, 4π] | [-12π, 12π] |
| `x-sin` | x sin x (growing amplitude) | [-4π, 4π] | [-8π, 8π] |

The names `sin` … `complex-6` and their intervals are FAN's; the last three are ours.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlplab.data.synthetic.functions import Function, same

PI = np.pi


def _saw(t: np.ndarray) -> np.ndarray:
    return t / PI - np.floor(t / PI + 0.5)


def _periodic(fn: Callable[[np.ndarray], np.ndarray], text: str, train: float,
              test: float) -> Function:
    return Function(fn, same("x", -train, train), text, same("x", -test, test))


PERIODIC: dict[str, Function] = {
    "sin": _periodic(np.sin, "FAN: sin x", 6 * PI, 18 * PI),
    "mod": _periodic(lambda x: np.mod(x, 5), "FAN: x mod 5", 20, 40),
    "complex-1": _periodic(lambda x: np.exp(np.sin(PI * x) ** 2 + np.cos(x) + np.mod(x, 3) - 1),
                           "FAN complex_1: exp(sin²(πx) + cos x + (x mod 3) - 1)", 4, 8),
    "complex-2": _periodic(lambda x: (1 + np.sin(x)) * np.sin(2 * x),
                           "FAN complex_2: (1 + sin x) sin 2x", 4, 8),
    "complex-3": _periodic(lambda x: np.sin(x + np.sin(2 * x)), "FAN complex_3: sin(x + sin 2x)",
                           4, 8),
    "complex-4": _periodic(lambda x: np.sin(x) * np.cos(2 * x) ** 2 + np.cos(x) * np.sin(3 * x) ** 2,
                           "FAN complex_4: sin x cos² 2x + cos x sin² 3x", 4, 8),
    "complex-5": _periodic(lambda x: sum(_saw(n * x) / n for n in range(1, 6)),
                           "FAN complex_5: sawtooth harmonics Σ_{n=1..5} saw(nx)/n", 4, 8),
    "complex-6": _periodic(lambda x: np.exp(np.sin(x)) / (1 + np.cos(2 * x) ** 2),
                           "FAN complex_6: exp(sin x) / (1 + cos² 2x)", 4, 8),
    "square": _periodic(lambda x: np.where(np.sin(x) >= 0, 1.0, -1.0),
                        "square wave sign(sin x)", 4 * PI, 12 * PI),
    "harmonics": _periodic(lambda x: np.sin(x) + np.cos(2 * x) / 2 + np.sin(3 * x) / 3,
                           "harmonics sum sin x + cos 2x / 2 + sin 3x / 3", 4 * PI, 12 * PI),
    "x-sin": _periodic(lambda x: x * np.sin(x), "x sin x (growing amplitude)", 4 * PI, 8 * PI),
}
