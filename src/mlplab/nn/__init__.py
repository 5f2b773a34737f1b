"""Model layers: units, blocks, backbone, adapters, heads — each a registry keyed by name."""

from mlplab.nn import layers as _layers  # noqa: F401  (registers activations and norms)
from mlplab.nn.adapters import ImageAdapter, TabularAdapter
from mlplab.nn.backbone import Backbone
from mlplab.nn.blocks import (
    BilinearBlock,
    Block,
    GatedBlock,
    GLUBlock,
    HourglassBlock,
    PlainBlock,
    StandardBlock,
    SwiGLUBlock,
)
from mlplab.nn.heads import LinearHead
from mlplab.nn.model import MLPModel
from mlplab.nn.registry import ADAPTERS, BLOCKS, HEADS, UNITS, Registry
from mlplab.nn.units import FrozenLinear, LinearUnit

__all__ = [
    "ADAPTERS", "BLOCKS", "HEADS", "UNITS", "Registry", "Backbone", "Block", "GatedBlock",
    "StandardBlock", "HourglassBlock", "GLUBlock", "SwiGLUBlock", "BilinearBlock", "PlainBlock",
    "TabularAdapter", "ImageAdapter", "LinearHead", "MLPModel", "FrozenLinear", "LinearUnit",
]

from mlplab.nn import encodings as _encodings  # noqa: E402,F401  (registers coordinate encodings)
from mlplab.nn import ensemble as _ensemble  # noqa: E402,F401  (registers the batchensemble unit)
from mlplab.nn import fan as _fan  # noqa: E402,F401  (registers the fan unit)
from mlplab.nn import hashgrid as _hashgrid  # noqa: E402,F401  (registers hash/dense/RBF grids)
from mlplab.nn import kan as _kan  # noqa: E402,F401  (registers the kan unit)
from mlplab.nn import mixing as _mixing  # noqa: E402,F401  (registers mixer, gmlp, resmlp)
from mlplab.nn import moe as _moe  # noqa: E402,F401  (registers the moe unit)
from mlplab.nn import rbf as _rbf  # noqa: E402,F401  (registers the rbf unit)
from mlplab.nn import siren as _siren  # noqa: E402,F401  (registers the siren unit, sine activation)
from mlplab.nn import spline_activation as _spline  # noqa: E402,F401  (registers the bspline activation)
from mlplab.nn import token_adapters as _token_adapters  # noqa: E402,F401  (registers patch, sequence)
