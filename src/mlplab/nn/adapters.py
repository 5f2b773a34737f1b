"""Adapters turn the model inputs into one feature vector, `-> (batch, d_out)`."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mlplab.nn.registry import register_adapter


def default_embedding_dim(cardinality: int) -> int:
    """Embedding width for a categorical column: `min(16, 1 + cardinality // 2)`."""
    return min(16, 1 + cardinality // 2)


@register_adapter("tabular")
class TabularAdapter(nn.Module):
    """Numeric features pass through; each categorical column gets a learned embedding.

    Category index 0 is the "unknown/missing" slot, so an embedding table has
    `cardinality + 1` rows. An optional `num_embedding` (PLR/PLE, `mlplab.nn.num_embeddings`)
    maps the numeric features first; `feature_widths` lists each feature's output width.
    Shapes: `x_num (batch, n_num)`, `x_cat (batch, n_cat) int64`
    `-> (batch, sum(feature_widths))`.
    """

    def __init__(self, n_num: int, cardinalities: list[int], *,
                 embedding_dim: int | None = None, num_embedding: nn.Module | None = None) -> None:
        super().__init__()
        self.n_num = n_num
        dims = [embedding_dim or default_embedding_dim(c) for c in cardinalities]
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, d) for c, d in zip(cardinalities, dims, strict=True))
        self.num_embedding = num_embedding
        d_num = getattr(num_embedding, "d_embedding", 1)
        self.feature_widths = [d_num] * n_num + dims
        self.d_out = sum(self.feature_widths)

    def forward(self, x_num: Tensor, x_cat: Tensor | None = None) -> Tensor:
        x_num = x_num.flatten(1)  # image-shaped input with adapter = "tabular": one row each
        if self.num_embedding is not None and self.n_num:
            x_num = self.num_embedding(x_num)
        if not self.embeddings:
            return x_num
        assert x_cat is not None, "this model has categorical features: pass x_cat"
        parts = [x_num] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=-1)


@register_adapter("image")
class ImageAdapter(nn.Module):
    """Flatten images: `(batch, C, H, W) -> (batch, C*H*W)`."""

    def __init__(self, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.d_out = math.prod(self.image_shape)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return x.flatten(1)
