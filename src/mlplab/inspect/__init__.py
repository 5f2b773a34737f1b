"""`mlplab inspect`: what an MLP learned, for any model mlplab trains.

- `stats`: activation sparsity of every block's hidden layer (forward hooks), dead units,
  activation-frequency histograms; `track`: the same per epoch during training
  (`inspect.track = "sparsity"`).
- `ablation`: each block skipped, zeroed, mean-replaced or applied twice; ranked importance.
- `probes`: linear probes on each block's output for the task's labels.
- `bilinear`: eigendecomposition of `bilinear` blocks' interaction matrices.
- `transcoder`: a wide TopK sparse MLP trained to replace one block.
- `report`: `inspect.html` + `inspect.md` + `plots/` in the run directory.

The module itself is callable: `mlplab.inspect(run_or_model, data, what=[...])` returns an
`InspectReport` (see `mlplab.inspect.api.inspect`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["inspect", "InspectReport"]


def inspect(*args: Any, **kwargs: Any) -> Any:
    """See `mlplab.inspect.api.inspect`."""
    from mlplab.inspect.api import inspect as run

    return run(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "InspectReport":
        from mlplab.inspect.api import InspectReport

        return InspectReport
    raise AttributeError(f"module 'mlplab.inspect' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets `mlplab.inspect(...)` run an inspection while `mlplab.inspect.stats` etc. work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return inspect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
