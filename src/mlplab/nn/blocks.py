"""Blocks: one stage of the backbone, `(..., d) -> (..., d)`.

All blocks share one signature,
`Block(d, *, ratio=None, unit="linear", activation=None, norm="layernorm", dropout=0.0,
unit_options=None)`, and build their projections from a unit class, so any unit works in any
block. `ratio` is hidden width / stream width; each block has its own default.

The activation rule (one place, `Block.make_activation`): a unit class with `nonlinear = True`
(kan, rbf, fan) is already a nonlinearity, so with `activation=None` (the spec's default) the
block puts no second activation after it, gates included; a named `activation` is always
applied. After a linear-like unit `activation=None` means GELU.

`top_k` (`model.block_options.top_k`, every block here): keep the `top_k` largest-magnitude
hidden activations of each example and zero the rest (the lazy-neuron paper's Top-k), before
the dropout; the hidden layer is `drop`'s output, where `mlplab.inspect` reads it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.layers import make_activation, make_norm
from mlplab.nn.registry import UNITS, register_block


def hidden_width(d: int, ratio: float) -> int:
    """The hidden width a block of stream width `d` uses: `round(ratio * d)`, at least 1."""
    return max(1, round(ratio * d))


def unit_class(unit: str | type[nn.Module]) -> type[nn.Module]:
    return UNITS.get(unit, field="model.unit") if isinstance(unit, str) else unit


def check_unit_options(unit: str | type[nn.Module], options: dict[str, Any]) -> None:
    """Raise `SpecError` unless the unit's `Unit(d_in, d_out, **options)` accepts `options`:
    unknown names, then the values, through the unit's `check_options` (defaults filled in),
    which names the bad one as `model.unit_options.<name>`."""
    cls = unit_class(unit)
    try:
        bound = inspect.signature(cls).bind(1, 1, **options)
    except TypeError as err:
        name = repr(unit) if isinstance(unit, str) else unit.__name__
        raise SpecError(f"model.unit_options: unit {name}: {err}") from None
    check = getattr(cls, "check_options", None)
    if check is not None:
        bound.apply_defaults()
        check(dict(list(bound.arguments.items())[2:]))


DEFAULT_ACTIVATION = "gelu"


def check_top_k(k: Any) -> None:
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise SpecError(f"model.block_options.top_k: expected an integer >= 1, got {k!r}")


class TopKDropout(nn.Dropout):
    """Keep the `k` largest-magnitude entries of the last axis, zero the rest, then dropout:
    `(..., hidden) -> (..., hidden)`. Gradients flow through the kept entries only."""

    def __init__(self, p: float = 0.0, *, k: int) -> None:
        super().__init__(p)
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        idx = x.abs().topk(self.k, dim=-1).indices
        kept = torch.zeros_like(x).scatter(-1, idx, x.gather(-1, idx))
        return super().forward(kept)

    def extra_repr(self) -> str:
        return f"k={self.k}, {super().extra_repr()}"


def is_nonlinear(unit: str | type[nn.Module]) -> bool:
    """Whether a unit is already nonlinear (`nonlinear = True` on its class)."""
    return bool(getattr(unit_class(unit), "nonlinear", False))


class Block(nn.Module):
    """Base class: subclasses set `default_ratio` and whether they keep a residual stream."""

    default_ratio: float = 4.0
    residual: bool = True

    def __init__(
        self,
        d: int,
        *,
        ratio: float | None = None,
        unit: str | type[nn.Module] = "linear",
        activation: str | None = None,
        norm: str = "layernorm",
        dropout: float = 0.0,
        unit_options: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> None:
        super().__init__()
        self.d = d
        self.hidden = hidden_width(d, ratio if ratio is not None else self.default_ratio)
        self._unit = unit_class(unit)
        self._unit_options = unit_options or {}
        self.activation = activation
        check_top_k(top_k)
        if top_k is not None and top_k >= self.hidden:
            raise SpecError(f"model.block_options.top_k: {top_k} keeps every unit of the "
                            f"hidden width {self.hidden}; choose fewer")
        self.top_k = top_k

    @classmethod
    def check_block_options(cls, options: dict[str, Any]) -> None:
        check_top_k(options.get("top_k"))

    def make_dropout(self, p: float) -> nn.Module:
        """Dropout on the hidden layer, after the top-k when `top_k` is set."""
        return nn.Dropout(p) if self.top_k is None else TopKDropout(p, k=self.top_k)

    def make_unit(self, d_in: int, d_out: int) -> nn.Module:
        return self._unit(d_in, d_out, **self._unit_options)

    def make_activation(self, fixed: str | None = None, width: int | None = None) -> nn.Module:
        """The nonlinearity after a unit: none after a nonlinear unit unless `activation` is
        named, else the block's `fixed` one (swiglu's SiLU gate) or `activation` (GELU);
        `width` is the channel count of a per-channel activation (`bspline-channel`)."""
        if self.activation is None and is_nonlinear(self._unit):
            return make_activation("identity")
        return make_activation(fixed or self.activation or DEFAULT_ACTIVATION, width)


@register_block("standard")
class StandardBlock(Block):
    """Pre-norm inverted bottleneck, skip at the narrow width (Scaling MLPs).

    `x + W2(drop(act(W1(norm(x)))))` with `W1: d -> ratio*d`, `W2: ratio*d -> d`.
    Shapes: `(..., d) -> (..., d)`.
    """

    default_ratio = 4.0

    def __init__(self, d: int, *, activation: str | None = None, norm: str = "layernorm",
                 dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(d, activation=activation, norm=norm, dropout=dropout, **kwargs)
        self.norm = make_norm(norm, d)
        self.fc1 = self.make_unit(d, self.hidden)
        self.act = self.make_activation(width=self.hidden)
        self.drop = self.make_dropout(dropout)
        self.fc2 = self.make_unit(self.hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.drop(self.act(self.fc1(self.norm(x)))))


@register_block("hourglass")
class HourglassBlock(StandardBlock):
    """Wide residual stream through a narrow bottleneck (wide -> narrow -> wide).

    The same pre-norm residual computation as `standard`, with `ratio < 1`: the skip runs
    at the wide width `d`, the residual branch through `ratio*d`. Pair it with a wide
    `model.width` and optionally `model.lift = "frozen"`. Shapes: `(..., d) -> (..., d)`.
    """

    default_ratio = 0.25


class GatedBlock(Block):
    """Pre-norm gated residual block: `x + W2(drop(gate(W1 n) * (V n)))`, `n = norm(x)`.

    `W1` and `V` are computed as one `d -> 2*hidden` projection. Default hidden width
    `8/3 * d` matches a ratio-4 standard block's parameters. Shapes: `(..., d) -> (..., d)`.
    """

    default_ratio = 8.0 / 3.0
    gate_activation: str | None = None  # None: use the spec's activation

    def __init__(self, d: int, *, activation: str | None = None, norm: str = "layernorm",
                 dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(d, activation=activation, norm=norm, dropout=dropout, **kwargs)
        self.norm = make_norm(norm, d)
        self.fc_in = self.make_unit(d, 2 * self.hidden)
        self.act = self.make_activation(self.gate_activation, width=self.hidden)
        self.drop = self.make_dropout(dropout)
        self.fc2 = self.make_unit(self.hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.fc_in(self.norm(x)).chunk(2, dim=-1)
        return x + self.fc2(self.drop(self.act(gate) * value))


@register_block("glu")
class GLUBlock(GatedBlock):
    """Gated block whose gate uses `model.activation` (GELU gives GEGLU)."""


@register_block("swiglu")
class SwiGLUBlock(GatedBlock):
    """Gated block with a SiLU (swish) gate."""

    gate_activation = "silu"


@register_block("bilinear")
class BilinearBlock(GatedBlock):
    """Gated block with no nonlinearity: `W2((W1 n) * (V n))`, a third-order tensor."""

    gate_activation = "identity"


@register_block("plain")
class PlainBlock(Block):
    """A plain MLP layer with no skip: `drop(act(norm(W x)))`, `(..., d_in) -> (..., d)`.

    The baseline: a stack of these is the classic MLP. `d_in` defaults to `d`.
    """

    residual = False

    def __init__(self, d: int, *, d_in: int | None = None, activation: str | None = None,
                 norm: str = "layernorm", dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(d, activation=activation, norm=norm, dropout=dropout, **kwargs)
        self.fc = self.make_unit(d_in if d_in is not None else d, d)
        self.norm = make_norm(norm, d)
        self.act = self.make_activation(width=d)
        self.drop = self.make_dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.act(self.norm(self.fc(x))))
