"""Token adapters for the token-mixing families (`mixer`, `gmlp`, `resmlp`, `tsmixer`).

- `patch`: images `(batch, C, H, W)` -> non-overlapping `patch x patch` patches, row-major,
  each flattened channel-major: `(batch, (H / patch) * (W / patch), C * patch * patch)`. The
  backbone's lift then embeds every patch with one shared map (MLP-Mixer's per-patch
  projection). `model.adapter_options.patch` (default 2) must divide H and W.
- `sequence`: windows of a series `(batch, time, C)` -> one token per time step,
  `(batch, time, C)` (the lookback length is `schema.info["input_size"]`); it is also
  `mlplab.forecast.TSMixer`'s input check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.registry import register_adapter

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

