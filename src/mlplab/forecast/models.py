"""Forecasting models: `forward(x, x_cat=None)`, `x (batch, input_size, C_in) -> (batch, h, C_out)`.

The input's first `C_out` channels are the targets, the rest exogenous covariates; values
arrive standardised per series and channel (train statistics). Every model takes
`Model(input_size, h, n_in, n_out, **options)`; `FORECAST_MODELS` maps a name to its class.

- `tsmixer` (Chen et al., 2023, "TSMixer: An All-MLP Architecture for Time Series
  Forecasting"): RevIN -> `n_blocks` x [time mixing: norm, one dense layer over the lookback
  (shared across channels) + ReLU, dropout, residual; feature mixing: norm, C -> `ff_dim` ->
  C MLP over channels (from the unit), dropout, residual] -> the target channels -> a linear
  head over time (`input_size -> h`) -> RevIN undone. Norm over both axes, as the reference
  (`batchnorm`: BatchNorm over the flattened `(time, channel)` features; `layernorm`: over both).
- `mlp`: RevIN -> flatten the window -> mlplab's residual backbone -> linear to `h * C_out`.
- `linear`: DLinear (Zeng et al., 2023): moving-average trend + remainder, one linear map over
  time each, shared across channels (channel-independent; exogenous inputs unused).

These are the only forecasting models: `MLPForecaster`, `mlplab repro tsmixer`, the benchmark
and `task.kind = "forecast"` specs (`spec_options` maps a `[model]` section onto them) all
build them with `build_forecast_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.errors import SpecError
from mlplab.forecast.revin import RevIN
from mlplab.nn.backbone import Backbone
from mlplab.nn.mixing import TSMixerBlock
from mlplab.nn.token_adapters import SequenceAdapter

if TYPE_CHECKING:
    from mlplab.spec import ModelSpec


class TSMixer(nn.Module):
    """RevIN -> `n_blocks` TSMixer layers -> time head. `(batch, L, C_in) -> (batch, h, C_out)`."""

    display = "TSMixer"

    def __init__(self, input_size: int, h: int, n_in: int, n_out: int, *, n_blocks: int = 2,
                 ff_dim: int = 64, dropout: float = 0.1, norm: str = "batchnorm",
                 revin: bool = True, unit: str = "linear",
                 unit_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.n_out = n_out
        self.tokens = SequenceAdapter(input_size, channels=n_in)  # checks (batch, L, C_in)
        self.revin = RevIN(n_in) if revin else None
        self.blocks = nn.Sequential(*(
            TSMixerBlock(n_in, tokens=input_size, ff_dim=ff_dim, norm=norm, dropout=dropout,
                         unit=unit, unit_options=unit_options) for _ in range(n_blocks)))
        self.head = nn.Linear(input_size, h)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        x = self.tokens(x)
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        z = self.blocks(x)[..., : self.n_out]
        out = self.head(z.transpose(1, 2)).transpose(1, 2)  # (batch, h, C_out)
        return self.revin.denormalize(out, stats) if self.revin is not None else out


class WindowMLP(nn.Module):
    """RevIN -> flatten `(L * C_in)` -> residual MLP backbone -> `h * C_out`."""

    display = "MLP"

    def __init__(self, input_size: int, h: int, n_in: int, n_out: int, *, width: int = 256,
                 depth: int = 2, dropout: float = 0.1, block: str = "standard",
                 norm: str = "layernorm", revin: bool = True, unit: str = "linear",
                 unit_options: dict[str, Any] | None = None, ratio: float | None = None,
                 activation: str | None = None,
                 block_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.h, self.n_out = h, n_out
        self.revin = RevIN(n_in) if revin else None
        self.backbone = Backbone(input_size * n_in, block=block, width=width, depth=depth,
                                 ratio=ratio, activation=activation, norm=norm, dropout=dropout,
                                 unit=unit, unit_options=unit_options,
                                 block_options=block_options)
        self.head = nn.Linear(width, h * n_out)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        out = self.head(self.backbone(x.flatten(1))).view(len(x), self.h, self.n_out)
        return self.revin.denormalize(out, stats) if self.revin is not None else out


class DLinear(nn.Module):
    """Trend (moving average of `kernel`) and remainder, each `Linear(L, h)` over time, summed.

    Channel-independent: the same maps for every target channel. Optional RevIN (off by
    default, as in DLinear). `(batch, L, C_in) -> (batch, h, C_out)`.
    """

    display = "Linear"

    def __init__(self, input_size: int, h: int, n_in: int, n_out: int, *, kernel: int = 25,
                 revin: bool = False) -> None:
        super().__init__()
        self.n_out, self.kernel = n_out, kernel
        self.revin = RevIN(n_out) if revin else None
        self.trend = nn.Linear(input_size, h)
        self.rest = nn.Linear(input_size, h)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        x = x[..., : self.n_out]
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        xt = x.transpose(1, 2)  # (batch, C, L)
        pad = (self.kernel - 1) // 2
        padded = F.pad(xt, (pad, self.kernel - 1 - pad), mode="replicate")
        trend = F.avg_pool1d(padded, self.kernel, stride=1)
        out = (self.trend(trend) + self.rest(xt - trend)).transpose(1, 2)
        return self.revin.denormalize(out, stats) if self.revin is not None else out


FORECAST_MODELS: dict[str, type[nn.Module]] = {"tsmixer": TSMixer, "mlp": WindowMLP,
                                               "linear": DLinear}


def build_forecast_model(name: str, input_size: int, h: int, n_in: int, n_out: int,
                         options: dict[str, Any] | None = None) -> nn.Module:
    """The model `name` with its `options`; `SpecError` naming a bad name or option."""
    import inspect

    if name not in FORECAST_MODELS:
        raise SpecError(f"model: unknown forecasting model {name!r}; choose one of "
                        + ", ".join(repr(n) for n in FORECAST_MODELS))
    cls = FORECAST_MODELS[name]
    try:
        inspect.signature(cls).bind(input_size, h, n_in, n_out, **(options or {}))
    except TypeError as err:
        raise SpecError(f"model_options: {name}: {err}") from None
    return cls(input_size, h, n_in, n_out, **(options or {}))


def spec_model(spec: ModelSpec, model: str | None = None) -> str:
    """The forecasting model a `[model]` section builds: `model` (`task.options.model`) when
    given, else `tsmixer` for `model.block = "tsmixer"` and `mlp` for any other block."""
    return model or ("tsmixer" if spec.block == "tsmixer" else "mlp")


def spec_options(name: str, spec: ModelSpec, *, revin: bool | None = None) -> dict[str, Any]:
    """`build_forecast_model` options for the model `name` from a `[model]` section.

    - `tsmixer`: `depth` mixing layers, `width` = the feature-mixing hidden size `ff_dim` (the
      knob a parameter budget solves; the channels stay the series'), `norm`, `dropout`,
      `unit`/`unit_options` of the feature-mixing MLP.
    - `mlp`: the residual backbone over the flat window: `block`, `width`, `depth`, `ratio`,
      `activation`, `norm`, `dropout`, `unit`, `unit_options`, `block_options`.
    - `linear` (DLinear): none of them (it has no width).
    `revin` (`task.options.instance_norm`), when not None, turns RevIN on or off.
    """
    flags = {} if revin is None else {"revin": revin}
    if name == "tsmixer":
        return {"n_blocks": spec.depth, "ff_dim": spec.width, "dropout": spec.dropout,
                "norm": spec.norm, "unit": spec.unit, "unit_options": dict(spec.unit_options),
                **flags}
    if name == "mlp":
        return {"width": spec.width, "depth": spec.depth, "dropout": spec.dropout,
                "block": spec.block, "norm": spec.norm, "ratio": spec.ratio,
                "activation": spec.activation, "unit": spec.unit,
                "unit_options": dict(spec.unit_options),
                "block_options": dict(spec.block_options), **flags}
    return flags


__all__ = ["TSMixer", "WindowMLP", "DLinear", "TSMixerBlock", "FORECAST_MODELS",
           "build_forecast_model", "spec_model", "spec_options"]
