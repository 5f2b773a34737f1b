"""Tiny sweeps for the lab tests: digits subsets, 2 epochs, small budgets (seconds, not minutes)."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

TINY_SWEEP: dict[str, Any] = {
    "name": "tiny",
    "seeds": [0, 1],
    "data": {"source": "sklearn:digits", "max_rows": 300},
    "model": {"depth": 1},
    "train": {"epochs": 2, "batch_size": 64, "patience": None, "threads": 1},
    "axes": {"model.block": ["standard", "hourglass"]},
    "budget": {"params": [3e3, 6e3, 1.2e4]},
    "execution": {"lease_seconds": 5},
}


def tiny_sweep(**override: Any) -> dict[str, Any]:
    out = copy.deepcopy(TINY_SWEEP)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def toml_text(spec: dict[str, Any]) -> str:
    """A small TOML writer for the sweep dicts above (one level of tables; None is left out)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in spec.items()
             if not isinstance(v, dict) and v is not None]
    for k, v in spec.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f'"{kk}" = {value(vv)}' for kk, vv in v.items() if vv is not None]
    return "\n".join(lines) + "\n"


def done_events(db: Path) -> dict[int, int]:
    """trial id -> number of 'done' events in a SQLite store."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT trial_id, count(*) FROM lab_events WHERE kind = 'done' "
                            "GROUP BY trial_id").fetchall()
    return dict(rows)
