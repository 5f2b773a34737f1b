"""Checks for `model.unit_options`: each bad option is a `SpecError` naming
`model.unit_options.<name>` and what was expected.

A unit class may define `check_options(options)` (a classmethod taking every option, defaults
filled in); `check_unit_options` calls it at spec time and the unit calls it when built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlplab.errors import SpecError


class OptionError(SpecError):
    """A bad key or value inside an options table of the spec; `option` is its (dotted) path
    inside `section` (`model.unit_options`, `model.block_options`, `task.options`)."""

    section = "options"

    def __init__(self, option: str, detail: str) -> None:
        self.option, self.detail = option, detail
        super().__init__(f"{self.section}.{option}: {detail}")

    def at(self, title: str, options: dict[str, Any]) -> Exception:
        """This error for a pydantic validator of the options field: located at the option, so
        the spec's error names `<section>.<option>`."""
        from pydantic import ValidationError
        from pydantic_core import InitErrorDetails, PydanticCustomError

        loc = tuple(self.option.split("."))
        detail = InitErrorDetails(type=PydanticCustomError("option", "{detail}",
                                                           {"detail": self.detail}),
                                  loc=loc, input=options.get(loc[0]))
        return ValidationError.from_exception_data(title, [detail])


class UnitOptionError(OptionError):
    """A bad value of one unit option; `option` is its name inside `model.unit_options`."""

    section = "model.unit_options"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_int(options: dict[str, Any], name: str, *, low: int,
              high: int | None = None) -> int:
    """`options[name]` as an integer in `[low, high]`."""
    value = options[name]
    if not _is_int(value) or value < low or (high is not None and value > high):
        where = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UnitOptionError(name, f"expected an integer {where}, got {value!r}")
    return value


def check_float(options: dict[str, Any], name: str, *, low: float | None = None,
                high: float | None = None, open_low: bool = False,
                open_high: bool = False) -> float:
    """`options[name]` as a finite number within the given (open or closed) bounds."""
    value = options[name]
    ok = _is_number(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise UnitOptionError(name, f"expected a number{' ' + bounds if bounds else ''}, "
                                    f"got {value!r}")
    return float(value)


def check_choice(options: dict[str, Any], name: str, choices: Sequence[Any]) -> Any:
    value = options[name]
    if value not in choices:
        raise UnitOptionError(name, f"expected one of {', '.join(map(repr, choices))}, "
                                    f"got {value!r}")
    return value


def check_bool(options: dict[str, Any], name: str) -> bool:
    value = options[name]
    if not isinstance(value, bool):
        raise UnitOptionError(name, f"expected true or false, got {value!r}")
    return value


def check_range(options: dict[str, Any], name: str) -> tuple[float, float]:
    """`options[name]` as two increasing finite numbers `(low, high)`."""
    value = options[name]
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(_is_number(v) for v in value) or not value[0] < value[1]):
        raise UnitOptionError(name, f"expected two increasing numbers [low, high], got {value!r}")
    return float(value[0]), float(value[1])


def check_activation(options: dict[str, Any], name: str) -> str | None:
    """An activation name from the registry, or None / "none" for no such branch."""
    from mlplab.nn.registry import ACTIVATIONS

    value = options[name]
    if value is None or value == "none":
        return None
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise UnitOptionError(name, f"expected 'none' or one of {ACTIVATIONS.choices()}, "
                                    f"got {value!r}")
    return value


def check_unit_options_at(unit: str, options: dict[str, Any], *, title: str) -> None:
    """`check_unit_options` inside a pydantic validator of `unit_options`: a bad option's error
    sits at `unit_options.<name>`, so the spec error names `model.unit_options.<name>`."""
    from mlplab.nn.blocks import check_unit_options

    try:
        check_unit_options(unit, options)
    except UnitOptionError as err:
        raise err.at(title, options) from None
    except SpecError as err:
        raise ValueError(str(err).removeprefix("model.unit_options: ")) from None


# --- model.block_options -------------------------------------------------------------------

# arguments every block takes from the spec's own fields: never block options
COMMON_BLOCK_ARGS = frozenset({"d", "d_in", "ratio", "unit", "activation", "norm", "dropout",
                               "unit_options"})


class BlockOptionError(OptionError):
    """A bad block option; `option` is its name inside `model.block_options`."""

    section = "model.block_options"


def block_option_names(cls: type) -> list[str]:
    """A block class's own options: the keyword-only arguments of the `__init__`s along its
    MRO (down to `nn.Module`) that are not the common block arguments."""
    import inspect

    from torch import nn

    names: list[str] = []
    for klass in cls.__mro__:
        if klass is nn.Module or klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if (p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in COMMON_BLOCK_ARGS
                    and p.name not in names):
                names.append(p.name)
    return names


def check_block_options(block: str | type, options: dict[str, Any]) -> None:
    """Raise `BlockOptionError` for a key `block` does not take (with the closest name), then
    let the block's `check_block_options(options)` classmethod check the values."""
    from mlplab.messages import did_you_mean, name_list
    from mlplab.nn.registry import BLOCKS

    cls = BLOCKS.get(block, field="model.block") if isinstance(block, str) else block
    known = block_option_names(cls)
    label = repr(block) if isinstance(block, str) else cls.__name__
    for key in options:
        if key not in known:
            hint = did_you_mean(str(key), known) if known else ""
            detail = (f"unknown option; {hint}" if hint else
                      f"unknown option; block {label} takes "
                      + (f"only {name_list(known)}" if known else "no options"))
            raise BlockOptionError(str(key), detail)
    check = getattr(cls, "check_block_options", None)
    if check is not None:
        check(dict(options))


def check_block_options_at(block: str, options: dict[str, Any], *, title: str) -> None:
    """`check_block_options` inside a pydantic validator: the error names
    `model.block_options.<name>`."""
    try:
        check_block_options(block, options)
    except BlockOptionError as err:
        raise err.at(title, options) from None
