"""Activations and norms by name. Norms act on the last dimension of `(..., d)`."""

from __future__ import annotations

from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.registry import ACTIVATIONS, NORMS

for _name, _cls in {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}.items():
    ACTIVATIONS.register(_name)(_cls)


class BatchNormLastDim(nn.BatchNorm1d):
    """BatchNorm over the last dimension for any leading shape: `(..., d) -> (..., d)`."""

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


NORMS.register("layernorm")(nn.LayerNorm)
NORMS.register("batchnorm")(BatchNormLastDim)


@NORMS.register("none")
class NoNorm(nn.Identity):
    """No normalisation; accepts and ignores the width argument."""

    def __init__(self, d: int) -> None:
        super().__init__()


def make_activation(name: str, width: int | None = None) -> nn.Module:
    """The activation `name`; one that learns a function per channel (`needs_width`, e.g.
    `bspline-channel`) is built for `width` channels and needs it."""
    cls = ACTIVATIONS.get(name, field="model.activation")
    if not getattr(cls, "needs_width", False):
        return cls()
    if width is None:
        raise SpecError(f"model.activation: {name!r} learns one function per channel and needs "
                        "the layer's width, which this layer does not pass; use 'bspline' (one "
                        "function per layer)")
    return cls(width)


def make_norm(name: str, d: int) -> nn.Module:
    return NORMS.get(name, field="model.norm")(d)
