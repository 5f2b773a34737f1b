"""Atomic files: JSON and safetensors written to a temp file and renamed; epoch checkpoints.

A checkpoint is a directory `checkpoint/epoch-NNNNNN/` holding `model.safetensors`,
`best.safetensors`, `optimizer.safetensors` (+ `optimizer.json`), `rng.safetensors` and
`state.json`. It is assembled under a temp name and renamed into place, so a reader sees
either a whole checkpoint or none. Nothing here unpickles.

Reading is where bad files are caught: a missing, truncated or non-JSON/non-safetensors file
(a pickle in its place, say) or one whose tensors do not fit the model raises a
`RunFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from mlplab.errors import RunFileError

CHECKPOINT_DIR = "checkpoint"
FAILED_FILE = "failed.json"  # written when a run diverged: resuming it would not help
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2; torch.save's zip archive


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file `.<name>.<hex>.tmp` beside it and `os.replace`.

    The temp file is created with mode 0o666 less the umask, as `open()` creates files, so
    the result has the same permissions as any other file the user writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite_or_none(obj: Any) -> Any:
    """Strict JSON has no NaN/Infinity: non-finite floats become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj


def json_bytes(obj: Any) -> bytes:
    text = json.dumps(_finite_or_none(obj), indent=2, default=str, allow_nan=False)
    return (text + "\n").encode()


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing") from None
    except IsADirectoryError:
        raise RunFileError(f"{path} is a directory, expected a file") from None
    except OSError as err:
        raise RunFileError(f"cannot read {path}: {err.strerror}") from None


def read_json(path: str | Path, keys: Sequence[str] = ()) -> Any:
    """Parse a JSON file; with `keys`, it must be an object holding each of them."""
    path = Path(path)
    try:
        obj = json.loads(_read_bytes(path).decode())
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not a text file (not UTF-8); it is corrupt") from None
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path} is not valid JSON ({err.msg} at line {err.lineno} column "
                           f"{err.colno}); it is corrupt or truncated") from None
    if keys and not isinstance(obj, dict):
        raise RunFileError(f"{path} should hold a JSON object, not a {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise RunFileError(f"{path} lacks {', '.join(map(repr, missing))}; it is corrupt or "
                           "not an mlplab file")
    return obj


def _not_safetensors(path: Path, err: Exception) -> RunFileError:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(PICKLE_MAGIC):
            return RunFileError(f"{path} is a pickle/torch.save file, not safetensors; mlplab "
                                "never unpickles (it runs code): save the weights with "
                                "safetensors.torch.save_file")
    reason = str(err).removeprefix("Error while deserializing header: ")
    return RunFileError(f"{path} is not a valid safetensors file ({reason}); it is corrupt "
                        "or truncated")


