"""Heads map the backbone's features to predictions, `(batch, width) -> (batch, d_out)`, or
from a token-shaped stream `(batch, tokens, width) -> (batch, d_out)` (`pool`, `flatten`).

Every registered head builds itself with `from_spec(spec, *, width, d_out, n_tokens, k)`:
`n_tokens` is the adapter's token count (None for a flat `(batch, d)` stream), `k` the
ensemble size (1 without an ensemble).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.registry import register_head


def flat_only(name: str, n_tokens: int | None) -> None:
    """Refuse a head that needs a flat stream after a token-shaped adapter."""
    if n_tokens is not None:
        raise SpecError(f"model.head: {name!r} needs a flat (batch, d) stream; the adapter "
                        f"gives (batch, {n_tokens} tokens, d): use 'pool' or 'flatten'")


@register_head("linear")
class LinearHead(nn.Linear):
    """Logits for classification or standardised values for regression.

    Shapes: `(..., width) -> (..., d_out)`.
    """

    def __init__(self, width: int, d_out: int) -> None:
        super().__init__(width, d_out)

    @classmethod
    def from_spec(cls, spec: Any, *, width: int, d_out: int, n_tokens: int | None = None,
                  k: int = 1) -> nn.Module:
        flat_only("linear", n_tokens)
        return cls(width, d_out)


@register_head("pool")
class PoolHead(nn.Module):
    """Mean over the tokens, then linear: `(batch, tokens, width) -> (batch, d_out)`."""

    def __init__(self, width: int, d_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.mean(dim=-2))

    @classmethod
    def from_spec(cls, spec: Any, *, width: int, d_out: int, n_tokens: int | None = None,
                  k: int = 1) -> nn.Module:
        if n_tokens is None:
            raise SpecError("model.head: 'pool' averages over tokens; this adapter gives a "
                            "flat (batch, d) stream (use 'linear')")
        return cls(width, d_out)


@register_head("flatten")
class FlattenHead(nn.Module):
    """All tokens' features side by side, then linear:
    `(batch, tokens, width) -> (batch, tokens*width) -> (batch, d_out)`."""

    def __init__(self, width: int, d_out: int, *, n_tokens: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_tokens * width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(-2))

    @classmethod
    def from_spec(cls, spec: Any, *, width: int, d_out: int, n_tokens: int | None = None,
                  k: int = 1) -> nn.Module:
        if n_tokens is None:
            raise SpecError("model.head: 'flatten' needs a token-shaped adapter "
                            "(batch, tokens, d); this one is flat (use 'linear')")
        return cls(width, d_out, n_tokens=n_tokens)
