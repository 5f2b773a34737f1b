"""Heads map the backbone's features to predictions, `(batch, width) -> (batch, d_out)`."""

from __future__ import annotations

from torch import nn

from mlplab.nn.registry import register_head


@register_head("linear")
class LinearHead(nn.Linear):
    """Logits for classification or standardised values for regression.

    Shapes: `(..., width) -> (..., d_out)`.
    """

    def __init__(self, width: int, d_out: int) -> None:
        super().__init__(width, d_out)
