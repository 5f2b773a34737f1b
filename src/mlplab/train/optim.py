"""Optimizers: AdamW or SGD with no weight decay on norms, biases and other 1-d parameters, or
full-batch L-BFGS; `take_step` is the one place where their update steps differ."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from mlplab.spec import TrainSpec
from mlplab.train import speed
from mlplab.train.master_weights import MasterWeights


def lr_scales(model: nn.Module) -> dict[int, float]:
    """`id(parameter) -> learning-rate multiplier` for the parameters of every module that
    has an `lr_scale` (e.g. a hash grid's tables, which may train best at a higher rate)."""
    scales: dict[int, float] = {}
    for module in model.modules():
        scale = getattr(module, "lr_scale", None)
        if scale is not None:
            for p in module.parameters():
                scales[id(p)] = float(scale)
    return scales


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Matrices (and embeddings) decay; vectors (biases, norm scales) do not. Parameters of a
    module with an `lr_scale` (grid encodings) never decay (their tables are features, not
    weights) and, unless it is 1, get their own group carrying `lr_scale` (the trainer
    multiplies the scheduled learning rate by it)."""
    scales = lr_scales(model)
    groups: dict[tuple[bool, float], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            scale = scales.get(id(p), 1.0)
            decays = p.ndim >= 2 and id(p) not in scales
            groups.setdefault((decays, scale), []).append(p)
    out = []
    for (decays, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        group = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        if scale != 1.0:
            group["lr_scale"] = scale
        out.append(group)
    return out


def make_optimizer(model: nn.Module, spec: TrainSpec, *,
                   masters: Mapping[int, Tensor] | None = None) -> torch.optim.Optimizer:
    """The spec's optimizer over `model`'s trainable parameters, grouped by `param_groups`;
    with `masters` (`id(parameter) -> fp32 master`, bf16 training) over the masters instead."""
    if spec.optimizer == "lbfgs":  # one group: L-BFGS keeps one flat history of all parameters
        return torch.optim.LBFGS(
            [p for p in model.parameters() if p.requires_grad], lr=spec.lr,
            max_iter=spec.lbfgs_max_iter, history_size=spec.lbfgs_history,
            tolerance_grad=spec.lbfgs_tolerance, tolerance_change=spec.lbfgs_tolerance,
            line_search_fn=None if spec.lbfgs_line_search == "none" else spec.lbfgs_line_search)
    groups = param_groups(model, spec.weight_decay)
    if masters is not None:
        for group in groups:
            group["params"] = [masters[id(p)] for p in group["params"]]
    if spec.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, foreach=True)
    # fused: one kernel per parameter for the whole update (~4x faster than the default
    # for-loop implementation on CPU, measured in BENCHMARKS.md); same state_dict format.
    return torch.optim.AdamW(groups, lr=spec.lr, fused=True)


def batch_rows(spec: TrainSpec, n: int) -> int:
    """Rows per step out of `n` training rows: the full set for L-BFGS, else `batch_size`."""
    return n if spec.optimizer == "lbfgs" else min(spec.batch_size, n)


def take_step(optimizer: torch.optim.Optimizer, closure: Callable[[], Tensor], *,
              params: list[Tensor], grad_clip: float | None,
              masters: MasterWeights | None = None) -> None:
    """One update. `closure()` zeroes the gradients, computes the loss and backpropagates.

    L-BFGS calls it as often as its iterations and line search need; the others call it once,
    clip the gradients to `grad_clip` (global L2 norm) and step. With `masters` (bf16
    parameters) the bf16 gradients are first copied to the fp32 masters, which are clipped
    (an fp32 norm) and updated, and the bf16 weights are written from them.
    """
    if isinstance(optimizer, torch.optim.LBFGS):
        optimizer.step(closure)
        return
    closure()
    if masters is not None:  # the gradients, in fp32, on the masters the optimizer holds
        params = masters.gather_grads()
    if grad_clip is not None:
        speed.clip_grad_norm(params, grad_clip, optimizer)
    optimizer.step()
    if masters is not None:
        masters.scatter_weights()


def check_state_shapes(optimizer: torch.optim.Optimizer) -> None:
    """Each loaded per-parameter state tensor (momentum, Adam moments) has its parameter's
    shape; L-BFGS's flat vectors (direction, history) have as many entries as all parameters."""
    if isinstance(optimizer, torch.optim.LBFGS):
        params = optimizer.param_groups[0]["params"]
        size = sum(p.numel() for p in params)
        for name, value in optimizer.state.get(params[0], {}).items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Tensor) and item.ndim and item.shape != (size,):
                    raise ValueError(f"optimizer state {name!r} has shape {tuple(item.shape)}, "
                                     f"the parameters flatten to ({size},)")
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, Tensor) and value.ndim and value.shape != p.shape:
                    raise ValueError(f"optimizer state {name!r} has shape {tuple(value.shape)}, "
                                     f"its parameter {tuple(p.shape)}")
