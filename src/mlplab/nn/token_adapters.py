"""Token adapters for the token-mixing families (`mixer`, `gmlp`, `resmlp`, `tsmixer`).

- `patch`: images `(batch, C, H, W)` -> non-overlapping `patch x patch` patches, row-major,
  each flattened channel-major: `(batch, (H / patch) * (W / patch), C * patch * patch)`. The
  backbone's lift then embeds every patch with one shared map (MLP-Mixer's per-patch
  projection). `model.adapter_options.patch` (default 2) must divide H and W.
- `sequence`: windows of a series `(batch, time, C)` -> one token per time step,
  `(batch, time, C)` (the lookback length is `schema.info["input_size"]`).

And the head `forecast`: a linear map over time from a token stream to `h * channels` values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.registry import register_adapter, register_head

if TYPE_CHECKING:
    from mlplab.data.dataset import FeatureSchema
    from mlplab.spec import ModelSpec


@register_adapter("patch")
class PatchAdapter(nn.Module):
    """`(batch, C, H, W) -> (batch, n_tokens, C * patch^2)`, patches in row-major order."""

    def __init__(self, image_shape: Any, *, patch: int = 2) -> None:
        super().__init__()
        if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
            raise SpecError(f"model.adapter_options.patch: expected a positive integer, got "
                            f"{patch!r}")
        shape = tuple(image_shape) if isinstance(image_shape, list | tuple) else (1, 1, 1)
        c, h, w = shape if len(shape) == 3 else (1, *shape[-2:])
        if h % patch or w % patch:
            raise SpecError(f"model.adapter_options.patch: {patch} does not divide the image "
                            f"size {h}x{w}")
        self.image_shape, self.patch = (c, h, w), patch
        self.grid = (h // patch, w // patch)
        self.n_tokens: int | None = self.grid[0] * self.grid[1]
        self.d_out = c * patch * patch

    @classmethod
    def from_spec(cls, spec: ModelSpec, schema: FeatureSchema) -> PatchAdapter:
        if schema.image_shape is None:
            raise SpecError("model.adapter: 'patch' needs an image dataset (e.g. sklearn:digits)")
        return cls(schema.image_shape, **spec.adapter_options)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        c, h, w = self.image_shape
        p, (gh, gw) = self.patch, self.grid
        x = x.reshape(len(x), c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(len(x), gh * gw, c * p * p)


@register_adapter("sequence")
class SequenceAdapter(nn.Module):
    """Series windows `(batch, time, C) -> (batch, time, C)`: one token per time step."""

    def __init__(self, input_size: int, *, channels: int = 1) -> None:
        super().__init__()
        self.n_tokens: int | None = int(input_size)
        self.d_out = int(channels)

    @classmethod
    def from_spec(cls, spec: ModelSpec, schema: FeatureSchema) -> SequenceAdapter:
        info = schema.info or {}
        if "input_size" not in info:
            raise SpecError("model.adapter: 'sequence' needs series windows "
                            "(task.kind = 'forecast')")
        return cls(info["input_size"], channels=info.get("channels", 1), **spec.adapter_options)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.n_tokens:
            raise ValueError(f"sequence adapter expects (batch, {self.n_tokens}, C), got "
                             f"{tuple(x.shape)}")
        return x




@register_head("forecast")
class ForecastHead(nn.Module):
    """A linear head over time for token streams: `(batch, tokens, width) -> (batch, d_out)`.

    Output `o` (one horizon step of one target channel, `d_out = h * channels`) reads its own
    channel mixture `Z @ w_o` and weighs the time steps with its own `v_o`:
    `out[o] = sum_t v[o, t] (Z[t] . w[:, o]) + b[o]`. TSMixer's head (a dense map
    `input_size -> h` over time per channel) is the case `w_o` = the output's channel.
    """

    def __init__(self, width: int, d_out: int, *, n_tokens: int) -> None:
        super().__init__()
        self.channel = nn.Linear(width, d_out, bias=False)
        self.time = nn.Parameter(torch.empty(d_out, n_tokens).uniform_(
            -1 / math.sqrt(n_tokens), 1 / math.sqrt(n_tokens)))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: Tensor) -> Tensor:
        return (self.channel(x) * self.time.T).sum(dim=-2) + self.bias

    @classmethod
    def from_spec(cls, spec: Any, *, width: int, d_out: int, n_tokens: int | None = None,
                  k: int = 1) -> nn.Module:
        if n_tokens is None:
            raise SpecError("model.head: 'forecast' reads a token stream; this adapter gives a "
                            "flat (batch, d) stream (use 'linear')")
        return cls(width, d_out, n_tokens=n_tokens)
