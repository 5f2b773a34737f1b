"""Where training runs: `train.device` ("auto" | "cpu" | "cuda" | "cuda:N" | "mps") resolved
to a `torch.device`, and the dataset placed there once.

A dataset whose tensors fit in a fraction of the accelerator's free memory is copied there
once (every batch is then an index into device memory, as on the CPU); a larger one stays on
the host in pinned (page-locked) memory, pinned once, and each batch is gathered into one of two
pinned staging buffers that are allocated once (`HostBatches`) and copied over asynchronously.
Checkpoints are always written from CPU copies and read to the CPU, so a run trained on a
GPU resumes, loads and predicts on a machine without one.
"""

from __future__ import annotations

import dataclasses
import os
import re

import torch
from torch import Tensor

from mlplab.data.dataset import Dataset, Split
from mlplab.errors import SpecError

DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d+|mps)$"
FIT_FRACTION = 0.5  # a dataset is held on the device when it takes at most this much free memory


def resolve_device(name: str, *, field: str = "train.device") -> torch.device:
    """`name` -> the `torch.device` to train on; a requested device that is absent is a
    `SpecError` naming `field`. "auto" is CUDA when available (under torchrun: the GPU of
    this process's LOCAL_RANK), else the CPU."""
    if not isinstance(name, str) or not re.match(DEVICE_PATTERN, name):
        raise SpecError(f"{field}: unknown device {name!r}; choose 'auto', 'cpu', 'cuda', "
                        "'cuda:N' or 'mps'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SpecError(f"{field}: 'mps' is not available here (torch.backends.mps."
                            "is_available() is False); use 'auto' or 'cpu'")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise SpecError(f"{field}: {name!r} is not available here (torch.cuda.is_available() "
                        f"is False with torch {torch.__version__}); use 'auto' or 'cpu'")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    index, count = int(name.split(":")[1]), torch.cuda.device_count()
    if index >= count:
        raise SpecError(f"{field}: {name!r} does not exist; this machine has {count} CUDA "
                        f"device{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})")
    return torch.device(name)


def _tensors(split: Split) -> list[Tensor]:
    return [t for t in (split.x, split.x_cat, split.y, split.w) if t is not None]


def nbytes(data: Dataset) -> int:
    """Bytes of all tensors of the three splits."""
    return sum(t.numel() * t.element_size()
               for s in (data.train, data.val, data.test) for t in _tensors(s))


def fits_on(device: torch.device, size: int) -> bool:
    """Whether `size` bytes take at most `FIT_FRACTION` of `device`'s free memory (the CPU:
    always; mps: assumed, it shares the host's memory)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return size <= FIT_FRACTION * free


def _move_split(split: Split, fn) -> Split:  # noqa: ANN001  (Tensor -> Tensor)
    return dataclasses.replace(split, **{k: fn(getattr(split, k)) for k in ("x", "x_cat", "y", "w")
                                         if getattr(split, k) is not None})


def place_dataset(data: Dataset, device: torch.device) -> tuple[Dataset, bool]:
    """`(dataset, resident)`: the dataset on `device` when it fits (resident=True), else on the
    host, pinned when `device` is CUDA (resident=False: batches travel with `to_device`)."""
    if device.type == "cpu":
        return data, True
    if fits_on(device, nbytes(data)):
        move = lambda t: t.to(device)  # noqa: E731
        resident = True
    else:
        move = (lambda t: t.pin_memory()) if device.type == "cuda" else (lambda t: t)  # noqa: E731
        resident = False
    placed = dataclasses.replace(data, train=_move_split(data.train, move),
                                 val=_move_split(data.val, move),
                                 test=_move_split(data.test, move))
    return placed, resident


def to_device(t: Tensor | None, device: torch.device) -> Tensor | None:
    """One tensor to `device` (asynchronous from pinned memory; from pageable memory CUDA
    copies synchronously, which costs less than pinning a fresh copy each time); None and
    on-device tensors stay."""
    if t is None or t.device == device:
        return t
    return t.to(device, non_blocking=t.is_pinned())


class HostBatches:
    """Training batches of a split to `device`: `(x, x_cat, y, w)` of the rows `idx`.

    A resident split (on the device, or the CPU) is indexed where it is. A host split for a
    CUDA device (pinned once by `place_dataset`) is gathered with `index_select` into one of
    two pinned staging buffers per tensor, allocated once at the largest batch seen, then
    copied asynchronously; a buffer is refilled only after the copy that last read it has
    finished (a CUDA event), so batch `i + 1` is gathered while batch `i` travels.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._slots: dict[str, list[list]] = {}  # name -> two [buffer, event]
        self._turn = 0

    def __call__(self, split: Split, idx: Tensor) -> tuple[Tensor, ...]:
        if self.device.type != "cuda" or split.y.device.type == "cuda":
            x, x_cat = split.inputs(idx)
            w = split.w[idx] if split.w is not None else None
            return tuple(to_device(t, self.device) for t in (x, x_cat, split.y[idx], w))
        self._turn ^= 1
        idx = idx.cpu()
        return tuple(self._gather(name, getattr(split, name), idx)
                     for name in ("x", "x_cat", "y", "w"))

    def _gather(self, name: str, src: Tensor | None, idx: Tensor) -> Tensor | None:
        if src is None:
            return None
        if not src.is_pinned():
            return to_device(src[idx], self.device)
        slot = self._slots.setdefault(name, [[None, None], [None, None]])[self._turn]
        buf, event = slot
        if event is not None:
            event.synchronize()  # the copy that last read this buffer is done
        if (buf is None or buf.shape[0] < len(idx) or buf.shape[1:] != src.shape[1:]
                or buf.dtype != src.dtype):
            buf = torch.empty((len(idx), *src.shape[1:]), dtype=src.dtype, pin_memory=True)
        rows = buf[: len(idx)]
        torch.index_select(src, 0, idx, out=rows)
        out = rows.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        slot[0], slot[1] = buf, event
        return out
