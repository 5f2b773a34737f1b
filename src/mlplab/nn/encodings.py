"""Coordinate encodings for neural fields: `(batch, d_coord) -> (batch, d_out)`.

Coordinates are expected in `[-1, 1]`. `coords` passes them through (the plain coordinate MLP,
which is blurry: spectral bias); `fourier` is Tancik et al.'s Gaussian Fourier feature map
`[cos(2 pi B x), sin(2 pi B x)]`, `B ~ N(0, sigma^2)`; `posenc` the log-spaced positional
encoding `cos/sin(2 pi sigma^(j/m) x_k)`, j = 0..m-1; `siren` SIREN's first layer
`sin(omega_0 (W x + b))` with `W ~ U(-1/d, 1/d)` (hidden layers are the `siren` unit,
`mlplab.nn.siren`). Grid encodings (hash, dense, RBF grids) are in `mlplab.nn.hashgrid`.
Every encoding has `d_out` and takes the spec's seed through torch's global generator.
Grid encodings also take `smoothness` (in `model.adapter_options`, default 0): the weight of
a total-variation penalty on their dense levels' tables (`grid_total_variation`), added to
the training loss through the auxiliary-loss protocol (`mlplab.nn.aux_loss`) -- a smoothness
prior for fields that must interpolate between training samples.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn import options as opt
from mlplab.nn.registry import ADAPTERS, register_adapter
from mlplab.nn.siren import FP32_REASON, siren_layer

if TYPE_CHECKING:
    from mlplab.data.dataset import FeatureSchema
    from mlplab.spec import ModelSpec

FRESH = "fresh"
SMOOTHNESS = "smoothness"  # an option of every grid encoding, handled here (see aux_loss)


def is_fresh(value: object) -> bool:
    """Whether an option value asks FreSh to choose it (`"fresh"`, any case)."""
    return isinstance(value, str) and value.lower() == FRESH


def _check_coords(x: Tensor, d_in: int) -> None:
    if x.ndim != 2 or x.shape[1] != d_in:
        raise ValueError(f"expected coordinates (batch, {d_in}), got {tuple(x.shape)}")


def check_adapter_options(name: str, options: dict[str, Any]) -> None:
    """Raise `ValueError` naming the option unless adapter `name` accepts `options`
    (`"fresh"` only for its `scale_option`); for `model.adapter_options`."""
    cls = ADAPTERS.get(name, field="model.adapter")
    scale = getattr(cls, "scale_option", None)
    values = dict(options)
    if SMOOTHNESS in values:
        smooth = values.pop(SMOOTHNESS)
        if not is_grid(cls):
            raise ValueError(f"{SMOOTHNESS}: applies to the grid encodings (hashgrid, "
                             f"densegrid, rbfgrid), not {name!r}")
        if isinstance(smooth, bool) or not isinstance(smooth, int | float) or not (
                math.isfinite(smooth) and smooth >= 0):
            raise ValueError(f"{SMOOTHNESS}: expected a number >= 0, got {smooth!r}")
    for key, value in options.items():
        if is_fresh(value):
            if key != scale:
                raise ValueError(f"{key}: 'fresh' applies to the scale option of an encoding "
                                 f"({name!r}: {scale or 'none'})")
            values.pop(key)
    try:
        inspect.signature(cls).bind(1, **values)
    except TypeError as err:
        raise ValueError(f"adapter {name!r}: {err}") from None
    if getattr(cls, "check_options", None) is None:
        return
    try:  # build a small one: every value is checked where the adapter checks it
        with torch.random.fork_rng(devices=[]):
            cls(2, **values)
    except opt.UnitOptionError as err:
        raise ValueError(f"{err.option}: {err.detail}") from None


def is_grid(cls: type) -> bool:
    """Whether adapter class `cls` is a grid encoding (learned tables at grid vertices)."""
    return getattr(cls, "scale_option", None) == "finest_resolution"


def grid_total_variation(grid: nn.Module) -> Tensor:
    """Anisotropic total variation of a grid encoding's dense levels: for each level and axis,
    the mean `|T[v + e_k] - T[v]|` over its `(N_l + 1)^d` vertices and features, summed (a
    scalar; hashed levels have no vertex neighbourhood and are skipped). Reads the flat table
    `(rows, F)` (or feature-major `(F, rows)`) at each dense level's offset."""
    table = grid.table
    rows = sum(grid.sizes)
    if table.shape[0] != rows:  # feature-major layout
        table = table.t()
    total = table.new_zeros(())
    for level, (res, dense) in enumerate(zip(grid.resolutions, grid.dense_levels, strict=True)):
        if not dense:
            continue
        start = int(grid.offsets[level])
        side = res + 1
        block = table[start: start + side ** grid.d_in].reshape((side,) * grid.d_in + (-1,))
        for axis in range(grid.d_in):
            total = total + block.diff(dim=axis).abs().mean()
    return total


