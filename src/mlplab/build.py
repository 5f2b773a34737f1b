"""Glue: a model spec plus the data's schema and the task's output size -> an `MLPModel`."""

from __future__ import annotations

from torch import nn

from mlplab.data.dataset import FeatureSchema
from mlplab.nn import Backbone, ImageAdapter, MLPModel, TabularAdapter
from mlplab.nn.registry import HEADS
from mlplab.spec import ModelSpec


def build_adapter(spec: ModelSpec, schema: FeatureSchema) -> nn.Module:
    kind = spec.adapter
    if kind == "auto":
        kind = "image" if schema.image_shape is not None else "tabular"
    if kind == "image":
        if schema.image_shape is None:
            from mlplab.errors import SpecError

            raise SpecError("model.adapter: 'image' needs an image dataset (e.g. sklearn:digits)")
        return ImageAdapter(schema.image_shape)
    return TabularAdapter(schema.n_num, schema.cardinalities, embedding_dim=spec.cat_embedding_dim)


def build_model(spec: ModelSpec, schema: FeatureSchema, d_out: int) -> MLPModel:
    """Build Adapter -> Backbone -> Head from a validated spec: `(batch, ...) -> (batch, d_out)`."""
    adapter = build_adapter(spec, schema)
    backbone = Backbone(
        adapter.d_out, block=spec.block, width=spec.width, depth=spec.depth, ratio=spec.ratio,
        activation=spec.activation, norm=spec.norm, dropout=spec.dropout, lift=spec.lift,
        unit=spec.unit, unit_options=spec.unit_options)
    head = HEADS.get("linear")(spec.width, d_out)
    return MLPModel(adapter, backbone, head)
