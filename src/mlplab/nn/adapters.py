"""Adapters turn the model inputs into one feature vector, `-> (batch, d_out)`, or into
tokens `-> (batch, n_tokens, d_out)` for token-mixing families.

Every registered adapter builds itself with the classmethod `from_spec(spec, schema)`
(`spec` a `ModelSpec`, `schema` the dataset's `FeatureSchema`) and exposes `d_out` (the
feature width) and `n_tokens` (None for a flat `(batch, d_out)` output).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.errors import SpecError
from mlplab.nn.num_embeddings import PeriodicEmbedding, PiecewiseLinearEmbedding
from mlplab.nn.registry import register_adapter

if TYPE_CHECKING:
    from mlplab.data.dataset import FeatureSchema
    from mlplab.spec import ModelSpec

CAT_ENCODINGS = ("embedding", "onehot")


def default_embedding_dim(cardinality: int) -> int:
    """Embedding width for a categorical column: `min(16, 1 + cardinality // 2)`."""
    return min(16, 1 + cardinality // 2)


def build_num_embedding(spec: ModelSpec, schema: FeatureSchema) -> nn.Module | None:
    """The numeric-feature embedding a spec asks for (PLE needs `schema.bins`), or None."""
    kind = spec.num_embeddings
    if kind == "none" or schema.n_num == 0:
        return None
    if kind in ("plr", "plr-lite"):
        return PeriodicEmbedding(schema.n_num, spec.num_embedding_dim or 24,
                                 n_frequencies=spec.plr_frequencies, sigma=spec.plr_sigma,
                                 lite=kind == "plr-lite")
    if schema.bins is None or len(schema.bins) != schema.n_num:
        raise SpecError("model.num_embeddings: 'ple' needs bin edges fitted on the training "
                        "data (mlplab.data.bins.fit_bins)")
    return PiecewiseLinearEmbedding(schema.bins, spec.num_embedding_dim or 16)


@register_adapter("tabular")
class TabularAdapter(nn.Module):
    """Numeric features pass through; each categorical column is embedded or one-hot encoded.

    Category index 0 is the "unknown/missing" slot, so a column of cardinality `c` has
    `c + 1` categories: `cat_encoding="embedding"` gives it a learned `(c + 1, d)` table,
    `"onehot"` a `c + 1`-wide one-hot vector (the TabM paper's encoding; the unknown slot is
    kept, so categories unseen in training still map somewhere). An optional `num_embedding`
    (PLR/PLE, `mlplab.nn.num_embeddings`) maps the numeric features first; `feature_widths`
    lists each feature's output width, numeric features first.
    Shapes: `x_num (batch, n_num)`, `x_cat (batch, n_cat) int64`
    `-> (batch, sum(feature_widths))`.
    """

    def __init__(self, n_num: int, cardinalities: list[int], *,
                 embedding_dim: int | None = None, num_embedding: nn.Module | None = None,
                 cat_encoding: str = "embedding") -> None:
        super().__init__()
        if cat_encoding not in CAT_ENCODINGS:
            raise ValueError(f"cat_encoding must be one of {CAT_ENCODINGS}, not {cat_encoding!r}")
        self.n_num = n_num
        self.cat_encoding = cat_encoding
        self.sizes = [c + 1 for c in cardinalities]  # + the unknown slot
        if cat_encoding == "onehot":
            dims = list(self.sizes)
            self.embeddings = nn.ModuleList()
        else:
            dims = [embedding_dim or default_embedding_dim(c) for c in cardinalities]
            self.embeddings = nn.ModuleList(nn.Embedding(n, d) for n, d in zip(self.sizes, dims,
                                                                               strict=True))
        self.num_embedding = num_embedding
        d_num = getattr(num_embedding, "d_embedding", 1)
        self.feature_widths = [d_num] * n_num + dims
        self.d_out = sum(self.feature_widths)
        self.n_tokens: int | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec, schema: FeatureSchema) -> TabularAdapter:
        return cls(schema.n_num, schema.cardinalities, embedding_dim=spec.cat_embedding_dim,
                   num_embedding=build_num_embedding(spec, schema),
                   cat_encoding=spec.cat_encoding)

    def forward(self, x_num: Tensor, x_cat: Tensor | None = None) -> Tensor:
        x_num = x_num.flatten(1)  # image-shaped input with adapter = "tabular": one row each
        if self.num_embedding is not None and self.n_num:
            x_num = self.num_embedding(x_num)
        if not self.sizes:
            return x_num
        assert x_cat is not None, "this model has categorical features: pass x_cat"
        if self.cat_encoding == "onehot":
            cats = [F.one_hot(x_cat[:, i], n).to(x_num.dtype) for i, n in enumerate(self.sizes)]
        else:
            cats = [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat([x_num, *cats], dim=-1)


@register_adapter("image")
class ImageAdapter(nn.Module):
    """Flatten images: `(batch, C, H, W) -> (batch, C*H*W)`."""

    def __init__(self, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.d_out = math.prod(self.image_shape)
        self.n_tokens: int | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec, schema: FeatureSchema) -> ImageAdapter:
        if schema.image_shape is None:
            raise SpecError("model.adapter: 'image' needs an image dataset (e.g. sklearn:digits)")
        if spec.num_embeddings != "none":
            raise SpecError("model.num_embeddings needs the tabular adapter, not 'image'")
        return cls(schema.image_shape)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        return x.flatten(1)
