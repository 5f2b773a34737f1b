"""The model: Adapter -> Backbone -> Head."""

from __future__ import annotations

from torch import Tensor, nn


class MLPModel(nn.Module):
    """`forward(x, x_cat=None) -> (batch, d_out)`; see the adapter for the input shapes."""

    def __init__(self, adapter: nn.Module, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return self.head(self.backbone(self.adapter(x, x_cat)))
