"""The grid encodings' fused CPU lookup (`implementation="native"`): build, load, autograd.

`csrc/grid_lookup.cpp` holds two loops that compute each point's corners and weights and sum
(forward) or scatter (backward) the rows in one pass, where the pure-PyTorch path
(`mlplab.nn.grid_lookup`) makes ~25 passes over `(corners, batch * levels)` arrays. The
outputs are bitwise those of `implementation="torch"`; the table gradients equal its to float
rounding (each row's terms summed in another order) and are the same on any number of threads
(the backward splits the levels between threads, never a row). The op is compiled with
`torch.utils.cpp_extension.load` on first use (a C++ compiler is needed: ~20 s, once; torch's
extension cache keeps it, `TORCH_EXTENSIONS_DIR` moves it) for this machine's CPU
(`-march=native`: the build's name carries a digest of the CPU's model and flags and of the
torch it links, so a cache shared between machines never hands one a binary built for another,
and two environments do not rebuild each other's) and registered as
`torch.ops.mlplab_grid.forward` / `backward`.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mlplab.errors import MlplabError

SOURCE = Path(__file__).with_name("csrc") / "grid_lookup.cpp"
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"]


class NativeBuildError(MlplabError, RuntimeError):
    """The native grid lookup could not be compiled or loaded."""


def build_tag() -> str:
    """8 hex digits naming what the binary is built for: this CPU's model and feature flags
    (Linux; else the platform) and the torch it links (version and location: two virtual
    environments do not rebuild each other's copy)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        text = ""
    text = text or f"{platform.machine()} {platform.processor()}"
    text += f"\n{torch.__version__} {Path(torch.__file__).parent}"
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@cache
def load() -> Any:
    """Compiles (first time) and loads the op; returns `torch.ops.mlplab_grid`."""
    from torch.utils.cpp_extension import load as load_extension

    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise NativeBuildError(
            "implementation='native' needs a C++ compiler (c++ / g++) to build its op"
        )
    try:
        load_extension(
            f"mlplab_grid_lookup_{build_tag()}",
            [str(SOURCE)],
            extra_cflags=FLAGS,
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except (OSError, RuntimeError, ImportError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NativeBuildError(f"building the native grid lookup failed ({first})") from err
    return torch.ops.mlplab_grid


class NativeGridLookup(torch.autograd.Function):
    """`table (rows, F)` fp32, `x (B, d)` fp32 contiguous, `levels` (the encoding's buffers
    `res, top, mult, masks, offsets`) -> `(B, L, F)`; gradient for the table only."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, x: Tensor, *levels: Tensor) -> Tensor:
        ctx.save_for_backward(x, *levels)
        ctx.rows = table.shape[0]
        return load().forward(x, table, *levels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, *levels = ctx.saved_tensors
        grad_table = load().backward(x, grad.float().contiguous(), ctx.rows, *levels)
        return (grad_table, None, *(None for _ in levels))
