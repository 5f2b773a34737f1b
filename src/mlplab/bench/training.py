"""Training throughput of one residual MLP under each contender, on the same synthetic data.

Contenders: mlplab's `Trainer` (fp32 and bf16), a plain idiomatic PyTorch loop
(`DataLoader(TensorDataset, shuffle=True)` + default `AdamW`) on the same module, scikit-learn's
`MLPClassifier` with the same matmul shapes, and skorch's `NeuralNetClassifier` on the same
module. Every contender runs one warm-up epoch, then `repeats` timed epochs; the fastest timed
epoch counts (the machine may be shared). FLOPs come from `mlplab.count` (forward x 3).
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
    """Forward FLOPs/sample of the sklearn-shaped net, counted by `mlplab.count`."""
    sizes = (d_in, *sklearn_hidden(width, depth), N_CLASSES)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return count(nn.Sequential(*layers[:-1]), torch.zeros(4, d_in))["flops_per_sample"]


def _best_epoch(run_epoch: Callable[[], None], repeats: int) -> float:
    run_epoch()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run_epoch()
        best = min(best, time.perf_counter() - start)
    return best


def time_mlplab(width: int, x: Tensor, y: Tensor, batch: int, repeats: int, *,
                precision: str = "fp32", fp32_matmul: str = "fast",
                optimizer_override: Callable[[nn.Module], torch.optim.Optimizer] | None = None
                ) -> float:
    """Seconds per epoch of `Trainer.fit` (its own per-epoch train timer; eval excluded)."""
    data = as_dataset(x, y)
    model = residual_mlp(width)
    spec = TrainSpec(lr=LR, batch_size=batch, epochs=1 + repeats, patience=None,
                     warmup_epochs=0.0, precision=precision, fp32_matmul=fp32_matmul)
    trainer = Trainer(model, Classification(N_CLASSES), data, spec, quiet=True)
    if optimizer_override is not None:
        trainer.optimizer = optimizer_override(model)
    trainer.fit()
    return min(c["seconds"] for c in trainer.state.curves[1:])


def time_torch_loop(width: int, x: Tensor, y: Tensor, batch: int, repeats: int) -> float:
    """Seconds per epoch of the idiomatic loop: DataLoader(shuffle=True) + eager AdamW."""
    model = residual_mlp(width)
    loader = DataLoader(TensorDataset(x[:-256], y[:-256]), batch_size=batch, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def epoch() -> None:
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    return _best_epoch(epoch, repeats)


def time_sklearn(width: int, x: Tensor, y: Tensor, batch: int, repeats: int) -> float:
    """Seconds per epoch of `MLPClassifier.partial_fit` (adam, same matmul shapes, float32)."""
    from sklearn.neural_network import MLPClassifier

    xs, ys = x[:-256].numpy(), y[:-256].numpy()
    clf = MLPClassifier(sklearn_hidden(width), solver="adam", batch_size=batch,
                        learning_rate_init=LR, shuffle=True, random_state=0)
    classes = np.arange(N_CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _best_epoch(lambda: clf.partial_fit(xs, ys, classes=classes), repeats)


def time_skorch(width: int, x: Tensor, y: Tensor, batch: int, repeats: int) -> float:
    """Seconds per epoch of skorch's `NeuralNetClassifier.partial_fit` on the same module."""
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(residual_mlp(width), criterion=nn.CrossEntropyLoss,
                              optimizer=torch.optim.AdamW, lr=LR, batch_size=batch,
                              max_epochs=1, train_split=None, iterator_train__shuffle=True,
                              verbose=0)
    xs, ys = x[:-256].numpy(), y[:-256].numpy()
    net.initialize()
    return _best_epoch(lambda: net.partial_fit(xs, ys), repeats)


CONTENDERS: dict[str, Callable[..., float]] = {
    "mlplab fp32": time_mlplab,
    "mlplab bf16": lambda *a: time_mlplab(*a, precision="bf16"),
    "torch loop": time_torch_loop,
    "sklearn": time_sklearn,
    "skorch": time_skorch,
}


def steps_for(flops_per_step: float, budget: float, lo: int = 3, hi: int = 40) -> int:
    """Steps per epoch so one epoch costs about `budget` FLOPs."""
    return int(min(hi, max(lo, round(budget / flops_per_step))))


def measure_grid(grid: list[tuple[int, int, list[str]]], *, budget: float, repeats: int,
                 log: Callable[[str], None] = print) -> list[dict]:
    """For each `(width, batch, contenders)`: samples/s and GFLOP/s of every contender."""
    rows = []
    for width, batch, names in grid:
        fps = count(residual_mlp(width), torch.zeros(4, D_IN))["flops_per_sample"]
        plain_fps = plain_flops_per_sample(width)
        steps = steps_for(3 * fps * batch, budget)
        x, y = synthetic(steps * batch + 256)
        for name in names:
            seconds = CONTENDERS[name](width, x, y, batch, repeats)
            rate = steps * batch / seconds
            flops = plain_fps if name == "sklearn" else fps
            row = {"width": width, "batch": batch, "contender": name, "steps": steps,
                   "samples_per_s": rate, "gflops": 3 * flops * rate / 1e9}
            rows.append(row)
            log(f"  width {width:5d} batch {batch:5d} {name:12s} {rate:10.0f} samples/s "
                f"{row['gflops']:7.1f} GFLOP/s")
    return rows
