"""Where a training step's time goes: `torch.profiler` over `Trainer` epochs, grouped by kind."""

from __future__ import annotations

from torch.profiler import ProfilerActivity, profile

from mlplab.bench.training import LR, N_CLASSES, as_dataset, residual_mlp, synthetic
from mlplab.spec import TrainSpec
from mlplab.tasks import Classification
from mlplab.train.trainer import Trainer

# op-name substring -> category (first match wins; the rest is "other")
CATEGORIES = [
    ("matmul (fwd + bwd)", ("addmm", "aten::mm", "aten::bmm", "mkldnn_matmul", "aten::matmul")),
    ("GELU fwd + bwd", ("gelu",)),
    ("LayerNorm fwd + bwd", ("layer_norm",)),
    ("AdamW update", ("adam",)),
    ("grad-norm clip", ("_foreach_norm", "_foreach_mul", "vector_norm", "aten::mul_")),
    ("residual add / grad accumulate", ("aten::add",)),
    ("copies: bias broadcast, bf16 casts", ("aten::to", "_to_copy", "copy_")),
    ("loss + softmax", ("cross_entropy", "log_softmax", "nll_loss")),
    ("batch gather", ("index", "randperm")),
]


def profile_trainer(width: int, batch: int, *, steps: int = 6,
                    precision: str = "fp32") -> list[dict]:
    """Self CPU time per category over `steps` steps (after one warm-up epoch), in ms/step."""
    x, y = synthetic(steps * batch + 256)
    model = residual_mlp(width)
    spec = TrainSpec(lr=LR, batch_size=batch, epochs=2, patience=None, warmup_epochs=0.0,
                     precision=precision)
    trainer = Trainer(model, Classification(N_CLASSES), as_dataset(x, y), spec, quiet=True)
    trainer._train_epoch()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer._train_epoch()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::") and "adam" not in event.key:
            continue
        name = event.key.lower()
        kind = next((label for label, keys in CATEGORIES if any(k in name for k in keys)),
                    "other ops")
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total / 1e3 / steps
    wall = sum(totals.values())
    order = [label for label, _ in CATEGORIES] + ["other ops"]
    return [{"category": k, "ms_per_step": totals[k], "share": totals[k] / wall}
            for k in order if k in totals]
