"""The one training loop in mlplab.

Data stays in memory as tensors; each epoch draws a permutation from a seeded generator and
batches by indexing it. A step hands a closure (forward, loss, backward) to `optim.take_step`:
AdamW/SGD evaluate it once, L-BFGS (one full batch per epoch) as often as its line search
needs. Scheduled work (KAN grid updates) runs as epoch hooks (`hooks.py`). The learning rate
is a pure function of the step (warmup + cosine), so resuming needs only the step count. After every epoch the model, the best weights, the
optimizer and both RNG states are checkpointed atomically, which makes a resumed run end
bitwise equal to an uninterrupted one on CPU. bf16 training keeps fp32 master weights in the
optimizer and a bf16 model during an epoch's steps (`master_weights.py`) where it can, else
runs under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
import torch
from safetensors.torch import save
from torch import Tensor, nn

from mlplab.data.dataset import Dataset, Split
from mlplab.errors import RunFileError, TrainingError, TrainingStopped
from mlplab.nn.aux_loss import total_aux_loss
from mlplab.spec import TrainSpec
from mlplab.tasks import Task, predict_batches
from mlplab.train import checkpoint as ckpt
from mlplab.train import distributed as ddp
from mlplab.train import speed
from mlplab.train.device import HostBatches, place_dataset, resolve_device, to_device
from mlplab.train.hooks import EpochHook, hooks_from_spec
from mlplab.train.master_weights import MasterWeights, unsupported
from mlplab.train.optim import batch_rows, check_state_shapes, make_optimizer, take_step
from mlplab.train.progress import EpochProgress


@dataclass
class TrainState:
    """Everything about a run's progress that is not a tensor (saved as `state.json`)."""

    epoch: int = 0  # completed epochs
    step: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    samples_seen: int = 0
    curves: list[dict[str, Any]] = field(default_factory=list)
    precision: Literal["fp32", "bf16"] | None = None  # train.precision resolved (None: older)


