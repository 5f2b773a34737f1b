"""Training throughput of one residual MLP under each contender, on the same synthetic data.

Contenders: mlplab's `Trainer` (fp32 and bf16), a plain idiomatic PyTorch loop
(`DataLoader(TensorDataset, shuffle=True)` + default `AdamW`) on the same module, scikit-learn's
`MLPClassifier` with the same matmul shapes, and skorch's `NeuralNetClassifier` on the same
module. Every contender warms up (mlplab: one epoch; the others: a batch or two), then the
contenders take turns at `repeats` timed epochs, so a busy spell on a shared machine hits all of
them; each one's fastest epoch counts. FLOPs come from `mlplab.count` (forward x 3).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from mlplab.build import build_model
from mlplab.count import count
from mlplab.data.dataset import Dataset, FeatureSchema, Split
from mlplab.data.preprocess import FeaturePreprocessor, TargetCoder
from mlplab.spec import ModelSpec, TrainSpec
from mlplab.tasks import Classification
from mlplab.train import trainer as trainer_module
from mlplab.train.trainer import Trainer

D_IN, N_CLASSES, DEPTH, LR = 128, 10, 4, 1e-3


def synthetic(n: int, *, d_in: int = D_IN, n_classes: int = N_CLASSES,
              seed: int = 0) -> tuple[Tensor, Tensor]:
    """A learnable classification set: `x (n, d_in)` float32, `y (n,)` from a random teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g)
    teacher = torch.randn(d_in, n_classes, generator=g)
    y = (torch.tanh(x @ teacher) + 0.3 * torch.randn(n, n_classes, generator=g)).argmax(1)
    return x, y


def as_dataset(x: Tensor, y: Tensor, n_val: int = 256) -> Dataset:
    """Wrap tensors as an mlplab `Dataset` (the last `n_val` rows validate; no test rows)."""
    d_in, n_classes = x.shape[1], int(y.max()) + 1
    schema = FeatureSchema([f"x{i}" for i in range(d_in)], [], [])
    empty = Split(x[:0], None, y[:0])
    return Dataset(schema, FeaturePreprocessor(schema.numeric, []),
                   TargetCoder("classification", classes=list(range(n_classes))),
                   Split(x[:-n_val], None, y[:-n_val]), Split(x[-n_val:], None, y[-n_val:]),
                   empty)


def residual_mlp(width: int, *, depth: int = DEPTH, d_in: int = D_IN,
                 n_classes: int = N_CLASSES, seed: int = 0) -> nn.Module:
    """The benchmark model: lift -> `depth` standard pre-norm blocks (ratio 4) -> head."""
    torch.manual_seed(seed)
    schema = FeatureSchema([f"x{i}" for i in range(d_in)], [], [])
    return build_model(ModelSpec(width=width, depth=depth), schema, n_classes)


def sklearn_hidden(width: int, depth: int = DEPTH) -> tuple[int, ...]:
    """sklearn hidden sizes with the residual MLP's matmul shapes (no skips, no norms)."""
    return (width,) + (4 * width, width) * depth


def plain_flops_per_sample(width: int, depth: int = DEPTH, d_in: int = D_IN) -> int:
    """Forward matmul FLOPs/sample of the sklearn-shaped net (`mlplab.count`), the figure to
    hold against the matmul peak."""
    sizes = (d_in, *sklearn_hidden(width, depth), N_CLASSES)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return count(nn.Sequential(*layers[:-1]), torch.zeros(4, d_in))["matmul_flops_per_sample"]


class Contender:
    """One way of training: `warm_up()` once, then `epoch()` trains one epoch (timed)."""

    def __init__(self, epoch: Callable[[], None], warm_up: Callable[[], None] | None = None):
        self.epoch, self.warm_up = epoch, warm_up or epoch


def mlplab_contender(width: int, x: Tensor, y: Tensor, batch: int, *, precision: str = "fp32",
                     fp32_matmul: str = "default",
                     optimizer_override: Callable[[nn.Module], torch.optim.Optimizer] | None = None,
                     compile_model: bool = False, device: str = "cpu",
                     master_weights: bool = True) -> Contender:
    """mlplab's `Trainer`; an epoch is `Trainer._train_epoch`, the body of `Trainer.fit`'s loop
    (the per-epoch validation that `fit` adds is not timed, as in `Trainer.timings`).
    `master_weights=False`: bf16 under autocast (fp32 parameters), the trainer's old route."""
    model = residual_mlp(width)
    if compile_model:  # compiled during the warm-up epoch
        model = torch.compile(model)  # type: ignore[assignment]
    spec = TrainSpec(lr=LR, batch_size=batch, epochs=100, patience=None, warmup_epochs=0.0,
                     precision=precision, fp32_matmul=fp32_matmul, device=device)
    previous, trainer_module.MASTER_WEIGHTS = trainer_module.MASTER_WEIGHTS, master_weights
    try:
        trainer = Trainer(model, Classification(N_CLASSES), as_dataset(x, y), spec, quiet=True)
    finally:
        trainer_module.MASTER_WEIGHTS = previous
    if optimizer_override is not None:
        trainer.optimizer = optimizer_override(model)
    return Contender(trainer._train_epoch)


