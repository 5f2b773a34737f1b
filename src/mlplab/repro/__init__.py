"""`mlplab repro NAME`: published claims re-checked by one command, with a measured verdict.

Each reproduction (one module here) registers a `Reproduction`: the paper, its claim, the
figures it reports, a protocol of ordinary sweeps and the claims judged by the one rule of
`mlplab.repro.verdict`. The module itself is callable, so `mlplab.repro("tabm")` runs one:

```python
verdict = mlplab.repro("tabm", out="runs/repro-tabm")   # a Verdict; verdict.outcome
```
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from mlplab.errors import SpecError
from mlplab.messages import did_you_mean
from mlplab.repro.base import Claim, Part, Reproduction
from mlplab.repro.verdict import AGREES, DISAGREES, INCONCLUSIVE, OUTCOMES, Verdict

REPRODUCTIONS: dict[str, Reproduction] = {}

__all__ = ["REPRODUCTIONS", "Reproduction", "Part", "Claim", "Verdict", "register", "get",
           "run", "OUTCOMES", "AGREES", "DISAGREES", "INCONCLUSIVE"]


def register(repro: Reproduction) -> Reproduction:
    if repro.name in REPRODUCTIONS:
        raise ValueError(f"reproduction {repro.name!r} is registered twice")
    REPRODUCTIONS[repro.name] = repro
    return repro


def get(name: str) -> Reproduction:
    """The registered reproduction `name`; `SpecError` with the close names otherwise."""
    if name not in REPRODUCTIONS:
        hint = did_you_mean(name, list(REPRODUCTIONS))
        raise SpecError(f"repro: unknown reproduction {name!r}; {hint + ' ' if hint else ''}"
                        f"choose one of {', '.join(sorted(REPRODUCTIONS))} "
                        "(mlplab repro --list)")
    return REPRODUCTIONS[name]


def run(name: str, *, out: str | Path | None = None, full: bool = False,
        workers: int | None = None, protocol: dict[str, Any] | None = None,
        quiet: bool = True, reports: bool = True) -> Verdict:
    """Run (or resume, or extend) the reproduction `name` and return its `Verdict`.

    `out` (default `runs/repro-<name>`) holds `lab.sqlite` (one sweep per part), the trials,
    `verdict.md`/`.json`/`.png` and `reports/<part>/`. `full` picks the larger protocol;
    `protocol` overrides its settings (e.g. `{"seeds": [0, 1]}`); `workers` processes split
    the cores (default: one per core; 0 runs in this process).
    """
    from mlplab.lab.sweep import cores
    from mlplab.repro.runner import run_reproduction

    repro = get(name)
    chosen = repro.protocol(full, protocol)
    if workers is None:
        workers = cores()
    if workers < 0:
        raise SpecError(f"--workers: expected 0 or more, got {workers}")
    out_dir = Path(out) if out is not None else Path("runs") / f"repro-{name}"
    script = getattr(repro, "script", None)
    if script is not None:  # measured by a short script on the public API, not by sweeps
        return script(chosen, out_dir, workers=workers, quiet=quiet, reports=reports)
    return run_reproduction(repro, chosen, out_dir, workers=workers, quiet=quiet,
                            reports=reports)


class _CallableModule(types.ModuleType):
    """Lets `mlplab.repro(name, ...)` call `run` while `mlplab.repro.get` etc. still work."""

    def __call__(self, name: str, **kwargs: Any) -> Verdict:
        return run(name, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

from mlplab.repro import fields as _fields  # noqa: E402,F401  (registers fourier-features, fresh)
from mlplab.repro import hourglass as _hourglass  # noqa: E402,F401  (registers hourglass)
from mlplab.repro import icl as _icl  # noqa: E402,F401  (registers icl)
from mlplab.repro import kan_vs_mlp as _kan_vs_mlp  # noqa: E402,F401  (registers kan-vs-mlp)
from mlplab.repro import lazy_neurons as _lazy  # noqa: E402,F401  (registers lazy-neurons)
from mlplab.repro import tabm as _tabm  # noqa: E402,F401  (registers tabm)
from mlplab.repro import tsmixer as _tsmixer  # noqa: E402,F401  (registers tsmixer)
