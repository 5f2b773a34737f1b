"""Name -> class registries, so a spec names parts and a new family is one file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mlplab.errors import SpecError
from mlplab.messages import did_you_mean, short_repr

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict of named constructors that raises `SpecError` listing the choices on a miss."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str, *, field: str | None = None) -> T:
        if name not in self._entries:
            where = f"{field}: " if field else ""
            raise SpecError(where + self.unknown(name))
        return self._entries[name]

    def unknown(self, name: object) -> str:
        """`unknown block 'x'; did you mean 'y'? choose one of ...` (the close match first)."""
        hint = did_you_mean(name, self.names()) if isinstance(name, str) else ""
        return (f"unknown {self.kind} {short_repr(name)}; {hint + ' ' if hint else ''}"
                f"choose one of {self.choices()}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def choices(self) -> str:
        return ", ".join(repr(n) for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries


UNITS: Registry = Registry("unit")
BLOCKS: Registry = Registry("block")
ADAPTERS: Registry = Registry("adapter")
HEADS: Registry = Registry("head")
ACTIVATIONS: Registry = Registry("activation")
NORMS: Registry = Registry("norm")

register_unit = UNITS.register
register_block = BLOCKS.register
register_adapter = ADAPTERS.register
register_head = HEADS.register
