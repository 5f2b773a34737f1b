"""mlplab's `kan` unit against the reference pykan on the same layer shape: step time and peak memory.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/units_pykan.py [--threads 1] [--reps 5] [--clock cpu]

One process, one KAN layer `d_in -> d_out` (grid 5, spline order 3, SiLU base branch) per
contender: mlplab's `KANUnit`; pykan's `KAN(width=[d_in, d_out])` in its `speed()` mode
(symbolic branch and activation caching off, no checkpoints written); and pykan's bare
`KANLayer`. A step is `layer(x).square().mean().backward()` on `(batch, d_in)` inputs drawn
from N(0, 0.5^2); time is the median of `--reps` steps after one warm-up (wall clock, or the
process's CPU time with `--clock cpu`), interleaved across contenders, each timed step right
after an untimed one of the same layer (else a small layer pays for page faults on the memory
pykan's large tensors returned to the system). Peak memory as in benchmarks/units.py. pykan builds `(batch, d_in, d_out)` tensors,
so a pykan case whose estimate exceeds `--pykan-max-gib` is skipped and says so. pykan is in
the optional `bench` extra; without it only mlplab's rows are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from units import peak_bytes, step

from mlplab.nn.kan import KANUnit

SHAPES, BATCHES, GRID, ORDER = ((64, 64), (256, 256)), (1024, 8192), 5, 3
PYKAN_BYTES_PER_EDGE_SAMPLE = 4 * 6  # float32 (batch, d_in, d_out) tensors at pykan's peak (5.2 measured)


class LayerOnly(nn.Module):
    """pykan's `KANLayer` returns `(y, preacts, postacts, postspline)`; keep `y (batch, d_out)`."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)[0]


@contextlib.contextmanager
def in_temp_dir() -> Iterator[None]:
    """Run with a scratch working directory so nothing pykan writes lands in the repository."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="units_pykan_") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(here)


def contenders(d_in: int, d_out: int) -> dict[str, Callable[[], nn.Module]]:
    """Builders of every available layer of shape `d_in -> d_out`, seeded."""
    def mlplab_kan() -> nn.Module:
        torch.manual_seed(0)
        return KANUnit(d_in, d_out, grid=GRID, order=ORDER)

    found: dict[str, Callable[[], nn.Module]] = {"mlplab kan": mlplab_kan}
    try:
        from kan import KAN
        from kan.KANLayer import KANLayer
    except ImportError:
        return found

    def pykan_speed() -> nn.Module:
        model = KAN(width=[d_in, d_out], grid=GRID, k=ORDER, seed=0, auto_save=False,
                    ckpt_path=os.path.join(os.getcwd(), "model"), symbolic_enabled=False,
                    save_act=False)
        return model.speed()

    def pykan_layer() -> nn.Module:
        torch.manual_seed(0)
        return LayerOnly(KANLayer(in_dim=d_in, out_dim=d_out, num=GRID, k=ORDER))

    found["pykan KAN.speed()"] = pykan_speed
    found["pykan KANLayer"] = pykan_layer
    return found


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time steps by the wall clock or by this process's CPU time "
                             "(less sensitive to other jobs on a loaded machine)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--pykan-max-gib", type=float, default=12.0,
                        help="skip a pykan case whose estimated peak memory exceeds this")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows = []
    with in_temp_dir():
        for d_in, d_out in SHAPES:
            builders = contenders(d_in, d_out)
            models = {name: build() for name, build in builders.items()}
            for batch in BATCHES:
                estimate = batch * d_in * d_out * PYKAN_BYTES_PER_EDGE_SAMPLE / 2**30
                run = {name: m for name, m in models.items()
                       if name.startswith("mlplab") or estimate <= args.pykan_max_gib}
                for name in models.keys() - run.keys():
                    rows.append({"name": name, "shape": (d_in, d_out), "batch": batch,
                                 "skip": f"skipped: estimated {estimate:.0f} GiB > "
                                         f"--pykan-max-gib {args.pykan_max_gib:g}"})
                x = torch.randn(batch, d_in, generator=torch.Generator().manual_seed(0)) * 0.5
                times: dict[str, list[float]] = {name: [] for name in run}
                for model in run.values():
                    step(model, x)  # warm-up
                for _ in range(args.reps):
                    for name, model in run.items():
                        step(model, x)  # untimed: the allocator's free memory is this model's again
                        t0 = clock()
                        step(model, x)
                        times[name].append(clock() - t0)
                for name, model in run.items():
                    rows.append({"name": name, "shape": (d_in, d_out), "batch": batch,
                                 "params": n_params(model),
                                 "ms": 1e3 * statistics.median(times[name]),
                                 "mib": peak_bytes(model, x) / 2**20})
    print_table(rows, args.reps, args.clock)


def print_table(rows: list[dict], reps: int, clock: str) -> None:
    try:
        from importlib.metadata import version

        import kan  # noqa: F401
        pykan = f"pykan {version('pykan')}"
    except ImportError:
        pykan = "pykan not importable (pip install -e '.[bench]'): its rows are skipped"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {pykan}, grid {GRID}, "
          f"order {ORDER}, median of {reps}, {clock} clock\n")
    print("| layer | d_in -> d_out | batch | trainable params | step ms | ÷ mlplab | "
          "peak MiB | ÷ mlplab |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        shape = f"{row['shape'][0]} -> {row['shape'][1]}"
        if "skip" in row:
            print(f"| {row['name']} | {shape} | {row['batch']} | | {row['skip']} | | | |")
            continue
        base = next(r for r in rows if r["name"] == "mlplab kan" and r["shape"] == row["shape"]
                    and r["batch"] == row["batch"])
        print(f"| {row['name']} | {shape} | {row['batch']} | {row['params']:,} | "
              f"{row['ms']:.1f} | {row['ms'] / base['ms']:.1f} | {row['mib']:.0f} | "
              f"{row['mib'] / base['mib']:.1f} |")


if __name__ == "__main__":
    main()
