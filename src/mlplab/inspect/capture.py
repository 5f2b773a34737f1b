"""Finding a model's blocks and recording what flows through them with forward hooks.

Every block family builds its hidden activations the same way: `drop(hidden)`, where `hidden`
is `act(fc1 n)` (standard, hourglass), `act(gate) * value` (glu, swiglu, bilinear) or
`act(norm(fc x))` (plain), after the optional top-k (`model.block_options.top_k`). The output
of `block.drop` in eval mode is therefore the hidden layer, `(batch, hidden)` or
`(batch, k, hidden)` for a TabM ensemble; token-mixing blocks' channel hidden layer is
`(batch, tokens, hidden)`. `Recorder` hooks it (and the blocks' inputs and
outputs); every hook is removed when the `with` block ends, so the model is left unchanged.

Blocks are numbered from 1 in the order they run (for `plain`, block 1 is the first layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.blocks import Block
from mlplab.nn.registry import BLOCKS

# where a block's hidden layer comes out, first match wins: `drop` (standard, gated, plain,
# gmlp), the channel MLP's `drop` (mixer, resmlp: the channel-mixing hidden layer)
HIDDEN_PATHS = ("drop", "channel_mlp.drop")


@dataclass
class BlockSite:
    """One block of a model: `number` (1-based), its module path, registered kind and module."""

    number: int
    path: str
    kind: str
    block: nn.Module

    @property
    def label(self) -> str:
        return f"block {self.number}"

    @property
    def hidden(self) -> nn.Module:
        """The module whose output is the block's hidden layer (see the module docstring)."""
        modules = dict(self.block.named_modules())
        for path in HIDDEN_PATHS:
            if path in modules:
                return modules[path]
        raise SpecError(f"{self.label} ({self.kind}) has no hidden layer to inspect")


def _kind(block: nn.Module) -> str:
    for name in BLOCKS.names():
        if type(block) is BLOCKS.get(name):
            return name
    return type(block).__name__


def blocks_of(model: nn.Module) -> list[BlockSite]:
    """Every `Block` of `model` in the order it runs (a TabM ensemble's inner backbone's too)."""
    sites = [(path, m) for path, m in model.named_modules() if isinstance(m, Block)]
    return [BlockSite(i + 1, path, _kind(m), m) for i, (path, m) in enumerate(sites)]


def pick_block(model: nn.Module, number: int) -> BlockSite:
    """Block `number` (1-based); `SpecError` naming the valid range otherwise."""
    sites = blocks_of(model)
    if not isinstance(number, int) or not 1 <= number <= len(sites):
        raise SpecError(f"block: expected a block number 1..{len(sites)}, got {number!r}")
    return sites[number - 1]


@dataclass
class Recorder:
    """Forward hooks that collect, per block number, the hidden layer (`hidden`), the block's
    input (`inputs`) and output (`outputs`) as float tensors on the CPU, detached.

    `what` picks among "hidden", "inputs", "outputs"; `reduce(number, kind, tensor)`, when
    given, is called instead of storing (streaming statistics over many batches).
    """

    sites: list[BlockSite]
    what: tuple[str, ...] = ("hidden",)
    reduce: Callable[[int, str, Tensor], None] | None = None
    seen: dict[str, dict[int, list[Tensor]]] = field(default_factory=dict)
    _handles: list[Any] = field(default_factory=list)

    def _keep(self, number: int, kind: str, t: Tensor) -> None:
        t = t.detach()
        t = (t if t.dtype == torch.float32 else t.float()).cpu()
        if self.reduce is not None:
            self.reduce(number, kind, t)
        else:
            self.seen.setdefault(kind, {}).setdefault(number, []).append(t)

    def __enter__(self) -> Recorder:
        for site in self.sites:
            n = site.number
            if "hidden" in self.what:
                self._handles.append(site.hidden.register_forward_hook(
                    lambda m, a, out, n=n: self._keep(n, "hidden", out)))
            if "inputs" in self.what:
                self._handles.append(site.block.register_forward_pre_hook(
                    lambda m, a, n=n: self._keep(n, "inputs", a[0])))
            if "outputs" in self.what:
                self._handles.append(site.block.register_forward_hook(
                    lambda m, a, out, n=n: self._keep(n, "outputs", out)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def get(self, kind: str, number: int) -> Tensor:
        """Everything recorded for one block, concatenated over batches: `(n, ...)`."""
        return torch.cat(self.seen[kind][number])


def batches(split: Any, *, rows: int | None = None, batch_size: int = 1024
            ) -> Iterator[tuple[Tensor, Tensor | None]]:
    """`(x, x_cat)` batches over the first `rows` rows of a `Split` (all by default)."""
    n = len(split) if rows is None else min(rows, len(split))
    for start in range(0, n, batch_size):
        yield split.inputs(slice(start, min(n, start + batch_size)))


def evenly_spaced(split: Any, rows: int) -> Tensor:
    """Up to `rows` evenly spaced row indices of a split (a fixed probe batch)."""
    n = len(split)
    return torch.linspace(0, n - 1, min(n, rows)).round().long().unique()


def run_model(model: nn.Module, data: Any) -> list[Tensor]:
    """Evaluate `model` on `(x, x_cat)` batches in eval mode without gradients, restoring its
    mode afterwards; returns the outputs."""
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for x, x_cat in data:
                outs.append(model(x, x_cat))
    finally:
        model.train(was_training)
    return outs