class CoordinateAdapter(nn.Module):
    """Base of the coordinate encodings: built from `model.adapter_options` and the field
    data's coordinate count (`schema.info["d_coord"]`); a `"fresh"` scale option takes the
    value FreSh chose for this data (`schema.info["fresh"]`). Flat output (`n_tokens` None)."""

    scale_option: str | None = None
    n_tokens: int | None = None
    smoothness: float = 0.0  # grids: weight of `grid_total_variation` in the training loss

    def aux_loss(self) -> Tensor | None:
        """`smoothness * grid_total_variation(self)` while training a grid with smoothness."""
        if not self.smoothness or not self.training:
            return None
        return self.smoothness * grid_total_variation(self)

    @classmethod
    def from_spec(cls, spec: ModelSpec, schema: FeatureSchema) -> nn.Module:
        name = next((n for n in ADAPTERS.names() if ADAPTERS.get(n) is cls), cls.__name__)
        d_coord = schema.info.get("d_coord")
        if not isinstance(d_coord, int):
            raise SpecError(f"model.adapter: {name!r} encodes coordinates; it needs field data "
                            "(task.kind = 'field')")
        options = dict(spec.adapter_options)
        for key, value in spec.adapter_options.items():
            if is_fresh(value):
                fresh = schema.info.get("fresh") or {}
                if fresh.get("option") != key or "chosen" not in fresh:
                    raise SpecError(f"model.adapter_options.{key}: 'fresh' is chosen from the "
                                    "field data (task.kind = 'field'); none was recorded")
                options[key] = fresh["chosen"]
        options = cls.options_from_spec(spec, options)
        try:
            check_adapter_options(name, options)
        except ValueError as err:
            raise SpecError(f"model.adapter_options: {err}") from None
        smoothness = float(options.pop(SMOOTHNESS, 0.0))
        adapter = cls(d_coord, **options)
        adapter.smoothness = smoothness
        return adapter

    @classmethod
    def options_from_spec(cls, spec: ModelSpec, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults an encoding takes from the rest of the model spec (none by default)."""
        return options


@register_adapter("coords")
class CoordinateInput(CoordinateAdapter):
    """No encoding: `(batch, d_in) -> (batch, d_in)`."""

    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.d_in = self.d_out = d_in

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        return x


@register_adapter("fourier")
class FourierFeatures(CoordinateAdapter):
    """Gaussian Fourier features: `(batch, d_in) -> (batch, 2 * n_frequencies)`.

    `B (n_frequencies, d_in) ~ N(0, sigma^2)` is a buffer (fixed, saved with the model) unless
    `learnable`; the output is `[cos(2 pi x B^T), sin(2 pi x B^T)]`. `sigma` sets the
    bandwidth: too small is blurry, too large is noisy; `scale = "fresh"` picks it
    (`mlplab.fields.fresh`). With coordinates in [-1, 1], sigma here is half the value a
    [0, 1]-coordinate paper reports for the same image.
    """

    scale_option = "sigma"

    def __init__(self, d_in: int, *, n_frequencies: int = 256, sigma: float = 10.0,
                 learnable: bool = False) -> None:
        super().__init__()
        self.check_options(dict(n_frequencies=n_frequencies, sigma=sigma, learnable=learnable))
        self.d_in, self.sigma = d_in, float(sigma)
        freqs = torch.randn(n_frequencies, d_in) * sigma
        if learnable:
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)
        self.d_out = 2 * n_frequencies

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_frequencies", low=1)
        opt.check_float(options, "sigma", low=0.0)
        opt.check_bool(options, "learnable")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        with torch.autocast(x.device.type, enabled=False):  # phases in fp32, also under bf16
            proj = (2 * math.pi) * (x.to(self.freqs.dtype) @ self.freqs.t())
        return torch.cat([proj.cos(), proj.sin()], dim=-1)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_frequencies={self.freqs.shape[0]}, sigma={self.sigma:g}"


@register_adapter("posenc")
class PositionalEncoding(CoordinateAdapter):
    """Log-spaced positional encoding: `(batch, d_in) -> (batch, 2 * d_in * n_frequencies)`
    (`+ d_in` with `include_input`).

    Frequencies `sigma^(j / n_frequencies)`, j = 0..n-1 (Tancik et al.'s "positional
    encoding" baseline), each axis on its own: `[cos(2 pi f_j x_k), sin(2 pi f_j x_k)]`.
    """

    scale_option = "sigma"

    def __init__(self, d_in: int, *, n_frequencies: int = 64, sigma: float = 10.0,
                 include_input: bool = False) -> None:
        super().__init__()
        self.check_options(dict(n_frequencies=n_frequencies, sigma=sigma,
                                include_input=include_input))
        self.d_in, self.sigma, self.include_input = d_in, float(sigma), include_input
        exps = torch.arange(n_frequencies, dtype=torch.float32) / n_frequencies
        self.register_buffer("freqs", float(sigma) ** exps, persistent=False)
        self.d_out = 2 * d_in * n_frequencies + (d_in if include_input else 0)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_frequencies", low=1)
        opt.check_float(options, "sigma", low=0.0, open_low=True)
        opt.check_bool(options, "include_input")

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        proj = (2 * math.pi) * (x.float().unsqueeze(-1) * self.freqs).flatten(1)
        parts = [proj.cos(), proj.sin()]
        return torch.cat([x.float(), *parts] if self.include_input else parts, dim=-1)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, n_frequencies={self.freqs.numel()}, sigma={self.sigma:g}, "
                f"include_input={self.include_input}")


@register_adapter("siren")
class SirenInput(CoordinateAdapter):
    """SIREN's first layer: `sin(omega_0 (W x + b))`, `(batch, d_in) -> (batch, n_features)`.

    `W ~ U(-1/d_in, 1/d_in)` (SIREN's first-layer rule), bias as `nn.Linear`; `omega_0`
    (30) scales the input frequencies, `scale = "fresh"` picks it. Follow it with `siren`
    units (`model.unit = "siren"`, `model.block = "plain"`, `model.norm = "none"`).
    """

    scale_option = "omega_0"
    fp32_reason = FP32_REASON  # computes in fp32 under bf16, as the siren unit (mlplab.nn.siren)

    def __init__(self, d_in: int, *, n_features: int = 256, omega_0: float = 30.0) -> None:
        super().__init__()
        self.check_options(dict(n_features=n_features, omega_0=omega_0))
        self.d_in, self.omega_0 = d_in, float(omega_0)
        self.linear = nn.Linear(d_in, n_features)
        with torch.no_grad():
            self.linear.weight.uniform_(-1.0 / d_in, 1.0 / d_in)
        self.d_out = n_features

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "n_features", low=1)
        opt.check_float(options, "omega_0", low=0.0, open_low=True)

    @classmethod
    def options_from_spec(cls, spec: ModelSpec, options: dict[str, Any]) -> dict[str, Any]:
        return {"n_features": spec.width, **options}  # the first layer is as wide as the rest

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        _check_coords(x, self.d_in)
        return siren_layer(self.linear, self.omega_0, x)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_features={self.d_out}, omega_0={self.omega_0:g}"
