"""Where the 16-level hash grid's encoding time goes, and alternatives measured beside it.

One `GridEncoding` (16 levels, 2 features, 2^12 entries, finest 2048), batch 8,192 random
coordinates, 1 thread, CPU milliseconds on the process clock; every row timed in each of
`--rounds` interleaved rounds of 4 calls, median kept:
- `encoding fwd+bwd`: `enc(x).sum().backward()` as the step runs it;
- its phases alone: the taps, all index and weight math (`lookup_indices`), the forward lookup
  (`GridLookup`, no grad), the weight spread, the backward's four scatters into a zero table;
- the same fwd+bwd with the backward's scatter done by `index_add_` (the code before
  `scatter_add_`), and with the whole encoding under `torch.compile` (inductor);
- with `implementation="native"` (the fused C++ lookup, `mlplab.nn.grid_native`): the same
  fwd+bwd, and its forward and backward ops alone (given the coordinates and the gradient);
- the training step of `hashgrid_levels.py` (64-wide MLP, fused AdamW, 2^15 random points in
  batches of 8,192), its encoding fwd+bwd and the MLP's step alone, with the eager encoding and
  with the index math, gathers and corner sum compiled into one inductor kernel beside an eager
  scatter (`benchmarks/hashgrid_compiled_plan.py`), and with forward and backward each one
  inductor kernel (`benchmarks/hashgrid_fused_plan.py`, its two kernels also timed alone): the
  encoding's share of the step for all three, timed in the same rounds.

    python benchmarks/hashgrid_phases.py [--rounds 30] [--no-compile]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable

import torch

import mlplab.nn.grid_lookup as lookup
from mlplab.nn.grid_native import load as load_native
from mlplab.nn.hashgrid import GridEncoding

LEVEL_OPTIONS = {"levels": 16, "finest_resolution": 2048}


def index_add_rows(out: torch.Tensor, idx: torch.Tensor, src: torch.Tensor) -> None:
    """The backward's scatter as it was: `index_add_` of complex64 words (2 fp32 features)."""
    word = lookup.ADD_WORDS[src.dtype]
    out.view(word).view(-1).index_add_(0, idx, src.reshape(-1, 2).view(word).view(-1))


def next_batch(fn: Callable[[int], None]) -> Callable[[], None]:
    """A zero-argument row from a `hashgrid_levels.timers` function: each call, the next batch."""
    calls = itertools.count()
    return lambda: fn(next(calls))


