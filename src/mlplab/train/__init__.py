"""The trainer (the only training loop), its optimizers and atomic checkpoints."""

from mlplab.train.trainer import Trainer, TrainState

__all__ = ["Trainer", "TrainState"]
