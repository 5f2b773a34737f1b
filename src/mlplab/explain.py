"""The one line (and exit code) the `mlplab` command prints for a failure.

- `MlplabError` (bad spec or data, a corrupt run file, a diverged run, a busy run directory):
  its message, exit code 2.
- `OSError` from a file operation (disk full, permission denied, name too long, ...): what
  the system said and the file it said it about, exit code 2.
- Out of memory: said so, with what to shrink, exit code 2.
- Anything else is a bug in mlplab: `internal error: <type>: <message>` and a pointer to
  `--debug` (or `MLPLAB_DEBUG=1`), which shows the traceback instead; exit code 1.

Every message is one line, and long values (a 10 MB string given as a path) are cut.
"""

from __future__ import annotations

import os
import sys

from mlplab.errors import MlplabError

MAX_CHARS = 1000
DEBUG_HINT = "run with --debug (or MLPLAB_DEBUG=1) for the traceback"


def shorten(text: str, limit: int = MAX_CHARS) -> str:
    """`text` on one line; beyond `limit` characters its middle is replaced by `…`."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]} … {text[-half:]}"


def debug_requested(flag: bool = False) -> bool:
    """`--debug`, or the environment variable MLPLAB_DEBUG set to anything but '' or '0'."""
    return flag or os.environ.get("MLPLAB_DEBUG", "").strip() not in ("", "0")


def _os_error(err: OSError) -> str:
    what = err.strerror or str(err) or type(err).__name__
    names = [os.fsdecode(n) for n in (err.filename, err.filename2) if n is not None]
    where = " -> ".join(repr(shorten(name, 200)) for name in names)
    return f"{what}: {where}" if where else what


def _out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)


def explain(err: BaseException) -> tuple[str, int]:
    """`(one-line message without the "error: " prefix, exit code)` for an exception."""
    if isinstance(err, MlplabError):
        return shorten(str(err)), 2
    if isinstance(err, OSError):
        return shorten(_os_error(err)), 2
    if _out_of_memory(err):
        return (f"out of memory ({shorten(str(err), 200) or type(err).__name__}); use a smaller "
                "model.width, model.depth, train.batch_size or train.eval_batch_size"), 2
    detail = shorten(str(err), 300)
    name = type(err).__name__
    return (f"internal error: {name}{': ' + detail if detail else ''} (a bug in mlplab; "
            f"{DEBUG_HINT})"), 1