STATE = pydantic.TypeAdapter(TrainState)
MASTER_WEIGHTS = True  # False: bf16 always under autocast (benchmarks compare the two)


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Multiplier on the base learning rate at `step` (0-based): linear warmup, then cosine."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_starts(n: int, batch_size: int) -> list[int]:
    """Batch start offsets; a trailing batch of one row is dropped (BatchNorm cannot use it)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return starts


class Trainer:
    """Trains `model` on `data.train`, early-stops on `data.val`, restores the best weights.

    `flops_per_sample` (forward matmul FLOPs, as the peak counts them) turns throughput into
    achieved GFLOP/s (x3 for training).
    With `run_dir`, every epoch is checkpointed and `resume()` continues a killed run.
    `stop()`, when given, is polled after every epoch, before its checkpoint: True raises
    `TrainingStopped` and nothing more is written. `hooks` (`mlplab.train.hooks.EpochHook`)
    run after those the spec schedules (the grid schedule).
    """

    def __init__(self, model: nn.Module, task: Task, data: Dataset, spec: TrainSpec, *,
                 seed: int = 0, run_dir: str | Path | None = None, quiet: bool = False,
                 flops_per_sample: int = 0, stop: Callable[[], bool] | None = None,
                 hooks: Sequence[EpochHook] = ()) -> None:
        self.device = resolve_device(spec.device)
        self.precision = speed.resolve_precision(spec.precision, self.device)  # "auto" resolved
        ddp.check_supported(spec.optimizer)
        model.to(self.device)  # before the optimizer: its state lives beside the parameters
        data, self.resident = place_dataset(data, self.device)
        self.batches = HostBatches(self.device)  # the rows of a step, on the device
        self.model, self.task, self.data, self.spec = model, task, data, spec
        self._ddp: tuple[list[int], nn.Module] | None = None  # (parameter ids, DDP wrapper)
        self._forward: nn.Module = model  # what a step calls: the model or its DDP wrapper
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.quiet = quiet
        self.flops_per_sample = flops_per_sample
        self.stop = stop
        self.hooks = [*hooks_from_spec(spec), *hooks]
        self.monitor = task.check_monitor(spec.monitor)
        self.higher = task.higher_is_better[self.monitor]
        self.reset_optimizer()
        self.generator = torch.Generator().manual_seed(seed)
        self.penalty = task.training_penalty(data, seed)  # e.g. a field's output TV
        n = len(data.train)
        self.batch_size = batch_rows(spec, n)
        self.steps_per_epoch = len(batch_starts(n, self.batch_size))
        self.total_steps = spec.epochs * self.steps_per_epoch
        self.warmup_steps = round(spec.warmup_epochs * self.steps_per_epoch)
        self.state = TrainState(precision=self.precision)
        self.best_weights = self._weights()

    # -- state --------------------------------------------------------------------------

    def reset_optimizer(self) -> None:
        """A fresh optimizer over the model's current parameters (a hook that replaces or
        reshapes parameters calls it; their old state would not fit). bf16 training of a
        model `master_weights` supports keeps the optimizer over fp32 masters."""
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.masters = self._master_weights()
        masters = None if self.masters is None else dict(
            zip(map(id, self.params), self.masters.masters, strict=True))
        self.optimizer = make_optimizer(self.model, self.spec, masters=masters)

    def _master_weights(self) -> MasterWeights | None:
        """fp32 masters for bf16 parameters, where bf16 training can use them; else None (fp32
        training, or bf16 autocast: L-BFGS, models with other parameters or fp32 buffers,
        data-parallel runs)."""
        if (self.precision != "bf16" or not MASTER_WEIGHTS or ddp.active() or not self.params
                or unsupported(self.model, self.spec.optimizer) is not None):
            return None
        return MasterWeights(self.params)

    def _weights(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _save_checkpoint(self, improved: bool) -> None:
        if self.run_dir is None or not ddp.is_main():  # data-parallel: rank 0 writes
            return
        opt_tensors, opt_meta = ckpt.optimizer_to_files(self.optimizer.state_dict())
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        files = {  # CPU copies: a checkpoint loads on a machine without the device
            "model.safetensors": save({k: v.contiguous().cpu() for k, v in self._weights().items()}),
            "optimizer.safetensors": save({k: v.contiguous().cpu() for k, v in opt_tensors.items()}),
            "optimizer.json": ckpt.json_bytes(opt_meta),
            "rng.safetensors": save(rng),
            "state.json": ckpt.json_bytes(asdict(self.state)),
        }
        previous = ckpt.latest_checkpoint(self.run_dir)
        link = {}
        if improved or previous is None:
            files["best.safetensors"] = save({k: v.contiguous().cpu()
                                              for k, v in self.best_weights.items()})
        else:
            link["best.safetensors"] = previous / "best.safetensors"
        try:
            ckpt.commit_checkpoint(self.run_dir, self.state.epoch, files, link)
        except OSError as err:  # a full disk, a read-only or vanished directory, ...
            safe = (f"nothing is lost up to epoch {self.state.epoch - 1}, whose checkpoint is "
                    "intact" if previous is not None else "no epoch was checkpointed yet")
            raise TrainingError(
                f"cannot write the checkpoint of epoch {self.state.epoch} in {self.run_dir} "
                f"({err.strerror or err}); {safe}: free space and continue with "
                f"`mlplab train --resume {self.run_dir}`") from err

    def resume(self) -> bool:
        """Load the latest checkpoint from `run_dir`; False when there is none.

        A checkpoint that is corrupt or does not fit the model is a `RunFileError`; only the
        latest epoch is kept, so it says how to start the run over.
        """
        where = ckpt.latest_checkpoint(self.run_dir) if self.run_dir else None
        if where is None:
            return False
        try:
            self._load_checkpoint(where)
        except RunFileError as err:
            raise RunFileError(
                f"{err}; the run cannot continue from {where.name}, the only checkpoint kept: "
                f"delete {where.parent} and --resume to train it again from epoch 0, or "
                "train into another --out") from err
        return True

    def _load_checkpoint(self, where: Path) -> None:
        with ckpt.reading(where / "state.json"):
            state = STATE.validate_python(ckpt.read_json(where / "state.json"))
        if state.precision is not None and state.precision != self.precision:
            # "auto" resolved otherwise on this host: keep the precision the run started with
            self.precision = state.precision
            self.reset_optimizer()
        ckpt.load_weights(self.model, where / "model.safetensors")  # at that epoch's shapes
        if [id(p) for p in self.model.parameters() if p.requires_grad] != list(map(id, self.params)):
            self.reset_optimizer()
        best = ckpt.read_tensors(where / "best.safetensors")
        shapes = {k: tuple(v.shape) for k, v in best.items()}
        ckpt.check_shapes(ckpt.shapes_for(self.model, shapes), shapes, where / "best.safetensors")
        self.best_weights = best
        tensors = ckpt.read_tensors(where / "optimizer.safetensors")
        meta = ckpt.read_json(where / "optimizer.json", keys=("param_groups", "scalars"))
        with ckpt.reading(where / "optimizer.json"):
            self.optimizer.load_state_dict(ckpt.optimizer_from_files(tensors, meta))
            check_state_shapes(self.optimizer)
        rng = ckpt.read_tensors(where / "rng.safetensors")
        with ckpt.reading(where / "rng.safetensors", RuntimeError):
            torch.set_rng_state(rng["torch"])
            self.generator.set_state(rng["generator"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.state = state
        self.state.precision = self.precision

    # -- loop ---------------------------------------------------------------------------

    def _set_lr(self) -> None:
        factor = lr_factor(self.state.step, total=self.total_steps, warmup=self.warmup_steps,
                           schedule=self.spec.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = self.spec.lr * factor * group.get("lr_scale", 1.0)

    def _train_epoch(self) -> float:
        """One epoch of steps. With master weights the model is bf16 during the steps only:
        validation, hooks and checkpoints see the fp32 masters."""
        if self.masters is not None:
            self.masters.engage()
        try:
            with speed.fp32_matmul(self.spec.fp32_matmul):
                return self._train_steps()
        finally:
            if self.masters is not None:
                self.masters.release()

    def _train_steps(self) -> float:
        train: Split = self.data.train
        perm = torch.randperm(len(train), generator=self.generator)  # the same on every rank
        if self.resident and self.device.type != "cpu":
            perm = perm.to(self.device)
        if not self.model.training:  # a full-tree walk; evaluate() restores train mode
            self.model.train()
        self._forward = self._wrapped()
        total = 0.0
        for start in batch_starts(len(train), self.batch_size):
            batch = perm[start: start + self.batch_size]
            idx = ddp.local_rows(batch)  # this rank's part of the global batch
            x, x_cat, y, w = self.batches(train, idx)
            if self.masters is not None and x.is_floating_point():  # a bf16 model's inputs
                x = x.to(torch.bfloat16)
            self._set_lr()
            values: list[float] = []  # the task loss of each evaluation (L-BFGS makes several)
            scale = ddp.loss_scale(len(idx), len(batch))
            take_step(self.optimizer,
                      functools.partial(self._evaluate_loss, x, x_cat, y, w, values, scale),
                      params=self.params, grad_clip=self.spec.grad_clip, masters=self.masters)
            value = values[0]  # train_loss: the task loss alone, before the step
            total += value * len(idx)
            self.state.step += 1
            self.state.samples_seen += len(batch)
        return ddp.all_sum(total, self.device) / len(train)

    def _wrapped(self) -> nn.Module:
        """The module the step calls: the model, or its DDP wrapper in a process group
        (rebuilt when a hook replaced parameters)."""
        if not ddp.active():
            return self.model
        ids = list(map(id, self.params))
        if self._ddp is None or self._ddp[0] != ids:
            self._ddp = (ids, ddp.wrap(self.model, self.device))
        return self._ddp[1]

    def _evaluate_loss(self, x: Tensor, x_cat: Tensor | None, y: Tensor, w: Tensor | None,
                       values: list[float], scale: float = 1.0) -> Tensor:
        """The step's closure: forward (over the batch and, with a task's training penalty,
        its inputs), task loss plus auxiliary losses and the penalty, backward (gradients
        zeroed first); appends the task loss to `values` and returns the total. `scale`
        weights this rank's part of a data-parallel batch (`distributed.loss_scale`)."""
        extra = None if self.penalty is None else self.penalty.inputs(self.state.step)
        if extra is not None:  # one forward over the batch and the penalty's inputs
            if x_cat is not None:
                raise ValueError("a training penalty's inputs extend numeric batches only")
            n = x.shape[0]
            x = torch.cat([x, extra.to(x.device, x.dtype)])
        with self.autocast() if self.masters is None else contextlib.nullcontext():
            out = self._forward(x, x_cat)
        penalty = None
        if extra is not None:
            out, at_extra = out[:n], out[n:]
            penalty = self.penalty.penalty(at_extra)
        loss = self.task.loss(out.float(), y, w)
        aux = total_aux_loss(self.model)  # MoE balance, KAN regularisation, ...
        if penalty is not None:
            aux = penalty if aux is None else aux + penalty
        values.append(loss.item())
        if not math.isfinite(values[0]):
            raise self._diverged(
                f"the training loss became {values[0]} at epoch {self.state.epoch + 1}, "
                f"step {self.state.step + 1}; lower train.lr or check the data")
        if self.masters is None:
            self.optimizer.zero_grad(set_to_none=True)
        else:  # the gradients live on the bf16 parameters, not on the optimizer's masters
            self.model.zero_grad(set_to_none=True)
        total = loss if aux is None else loss + aux.float()
        (total * scale if scale != 1.0 else total).backward()
        return total

    def _check_weights_finite(self) -> None:
        """A NaN/inf gradient can poison the weights while every loss was finite: stop before
        such weights reach a checkpoint (one fused norm over all parameters per epoch)."""
        norm = float(torch.nn.utils.get_total_norm(self.params)) if self.params else 0.0
        if not math.isfinite(norm):
            raise self._diverged(
                f"the model weights became non-finite during epoch {self.state.epoch + 1} "
                "(a NaN/inf gradient); lower train.lr, set train.grad_clip or check the data")

    def _diverged(self, message: str) -> TrainingError:
        """The error for a run that went non-finite, saying honestly what survives. With a
        run directory it also writes `failed.json`, so `mlplab info` can tell a failed run
        from a killed one (which `--resume` continues)."""
        if self.run_dir is None or not ddp.is_main():
            return TrainingError(message)
        last = ckpt.latest_checkpoint(self.run_dir)
        if last is None:
            message += ("; no checkpoint exists (the first epoch already diverged), so there "
                        "is nothing to resume: train again into a new --out")
        else:
            message += (f"; the checkpoint of epoch {int(last.name.split('-')[1])} in "
                        f"{self.run_dir} holds the last finite weights, but resuming replays the "
                        "same steps and diverges again: train again into a new --out")
        with contextlib.suppress(OSError):
            ckpt.write_json(self.run_dir / ckpt.FAILED_FILE,
                            {"error": message, "epochs_done": self.state.epoch})
        return TrainingError(message)

    def autocast(self) -> contextlib.AbstractContextManager:
        return speed.autocast(self.precision, self.device.type)

    def evaluate(self, split: Split, *, fp32: bool = False) -> dict[str, float]:
        """Metrics of `split` (computed on the CPU, wherever the model runs). Validation during
        training runs at the training precision; `fp32=True` (a run's final metrics) evaluates
        the fp32 model as `predict` and exports run it."""
        def inputs(rows: slice) -> tuple[Tensor, Tensor | None]:
            x, x_cat = split.inputs(rows)
            return to_device(x, self.device), to_device(x_cat, self.device)

        precision = contextlib.nullcontext() if fp32 else self.autocast()
        with speed.fp32_matmul(self.spec.fp32_matmul), precision:
            out = predict_batches(self.model, inputs, len(split), self.spec.eval_batch_size)
        return self.task.metrics(out.cpu(), split.y.cpu())

    def _improved(self, value: float) -> bool:
        best = self.state.best_value
        if best is None or math.isnan(best):
            return not math.isnan(value)
        return value > best if self.higher else value < best

    def fit(self) -> TrainState:
        """Train until `epochs` or early stopping; the model ends with the best weights."""
        progress = EpochProgress(self.spec.epochs, self.monitor,
                                 enabled=not self.quiet, live=sys.stdout.isatty())
        with progress:
            progress.advance_to(self.state.epoch)
            while self.state.epoch < self.spec.epochs and not self.state.stopped_early:
                for hook in self.hooks:
                    hook.on_epoch_start(self)
                t0 = time.perf_counter()
                train_loss = self._train_epoch()
                self._check_weights_finite()
                t1 = time.perf_counter()
                val = self.evaluate(self.data.val)
                self.state.train_seconds += t1 - t0
                self.state.eval_seconds += time.perf_counter() - t1
                self.state.epoch += 1
                value = val[self.monitor]
                improved = self._improved(value)
                if improved:
                    self.state.best_value, self.state.best_epoch = value, self.state.epoch
                    self.state.bad_epochs = 0
                    self.best_weights = self._weights()
                else:
                    self.state.bad_epochs += 1
                if self.spec.patience is not None and self.state.bad_epochs >= self.spec.patience:
                    self.state.stopped_early = True
                self.state.curves.append({
                    "epoch": self.state.epoch, "train_loss": train_loss,
                    **{f"val_{k}": v for k, v in val.items()},
                    "lr": self.optimizer.param_groups[0]["lr"], "seconds": t1 - t0})
                for hook in self.hooks:
                    hook.on_epoch_end(self)
                if self.stop is not None and self.stop():
                    raise TrainingStopped(f"training was stopped after epoch {self.state.epoch}")
                self._save_checkpoint(improved)
                progress.epoch_done(self.state.epoch, train_loss, value)
        ckpt.load_state(self.model, self.best_weights)  # at the best epoch's grid size
        return self.state

    def timings(self) -> dict[str, Any]:
        """Time and throughput of the training steps, and the precision they ran at."""
        s = self.state
        rate = s.samples_seen / s.train_seconds if s.train_seconds > 0 else 0.0
        return {
            "train_seconds": round(s.train_seconds, 4),
            "eval_seconds": round(s.eval_seconds, 4),
            "samples_per_second": round(rate, 1),
            "gflops_per_second": round(3 * self.flops_per_sample * rate / 1e9, 3),
            "seconds_per_epoch": round(s.train_seconds / max(s.epoch, 1), 4),
            "precision": self.precision,  # train.precision resolved ("auto" -> bf16 or fp32)
        }
