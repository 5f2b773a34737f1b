"""Auxiliary losses: how a module adds a term to the training objective.

The protocol is one method: a module with `aux_loss() -> Tensor | None` contributes that
scalar (already weighted, computed from its last forward pass or from its weights) or nothing.
The trainer adds `total_aux_loss(model)` to the task loss after each forward pass, so MoE load
balancing and KAN regularisation need no special case in the training loop.
"""

from __future__ import annotations

import weakref

from torch import Tensor, nn

_CONTRIBUTORS: weakref.WeakKeyDictionary[nn.Module, tuple[nn.Module, ...]] = (
    weakref.WeakKeyDictionary())


def aux_modules(model: nn.Module) -> tuple[nn.Module, ...]:
    """The submodules of `model` (itself included) that define `aux_loss`, found once per model."""
    found = _CONTRIBUTORS.get(model)
    if found is None:
        found = tuple(m for m in model.modules() if callable(getattr(m, "aux_loss", None)))
        _CONTRIBUTORS[model] = found
    return found


def total_aux_loss(model: nn.Module) -> Tensor | None:
    """The sum of every contributing module's `aux_loss()`; None when none contributes."""
    total: Tensor | None = None
    for module in aux_modules(model):
        term = module.aux_loss()
        if term is not None:
            total = term if total is None else total + term
    return total
