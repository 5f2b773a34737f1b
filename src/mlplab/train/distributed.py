"""Multi-process data-parallel training (DistributedDataParallel) for the one trainer.

Launched by `torchrun --nproc-per-node N -m mlplab train SPEC` or `mlplab train SPEC --nproc N`
(which runs the same through `torch.distributed.run`): every process loads the whole dataset,
draws the same per-epoch permutation from the same seeded generator, and trains on its part
of each global batch (`torch.tensor_split` of the batch's rows, so the parts differ by at
most one row). Gradients are averaged across processes by DDP's all-reduce; each process's
loss is scaled by `world * rows_here / rows_in_batch`, so the averaged gradient is the
gradient of the global batch's mean loss, as in one process. Every process evaluates the
whole validation set (the same weights give the same metrics, so early stopping agrees
without communication); only rank 0 writes files. Backend: gloo on the CPU, nccl on CUDA.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import Tensor, nn

from mlplab.errors import SpecError


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not launched by it)."""
    value = os.environ.get("WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or a single process: the one that writes run files."""
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the
    environment), once per process: gloo on the CPU, nccl on CUDA. False when not launched
    by torchrun (WORLD_SIZE unset or 1)."""
    if env_world_size() <= 1 or not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return True


def check_supported(optimizer: str) -> None:
    """L-BFGS evaluates its closure a data-dependent number of times (line search on the
    process's own loss), which would leave the processes waiting on different all-reduces."""
    if active() and optimizer == "lbfgs":
        raise SpecError("train.optimizer: 'lbfgs' (one full batch per step) does not run "
                        "data-parallel; train it in one process (no --nproc / torchrun)")


def local_rows(idx: Tensor) -> Tensor:
    """This process's part of a global batch's row indices `(batch,) -> (≈ batch / world,)`."""
    if not active():
        return idx
    return torch.tensor_split(idx, world_size())[rank()]


def loss_scale(local: int, total: int) -> float:
    """Factor on this process's mean loss so DDP's gradient average equals the gradient of
    the global batch's mean loss."""
    return world_size() * local / total if active() and total else 1.0


def all_sum(value: float, device: torch.device) -> float:
    """Sum of a Python float over all processes (itself when alone)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`DistributedDataParallel(model)` in a process group (broadcasts rank 0's weights and
    buffers to every process), else `model` itself."""
    if not active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast_object(obj: object) -> object:
    """Rank 0's `obj` on every process (e.g. the run directory it chose)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()
