"""Glue: a model spec plus the data's schema and the task's output size -> an `MLPModel`."""

from __future__ import annotations

from torch import nn

from mlplab.data.dataset import FeatureSchema
from mlplab.errors import SpecError
from mlplab.nn import Backbone, ImageAdapter, MLPModel, TabularAdapter
from mlplab.nn.ensemble import EnsembleBackbone
from mlplab.nn.num_embeddings import PeriodicEmbedding, PiecewiseLinearEmbedding
from mlplab.nn.registry import HEADS
from mlplab.spec import ModelSpec


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


def build_adapter(spec: ModelSpec, schema: FeatureSchema) -> nn.Module:
    kind = spec.adapter
    if kind == "auto":
        kind = "image" if schema.image_shape is not None else "tabular"
    if kind == "image":
        if schema.image_shape is None:
            raise SpecError("model.adapter: 'image' needs an image dataset (e.g. sklearn:digits)")
        if spec.num_embeddings != "none":
            raise SpecError("model.num_embeddings needs the tabular adapter, not 'image'")
        return ImageAdapter(schema.image_shape)
    return TabularAdapter(schema.n_num, schema.cardinalities, embedding_dim=spec.cat_embedding_dim,
                          num_embedding=build_num_embedding(spec, schema),
                          cat_encoding=spec.cat_encoding)


def build_model(spec: ModelSpec, schema: FeatureSchema, d_out: int) -> MLPModel:
    """Build Adapter -> Backbone -> Head from a validated spec.

    Shapes: `(batch, ...) -> (batch, d_out)`, or `(batch, k, d_out)` with `model.ensemble`.
    """
    adapter = build_adapter(spec, schema)
    unit, unit_options = spec.unit, dict(spec.unit_options)
    k = spec.n_members
    if spec.ensemble == "tabm":
        unit, unit_options = "batchensemble", {**unit_options, "k": k}
    backbone: nn.Module = Backbone(
        adapter.d_out, block=spec.block, width=spec.width, depth=spec.depth, ratio=spec.ratio,
        activation=spec.activation, norm=spec.norm, dropout=spec.dropout, lift=spec.lift,
        unit=unit, unit_options=unit_options)
    if spec.ensemble == "none":
        return MLPModel(adapter, backbone, HEADS.get("linear")(spec.width, d_out))
    # TabM: random-sign scaling of the first layer, normal when numeric features are embedded;
    # one value per input feature (its embedding's or one-hot vector's width is one chunk,
    # as in the official package).
    init = "normal" if spec.num_embeddings != "none" else "random-signs"
    backbone = EnsembleBackbone(backbone, k=k, d_in=adapter.d_out, kind=spec.ensemble, init=init,
                                chunks=getattr(adapter, "feature_widths", None))
    return MLPModel(adapter, backbone, HEADS.get("ensemble")(spec.width, d_out, k=k))
