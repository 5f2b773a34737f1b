"""Glue: a model spec plus the data's schema and the task's output size -> an `MLPModel`.

Every part is looked up by name: the adapter in `ADAPTERS` (`"auto"`: the schema's
`default_adapter`), the block in `BLOCKS`, the head in `HEADS`; each adapter and head
builds itself with its `from_spec` classmethod.
"""

from __future__ import annotations

from torch import nn

from mlplab.data.dataset import FeatureSchema
from mlplab.errors import SpecError
from mlplab.nn import Backbone, MLPModel
from mlplab.nn.ensemble import EnsembleBackbone
from mlplab.nn.options import block_option_names
from mlplab.nn.registry import ADAPTERS, BLOCKS, HEADS
from mlplab.spec import ModelSpec

__all__ = ["build_adapter", "build_model", "head_name"]

TOKEN_OPTIONS = ("n_tokens", "tokens")  # block options that receive the adapter's n_tokens


def build_adapter(spec: ModelSpec, schema: FeatureSchema) -> nn.Module:
    """The registered adapter `model.adapter` names (`"auto"`: the data's own)."""
    name = schema.default_adapter if spec.adapter == "auto" else spec.adapter
    return ADAPTERS.get(name, field="model.adapter").from_spec(spec, schema)


def head_name(spec: ModelSpec, n_tokens: int | None) -> str:
    """`model.head`, with `"auto"` resolved: ensemble, pool (after tokens), or linear."""
    if spec.head != "auto":
        return spec.head
    if spec.ensemble != "none":
        return "ensemble"
    return "pool" if n_tokens is not None else "linear"


def build_model(spec: ModelSpec, schema: FeatureSchema, d_out: int) -> MLPModel:
    """Build Adapter -> Backbone -> Head from a validated spec.

    Shapes: `(batch, ...) -> (batch, d_out)`, or `(batch, k, d_out)` with `model.ensemble`.
    A token-shaped adapter gives `(batch, n_tokens, d)` to the blocks (which act on the last
    axis; a block taking `n_tokens` gets the adapter's unless `model.block_options` sets it)
    and a token head (`pool`, `flatten`) maps it to `(batch, d_out)`.
    """
    adapter = build_adapter(spec, schema)
    n_tokens = getattr(adapter, "n_tokens", None)
    unit, unit_options = spec.unit, dict(spec.unit_options)
    block_options = dict(spec.block_options)
    if n_tokens is not None:  # the token count, under the name the block takes it by
        for name in set(TOKEN_OPTIONS) & set(block_option_names(BLOCKS.get(spec.block))):
            block_options.setdefault(name, n_tokens)
    k = spec.n_members
    if spec.ensemble != "none" and n_tokens is not None:
        raise SpecError(f"model.ensemble: {spec.ensemble!r} needs a flat (batch, d) adapter; "
                        f"this adapter gives (batch, {n_tokens} tokens, d)")
    if spec.ensemble == "tabm":
        unit, unit_options = "batchensemble", {**unit_options, "k": k}
    backbone: nn.Module = Backbone(
        adapter.d_out, block=spec.block, width=spec.width, depth=spec.depth, ratio=spec.ratio,
        activation=spec.activation, norm=spec.norm, dropout=spec.dropout, lift=spec.lift,
        unit=unit, unit_options=unit_options, block_options=block_options)
    head_cls = HEADS.get(head_name(spec, n_tokens), field="model.head")
    if spec.ensemble == "none":
        return MLPModel(adapter, backbone, head_cls.from_spec(spec, width=spec.width, d_out=d_out,
                                                              n_tokens=n_tokens))
    # TabM: random-sign scaling of the first layer, normal when numeric features are embedded;
    # one value per input feature (its embedding's or one-hot vector's width is one chunk,
    # as in the official package).
    init = "normal" if spec.num_embeddings != "none" else "random-signs"
    backbone = EnsembleBackbone(backbone, k=k, d_in=adapter.d_out, kind=spec.ensemble, init=init,
                                chunks=getattr(adapter, "feature_widths", None))
    return MLPModel(adapter, backbone, head_cls.from_spec(spec, width=spec.width, d_out=d_out,
                                                          n_tokens=None, k=k))