def compiled_plan_rows(enc: GridEncoding, x: torch.Tensor) -> dict:
    """The step / encoding / MLP-only timers of `hashgrid_levels.py` for the eager encoding, the
    compiled plan (`hashgrid_compiled_plan.py`) and the fused plan (`hashgrid_fused_plan.py`,
    whose two kernels are also timed alone); each plan's outputs and table gradients are first
    compared with `enc`'s."""
    import hashgrid_fused_plan as fused
    from hashgrid_compiled_plan import CompiledPlanGrid
    from hashgrid_levels import make_model, timers

    g = torch.randn(x.shape[0], enc.d_out)
    want = torch.autograd.grad(enc(x), enc.table, g)[0]
    plans = {"compiled plan": CompiledPlanGrid, "fused plan": fused.FusedPlanGrid}
    for tag, grid in plans.items():
        plan = grid(2, **LEVEL_OPTIONS)
        plan.load_state_dict(enc.state_dict())
        with torch.no_grad():
            diff = (plan(x) - enc(x)).abs().max().item()
        got = torch.autograd.grad(plan(x), plan.table, g)[0]
        print(
            f"{tag} vs eager: outputs differ by <= {diff:.1e}, table gradients by <= "
            f"{(got - want).abs().max().item():.1e}"
        )

    table, buffers = enc.table.detach(), fused.buffers(enc)
    grad = g.view(x.shape[0], enc.levels, 2)
    rows = {
        "fused plan: forward kernel alone": lambda: fused.compiled_lookup(x, table, *buffers),
        "fused plan: backward kernel alone (8 scalar scatters)": lambda: fused.compiled_scatter(
            x, grad, table.shape[0], *buffers
        ),
    }
    torch.manual_seed(0)
    batch = 8192
    xs, ys = torch.rand(batch * 4, 2) * 2 - 1, torch.rand(batch * 4, 1)
    for tag, grid in (("eager", None), *plans.items()):
        fns = timers(make_model(16, grid), xs, ys, batch)
        for name, fn in fns.items():
            rows[f"{tag}: {name}"] = next_batch(fn)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    enc = GridEncoding(2, **LEVEL_OPTIONS)
    x = torch.rand(8192, 2) * 2 - 1
    idx, w = enc.lookup_indices(x)
    wf = lookup.spread(w, 2)
    grad = torch.randn(idx.shape[1], 2)
    scatter = lookup.add_rows

    def fwd_bwd(module: torch.nn.Module, add_rows=scatter) -> None:
        lookup.add_rows = add_rows
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()
        lookup.add_rows = scatter

    def forward_lookup() -> None:
        with torch.no_grad():
            lookup.GridLookup.apply(enc.table, idx, w)

    def scatters() -> None:
        table = torch.zeros_like(enc.table)
        for corner in range(idx.shape[0]):
            scatter(table, idx[corner], wf[corner] * grad)

    rows = {
        "encoding fwd+bwd": lambda: fwd_bwd(enc),
        "  taps": lambda: enc.taps(x),
        "  index and weight math (lookup_indices, taps included)": lambda: enc.lookup_indices(x),
        "  forward lookup (spread included)": forward_lookup,
        "  weight spread": lambda: lookup.spread(w, 2),
        "  backward: 4 scatter_add_ into a zero table": scatters,
        "encoding fwd+bwd, backward by index_add_": lambda: fwd_bwd(enc, index_add_rows),
    }
    native = GridEncoding(2, implementation="native", **LEVEL_OPTIONS)
    native.load_state_dict(enc.state_dict())
    if native.implementation == "native":  # built (a C++ compiler is there)
        ops, levels = load_native(), native.level_buffers()
        table, grad3 = native.table.detach(), torch.randn(x.shape[0], enc.levels, 2)
        rows["native: encoding fwd+bwd"] = lambda: fwd_bwd(native)
        rows["  native: forward op alone"] = lambda: ops.forward(x, table, *levels)
        rows["  native: backward op alone"] = lambda: ops.backward(
            x, grad3, table.shape[0], *levels
        )
    if not args.no_compile:
        compiled = torch.compile(enc)
        fwd_bwd(compiled)  # compiles (tens of seconds)
        rows["encoding fwd+bwd, torch.compile(enc)"] = lambda: fwd_bwd(compiled)
        rows.update(compiled_plan_rows(enc, x))
    with torch.no_grad():
        same = torch.equal(enc(x), compiled(x)) if not args.no_compile else None
    fwd_bwd(enc)
    want = enc.table.grad.clone()
    fwd_bwd(enc, index_add_rows)
    print(
        f"load {os.getloadavg()[0]:.2f}; index_add_ gradient bitwise equal: "
        f"{torch.equal(enc.table.grad, want)}; compiled output equal: {same}"
    )
    times: dict[str, list[float]] = {name: [] for name in rows}
    for fn in rows.values():
        fn()
    for _ in range(args.rounds):
        for name, fn in rows.items():
            t0 = time.process_time()
            for _ in range(4):
                fn()
            times[name].append((time.process_time() - t0) / 4 * 1000)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ms in medians.items():
        print(f"{name:60s} {ms:7.3f} ms")
    for tag in ("eager", "compiled plan", "fused plan"):
        if f"{tag}: step" in medians:
            step, enc_ms, mlp = (medians[f"{tag}: {k}"] for k in ("step", "encoding", "mlp_step"))
            print(f"{tag}: encoding share {enc_ms / step:.1%}, by difference {1 - mlp / step:.1%}")


if __name__ == "__main__":
    main()