ALIGNMENT = 64  # bytes: what torch's CPU allocator gives a fresh tensor


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (on CPU), each in storage aligned like a fresh
    allocation: a tensor at an odd offset of the file is copied. Reductions over a tensor
    (L-BFGS's dot products over its history) split their vector loops by the address, so a
    misaligned copy of the same values sums in another order and a resume is not bitwise."""
    path = Path(path)
    _read_bytes_check(path)
    try:
        return {name: t if t.data_ptr() % ALIGNMENT == 0 else t.clone()
                for name, t in load_file(str(path)).items()}
    except SafetensorError as err:
        raise _not_safetensors(path, err) from None


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """`{name: shape}` from a safetensors file's header, without reading the tensors; the
    header is checked to describe the whole file (a truncated file fails here)."""
    path = Path(path)
    _read_bytes_check(path)
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except SafetensorError as err:
        raise _not_safetensors(path, err) from None


def _read_bytes_check(path: Path) -> None:
    """The same missing/unreadable messages as `read_json`, before safetensors opens it."""
    if not path.is_file():
        _read_bytes(path)
    elif not os.access(path, os.R_OK):
        raise RunFileError(f"cannot read {path}: permission denied")


def check_shapes(expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]],
                 path: str | Path, *, model: str = "the model") -> None:
    """Raise a `RunFileError` unless `got` has exactly the names and shapes of `expected`."""
    problems = []
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and tuple(got[k]) != tuple(expected[k])]
    if missing:
        problems.append(f"missing {_some(missing)}")
    if extra:
        problems.append(f"unexpected {_some(extra)}")
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        problems.append(f"{k!r} has shape {tuple(got[k])}, {model} needs {tuple(expected[k])}"
                        f"{more}")
    if problems:
        raise RunFileError(f"{path} does not fit {model}: {'; '.join(problems)}")


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def adopt_shapes(model: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Before loading a state dict with these `{name: shape}`: every submodule with an
    `adopt_shapes(shapes, prefix)` method resizes itself to it (a KAN unit takes the grid size
    the weights were saved at, which `train.grid_extend` changes during a run)."""
    for name, module in model.named_modules():
        adopt = getattr(module, "adopt_shapes", None)
        if callable(adopt):
            adopt(shapes, f"{name}." if name else "")


def shapes_for(model: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The state shapes `model` would have after `adopt_shapes(model, shapes)`, leaving it as is."""
    probe = model
    if any(callable(getattr(m, "adopt_shapes", None)) for m in model.modules()):
        probe = copy.deepcopy(model)
        adopt_shapes(probe, shapes)
    return {k: tuple(v.shape) for k, v in probe.state_dict().items()}


def check_fits(model: torch.nn.Module, path: str | Path) -> None:
    """`check_shapes` of a safetensors file's header against `model` (after `adopt_shapes`)."""
    got = tensor_shapes(path)
    check_shapes(shapes_for(model, got), got, path)


def load_state(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """`model.load_state_dict(tensors)` after `adopt_shapes`."""
    adopt_shapes(model, {k: tuple(v.shape) for k, v in tensors.items()})
    model.load_state_dict(tensors)


def load_weights(model: torch.nn.Module, path: str | Path, *, model_name: str = "the model") -> None:
    """Load a safetensors state dict into `model`, checking every name and shape first."""
    tensors = read_tensors(path)
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    check_shapes(shapes_for(model, got), got, path, model=model_name)
    load_state(model, tensors)


@contextlib.contextmanager
def reading(path: str | Path, *errors: type[Exception]) -> Iterator[None]:
    """Within the block, malformed content of `path` (KeyError, TypeError, ValueError and any
    of `errors`, e.g. a pydantic error) becomes a `RunFileError` naming the file."""
    try:
        yield
    except RunFileError:
        raise
    except (KeyError, TypeError, ValueError, *errors) as err:
        raise RunFileError(f"{path} has unexpected content ({describe(err)}); it is corrupt "
                           "or from another program or mlplab version") from err


def describe(err: Exception, limit: int = 300) -> str:
    """One short line for an exception: pydantic's first error, a KeyError's key, ..."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors()[0]
            return f"{'.'.join(map(str, first['loc'])) or 'value'}: {first['msg']}"
    text = f"missing key {err}" if isinstance(err, KeyError) else str(err)
    text = " ".join(text.split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> None:
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, save(clean, metadata=metadata))


def optimizer_to_files(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer `state_dict` into tensors (for safetensors) and JSON-able rest.

    Lists (L-BFGS's history) stay in the JSON with each tensor item replaced by
    `{"tensor": key}`, its key in the tensors; ints, floats and None keep their type.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value
                continue
            if isinstance(value, list | tuple):
                items = []
                for k, item in enumerate(value):
                    if isinstance(item, torch.Tensor):
                        tensors[f"{idx}.{name}[{k}]"] = item
                        item = {"tensor": f"{idx}.{name}[{k}]"}
                    items.append(item)
                value = items
            scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `optimizer_to_files`."""
    tensors = dict(tensors)
    state: dict[int, dict[str, Any]] = {}
    for idx, entry in meta["scalars"].items():
        for name, value in entry.items():
            if isinstance(value, list):
                value = [tensors.pop(item["tensor"]) if isinstance(item, dict) else item
                         for item in value]
            state.setdefault(int(idx), {})[name] = value
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def epoch_dirs(run_dir: str | Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("epoch-"))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = epoch_dirs(run_dir)
    return dirs[-1] if dirs else None


def commit_checkpoint(run_dir: str | Path, epoch: int, files: dict[str, bytes],
                      link_from: dict[str, Path] | None = None) -> Path:
    """Write one epoch's files as a directory, atomically, and drop older epochs.

    `link_from` names files to hard-link from an older checkpoint instead of rewriting them.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{secrets.token_hex(6)}"
    tmp.mkdir()  # 0o777 less the umask, like any directory (mkdtemp would make it 0o700)
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for name, source in (link_from or {}).items():
            os.link(source, tmp / name)
        final = root / f"epoch-{epoch:06d}"
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in epoch_dirs(run_dir):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def remove_stale_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete what a kill mid-write leaves in a run directory: `.<name>.<hex>.tmp` files of
    `atomic_write_bytes` and `checkpoint/.tmp-*` directories. Call it only while holding the
    run's lock (another writer's temp files would be live). Returns what it removed."""
    run_dir = Path(run_dir)
    stale = [p for p in run_dir.glob(".*.tmp") if p.is_file()]
    stale += [p for p in (run_dir / CHECKPOINT_DIR).glob(".tmp-*") if p.is_dir()]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale
