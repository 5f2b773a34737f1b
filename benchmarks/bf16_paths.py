"""Where bf16 training loses time on this CPU: matmul layouts and autocast vs a bf16 model.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bf16_paths.py [--threads 1]

1. GFLOP per CPU-second of the three matmuls of a bf16 linear layer's step at the benchmark
   shapes (forward `x @ W.T`, input gradient `g @ W`, weight gradient `g.T @ x`, and the
   weight gradient with `g.T` made contiguous first).
2. Forward + backward of the benchmark's residual MLP (width 1024, batch 1024) under bf16
   autocast (fp32 weights) vs the same model cast to bf16 (parameters and activations): the
   ceiling of "bf16 parameters with fp32 master weights in the optimizer".
3. The same step with mlplab's bf16 linear (`mlplab.nn.bf16_linear`) vs autocast's own.
4. `--ceiling`: the figure's bounds in one process (`mlplab.bench.ceiling`): the 2048³ bf16
   and fp32 peaks, this model's matmuls alone, the trainer, the memory bandwidth.
5. `--tabular`: test metrics of the tabular benchmark's MLP (`benchmarks/tabular.py`'s data,
   model and loop) in fp32, bf16 (bf16 parameters, fp32 masters) and bf16 under autocast,
   over seeds.
6. `--step-parts`: one bf16 training step of the trainer (width 1024, batch 1024) timed piece by
   piece — forward + backward, gradient copy, clip, AdamW, weight copy — with fp32 master
   weights vs under autocast, best of 5 interleaved rounds.
CPU time, best of several calls, measured back to back in one process (a loaded machine
distorts it least).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mlplab.bench.ceiling import cpu_seconds
from mlplab.bench.training import residual_mlp

BF = torch.bfloat16


def layer_rates(batch: int, d_in: int, d_out: int) -> dict[str, float]:
    """GFLOP/CPU-s of each matmul of one bf16 linear layer `(batch, d_in) -> (batch, d_out)`."""
    x, w = torch.randn(batch, d_in, dtype=BF), torch.randn(d_out, d_in, dtype=BF)
    g = torch.randn(batch, d_out, dtype=BF)
    gflop = 2 * batch * d_in * d_out / 1e9
    return {name: gflop / cpu_seconds(f) for name, f in {
        "forward x @ W.T": lambda: x @ w.t(),
        "input grad g @ W": lambda: g @ w,
        "weight grad g.T @ x": lambda: g.t() @ x,
        "weight grad g.T.contiguous() @ x": lambda: g.t().contiguous() @ x,
    }.items()}


def matmul_layouts(batch: int = 1024) -> None:
    for d_in, d_out in ((1024, 4096), (4096, 1024)):
        rates = layer_rates(batch, d_in, d_out)
        print(f"linear {d_in} -> {d_out}, batch {batch}: " + ", ".join(
            f"{k} {v:.0f}" for k, v in rates.items()) + " GFLOP/CPU-s")


def autocast_vs_bf16_model(width: int = 1024, batch: int = 1024) -> None:
    m32 = residual_mlp(width)
    m16 = copy.deepcopy(m32).to(BF)
    x, y = torch.randn(batch, 128), torch.randint(0, 10, (batch,))

    def autocast_step() -> None:
        with torch.autocast("cpu", dtype=BF):
            out = m32(x, None)
        F.cross_entropy(out.float(), y).backward()

    def bf16_step() -> None:
        F.cross_entropy(m16(x.to(BF), None).float(), y).backward()

    for _ in range(3):
        a, b = cpu_seconds(autocast_step, 4), cpu_seconds(bf16_step, 4)
        print(f"width {width} batch {batch} fwd+bwd CPU s: autocast {a:.3f}, bf16 model "
              f"{b:.3f} ({a / b:.2f}x)")


def custom_linear_vs_autocast(width: int = 1024, batch: int = 1024) -> None:
    """The training step's forward + backward with mlplab's bf16 linear (contiguous `g.T` for
    the weight gradient) vs autocast's own linear backward, alternating."""
    from mlplab.nn import bf16_linear

    model = residual_mlp(width)
    x, y = torch.randn(batch, 128), torch.randint(0, 10, (batch,))

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=BF):
            out = model(x, None)
        F.cross_entropy(out.float(), y).backward()

    for _ in range(3):
        bf16_linear.ENABLED = False
        a = cpu_seconds(step, 4)
        bf16_linear.ENABLED = True
        b = cpu_seconds(step, 4)
        print(f"width {width} batch {batch} fwd+bwd CPU s: autocast linear {a:.3f}, mlplab "
              f"bf16 linear {b:.3f} ({a / b:.2f}x)")


def step_parts(rounds: int = 5) -> None:
    """Best CPU-ms of each piece of a bf16 step, master weights vs autocast, interleaved."""
    from mlplab.bench.training import LR, N_CLASSES, as_dataset, synthetic
    from mlplab.spec import TrainSpec
    from mlplab.tasks import Classification
    from mlplab.train import speed
    from mlplab.train import trainer as trainer_module

    x, y = synthetic(1024 + 256)
    trainers = {}
    for name, masters in (("masters", True), ("autocast", False)):
        trainer_module.MASTER_WEIGHTS = masters
        try:
            spec = TrainSpec(lr=LR, batch_size=1024, epochs=100, patience=None,
                             warmup_epochs=0.0, precision="bf16")
            trainers[name] = trainer_module.Trainer(residual_mlp(1024), Classification(N_CLASSES),
                                                    as_dataset(x, y), spec, quiet=True)
        finally:
            trainer_module.MASTER_WEIGHTS = True
    trainers["masters"].masters.engage()
    best: dict[str, float] = {}

    def timed(key: str, f: Callable[[], object]) -> object:
        start = time.process_time()
        out = f()
        best[key] = min(best.get(key, float("inf")), time.process_time() - start)
        return out

    xb, yb = x[:1024], y[:1024]
    for _ in range(rounds):
        for name, t in trainers.items():
            xin = xb.to(BF) if t.masters else xb
            timed(f"{name} forward + backward", lambda t=t, xin=xin: t._evaluate_loss(
                xin, None, yb, None, []))
            params = (timed(f"{name} gradient copy", t.masters.gather_grads) if t.masters
                      else t.params)
            timed(f"{name} clip", lambda t=t, params=params: speed.clip_grad_norm(
                params, 1.0, t.optimizer))
            timed(f"{name} AdamW", t.optimizer.step)
            if t.masters:
                timed(f"{name} weight copy", t.masters.scatter_weights)
    for key, value in best.items():
        print(f"{key:30s} {value * 1e3:7.1f} CPU-ms")
    total = {n: sum(v for k, v in best.items() if k.startswith(n)) for n in trainers}
    print(f"step: masters {total['masters'] * 1e3:.0f}, autocast {total['autocast'] * 1e3:.0f} "
          f"CPU-ms ({total['autocast'] / total['masters']:.2f}x)")


def tabular_accuracy(datasets: list[str], seeds: int, epochs: int) -> None:
    """Mean ± std test metric of the tabular MLP per precision (same rows, same seeds)."""
    import statistics
    from argparse import Namespace

    import tabular  # benchmarks/tabular.py

    import mlplab
    from mlplab.train import trainer as trainer_module

    args = Namespace(lr=2e-3, batch_size=256, epochs=epochs, patience=6, d_block=128, k=32)
    net = tabular.mlplab_model(mlplab.MLPRegressor(arch="mlp", d_block=128, dropout=0.1,
                                                   cat_encoding="onehot"))
    for bench in [b for b in tabular.DATASETS if b.name in datasets]:
        values: dict[str, list[float]] = {}
        for seed in range(seeds):
            data = tabular.load(bench, seed, 10000)
            d_out = tabular.make_task(data.target.kind, data.target).d_out
            for label, precision, masters in (("fp32", "fp32", True), ("bf16", "bf16", True),
                                              ("bf16 autocast", "bf16", False)):
                trainer_module.MASTER_WEIGHTS = masters
                try:
                    torch.manual_seed(seed)
                    pred, *_ = tabular.train_torch(net(data, d_out), data, args, seed, precision)
                finally:
                    trainer_module.MASTER_WEIGHTS = True
                values.setdefault(label, []).append(tabular.score(data, pred))
        metric = tabular.metric_name(data)
        print(f"{bench.name}: " + ", ".join(
            f"{k} {metric} {statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
            for k, v in values.items()) + f" ({seeds} seeds)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ceiling", action="store_true", help="only part 4 (the bounds)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tabular", nargs="*", help="only part 5, on these datasets")
    parser.add_argument("--step-parts", action="store_true", help="only part 6")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, 1-min load {os.getloadavg()[0]:.2f}")
    if args.step_parts:
        step_parts()
        raise SystemExit
    if args.tabular is not None:
        tabular_accuracy(args.tabular or ["diamonds", "nasscds", "cps1988"], args.seeds,
                         args.epochs)
        raise SystemExit
    if args.ceiling:
        from mlplab.bench import ceiling

        for line in ceiling.ceiling_lines(ceiling.measure_ceilings(rounds=args.rounds)):
            print(line)
        print(f"1-min load after {os.getloadavg()[0]:.2f}")
        raise SystemExit
    matmul_layouts()
    autocast_vs_bf16_model()
    custom_linear_vs_autocast()
    print(f"1-min load after {os.getloadavg()[0]:.2f}")