def torch_loop_contender(width: int, x: Tensor, y: Tensor, batch: int) -> Contender:
    """The idiomatic loop: DataLoader(TensorDataset, shuffle=True) + default eager AdamW."""
    model = residual_mlp(width)
    loader = DataLoader(TensorDataset(x[:-256], y[:-256]), batch_size=batch, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def epoch(steps: int | None = None) -> None:
        model.train()
        for i, (xb, yb) in enumerate(loader):
            if i == steps:
                break
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    return Contender(epoch, lambda: epoch(2))


def sklearn_contender(width: int, x: Tensor, y: Tensor, batch: int) -> Contender:
    """`MLPClassifier.partial_fit` epochs (adam, the same matmul shapes, float32)."""
    from sklearn.neural_network import MLPClassifier

    xs, ys = x[:-256].numpy(), y[:-256].numpy()
    clf = MLPClassifier(sklearn_hidden(width), solver="adam", batch_size=batch,
                        learning_rate_init=LR, shuffle=True, random_state=0)
    classes = np.arange(N_CLASSES)

    def fit(n: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(xs[:n], ys[:n], classes=classes)

    return Contender(lambda: fit(len(xs)), lambda: fit(batch))


def skorch_contender(width: int, x: Tensor, y: Tensor, batch: int) -> Contender:
    """skorch's `NeuralNetClassifier.partial_fit` epochs on the same module."""
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(residual_mlp(width), criterion=nn.CrossEntropyLoss,
                              optimizer=torch.optim.AdamW, lr=LR, batch_size=batch,
                              max_epochs=1, train_split=None, iterator_train__shuffle=True,
                              verbose=0)
    xs, ys = x[:-256].numpy(), y[:-256].numpy()
    net.initialize()
    return Contender(lambda: net.partial_fit(xs, ys),
                     lambda: net.partial_fit(xs[: 2 * batch], ys[: 2 * batch]))


CONTENDERS: dict[str, Callable[..., Contender]] = {
    "mlplab fp32": mlplab_contender,
    "mlplab bf16": lambda *a: mlplab_contender(*a, precision="bf16"),
    "mlplab bf16 autocast": lambda *a: mlplab_contender(*a, precision="bf16",
                                                        master_weights=False),
    "torch loop": torch_loop_contender,
    "sklearn": sklearn_contender,
    "skorch": skorch_contender,
}
CUDA_CONTENDERS: dict[str, Callable[..., Contender]] = {  # `mlplab bench` adds them on CUDA
    "mlplab fp32 cuda": lambda *a: mlplab_contender(*a, device="cuda"),
    "mlplab bf16 cuda": lambda *a: mlplab_contender(*a, precision="bf16", device="cuda"),
}
CONTENDERS.update(CUDA_CONTENDERS)


def best_epochs(contenders: dict[str, Contender], repeats: int
                ) -> dict[str, tuple[float, float]]:
    """Warm every contender up, then time `repeats` rounds of one epoch each, interleaved
    (so a busy spell on a shared machine hits all of them). Returns each one's fastest
    `(wall seconds, process CPU seconds)`; CPU time is what a contended machine distorts least."""
    for c in contenders.values():
        c.warm_up()
    best = {name: (float("inf"), float("inf")) for name in contenders}
    for _ in range(repeats):
        for name, c in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            c.epoch()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def steps_for(flops_per_step: float, budget: float, lo: int = 1, hi: int = 40) -> int:
    """Steps per epoch so one epoch costs about `budget` FLOPs."""
    return int(min(hi, max(lo, round(budget / flops_per_step))))


def measure_grid(grid: list[tuple[int, int, list[str]]], *, budget: float, repeats: int,
                 log: Callable[[str], None] = print) -> list[dict]:
    """For each `(width, batch, contenders)`: samples/s and GFLOP/s of every contender."""
    rows = []
    for width, batch, names in grid:
        fps = count(residual_mlp(width), torch.zeros(4, D_IN))["matmul_flops_per_sample"]
        plain_fps = plain_flops_per_sample(width)
        steps = steps_for(3 * fps * batch, budget)
        x, y = synthetic(steps * batch + 256)
        seconds = best_epochs({n: CONTENDERS[n](width, x, y, batch) for n in names}, repeats)
        for name in names:
            wall, cpu = seconds[name]
            rate = steps * batch / wall
            flops = plain_fps if name == "sklearn" else fps
            row = {"width": width, "batch": batch, "contender": name, "steps": steps,
                   "samples_per_s": rate, "samples_per_cpu_s": steps * batch / cpu,
                   "gflops": 3 * flops * rate / 1e9}
            rows.append(row)
            log(f"  width {width:5d} batch {batch:5d} {name:12s} {rate:10.0f} samples/s "
                f"{row['gflops']:7.1f} GFLOP/s")
    return rows
