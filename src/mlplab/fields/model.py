"""A coordinate MLP from parts: encoding (adapter) -> plain backbone -> linear head.

`field_model` is what a field spec's model section means (`mlplab.fields.domain` builds it
the same way): the encoding named by `encoding` with its options, `depth` hidden layers of
`width` (`plain` blocks, no norm; ReLU, or `siren` units after the `siren` encoding), a linear
head to the signal's channels. Shapes: `(batch, d_coord) -> (batch, d_out)`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mlplab.nn.backbone import Backbone
from mlplab.nn.heads import LinearHead
from mlplab.nn.model import MLPModel
from mlplab.nn.registry import ADAPTERS

ENCODINGS = ("coords", "fourier", "posenc", "siren", "hashgrid", "densegrid", "rbfgrid")
ALIASES = {"none": "coords"}


def encoding_name(name: str) -> str:
    return ALIASES.get(name, name)


def field_model(encoding: str, d_coord: int, d_out: int, *, width: int = 64, depth: int = 2,
                encoding_options: dict[str, Any] | None = None, activation: str | None = None,
                omega_0: float = 30.0) -> MLPModel:
    """`(batch, d_coord) -> (batch, d_out)`: encoding, `depth` plain layers, linear head."""
    adapter = ADAPTERS.get(encoding_name(encoding), field="model.adapter")(
        d_coord, **(encoding_options or {}))
    siren = encoding_name(encoding) == "siren"
    backbone = Backbone(adapter.d_out, block="plain", width=width, depth=depth, norm="none",
                        unit="siren" if siren else "linear",
                        unit_options={"omega_0": omega_0} if siren else None,
                        activation=None if siren else (activation or "relu"))
    head: nn.Module = LinearHead(width, d_out)
    return MLPModel(adapter, backbone, head)
