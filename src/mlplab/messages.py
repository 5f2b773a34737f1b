"""Pieces of error messages: short reprs of user values, "did you mean", cut name lists.

Every message that echoes a user's value goes through `short_repr`, so a 10 MB string in a
spec never becomes a 10 MB error line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

SHORT = 80


def short_text(text: str, limit: int = SHORT) -> str:
    """`text` itself, or its first `limit - 1` characters and `…(N chars)`."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…({len(text):,} chars)"


def short_repr(value: Any, limit: int = SHORT) -> str:
    """`repr(value)`, cut to about `limit` characters with `…(N chars)` when longer."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 1]}…({size:,} chars)"


def close_matches(word: str, choices: Iterable[str], *, n: int = 3,
                  cutoff: float = 0.6) -> list[str]:
    """The choices closest to `word` (difflib ratio >= `cutoff`, case-insensitive), best first."""
    choices = list(dict.fromkeys(str(c) for c in choices))
    if len(word) > 200:
        return []
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[f] for f in found]


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 1) -> str:
    """`"did you mean 'x'?"` (or `'x' or 'y'`) for the closest choices; `""` when none is close."""
    return suggest(close_matches(word, choices, n=n))


def suggest(found: Iterable[str]) -> str:
    """`"did you mean 'x', 'y' or 'z'?"` for names already found; `""` for none."""
    found = [short_repr(f) for f in found]
    if not found:
        return ""
    return f"did you mean {', '.join(found[:-1]) + ' or ' if found[1:] else ''}{found[-1]}?"


def name_list(names: Iterable[str], *, limit: int = 30) -> str:
    """`'a', 'b', 'c'`; past `limit` names the first `limit` and `… (N in all)`."""
    names = list(names)
    shown = ", ".join(short_repr(n, 40) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"
