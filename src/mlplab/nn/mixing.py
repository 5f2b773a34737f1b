"""Token-mixing blocks: MLP-Mixer, gMLP, ResMLP, `(batch, tokens, d) -> (batch, tokens, d)`.

Each block mixes information along the token axis (dim -2) with weights shared across
channels, and along the channel axis (dim -1) with weights shared across tokens. The channel
projections are built from the block's unit (`unit_class(unit)`, as in `blocks.py`), so a KAN,
MoE, ... channel MLP is a spec. Token mixing uses plain affine maps over the `tokens` axis
(its length is fixed at build time: `tokens`).

A TabM ensemble axis is accepted as `(batch, k, tokens, d)`: tokens stay at dim -2, the
member axis at dim 1; a member-aware unit (`batchensemble`) sees its `(…, k, d)` layout.
Any other rank, or a token count other than `tokens`, is a `ValueError` naming the shapes.

- `mixer` (Tolstikhin et al., 2021): `x + TokenMLP(LN(x)^T)^T`, then `x + ChannelMLP(LN(x))`.
  Widths as in the paper's Table 1: token-mixing hidden `D_S = token_ratio * d` (Mixer-B/16:
  384 = 0.5 * 768, independent of the token count), channel-mixing hidden
  `D_C = ratio * d` (3072 = 4 * 768). lucidrains' mlp-mixer-pytorch swaps the two roles.
- `gmlp` (Liu et al., 2021): `x + W_out(SGU(GELU(W_in LN(x))))`, spatial gating unit
  `SGU(z) = u * (W_tok LN(v) + b)` with `z = [u, v]`; `W_tok` starts near 0 and `b` at 1, so
  the block starts near a plain channel MLP; `causal = true` masks `W_tok` to the past.
- `tsmixer` (Chen et al., 2023): time mixing (norm over time x channels, one dense layer over
  the time axis shared by every channel, ReLU, dropout, residual) then feature mixing (norm,
  a `d -> ff_dim -> d` MLP from the unit, dropout, residual); `mlplab.forecast.TSMixer` wraps
  it with RevIN and the head over time.
- `resmlp` (Touvron et al., 2021): Affine norm (`alpha * x + beta`) instead of LayerNorm,
  one linear map across tokens, a ratio-4 channel MLP, each branch scaled by LayerScale
  (`layerscale`, default 0.1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.nn.blocks import Block, hidden_width
from mlplab.nn.dropout import ByteDropout, ReLUDropout
from mlplab.nn.ensemble import BatchEnsembleLinear
from mlplab.nn.layers import make_norm
from mlplab.nn.registry import register_block


def check_tokens(tokens: Any, block: str) -> int:
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise SpecError(f"model.block_options.tokens: block {block!r} mixes tokens and needs "
                        f"their number (a positive integer), got {tokens!r}; use a token "
                        "adapter (model.adapter = 'patch' for images, 'sequence' for series)")
    return tokens


class TokenBlock(Block):
    """Base for token-mixing blocks: shape checks and the ensemble-aware channel MLP."""

    name = ""
    token_mixing = True  # acts on (batch, tokens, d) only, never on a flat (batch, d)

    def __init__(self, d: int, *, tokens: int | None = None, **kwargs: Any) -> None:
        super().__init__(d, **kwargs)
        self.tokens = check_tokens(tokens, self.name)

    def check_input(self, x: Tensor) -> None:
        if x.ndim not in (3, 4) or x.shape[-2] != self.tokens or x.shape[-1] != self.d:
            raise ValueError(
                f"{self.name} block expects (batch, {self.tokens}, {self.d}) or (batch, k, "
                f"{self.tokens}, {self.d}) (tokens at dim -2, channels last), got "
                f"{tuple(x.shape)}")

    def channels(self, f: nn.Module, x: Tensor) -> Tensor:
        """Apply a channel map `f` over dim -1; with an ensemble axis `(batch, k, t, d)` and
        member-aware units (`batchensemble`), `f` sees `(batch, t, k, d)`."""
        if x.ndim == 4 and issubclass(self._unit, BatchEnsembleLinear):
            return f(x.transpose(1, 2)).transpose(1, 2)
        return f(x)


class ChannelMLP(nn.Module):
    """`fc2(drop(act(fc1(x))))` over the last dim: `(..., d) -> (..., d)`."""

    def __init__(self, block: Block, d: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = block.make_unit(d, hidden)
        self.act = block.make_activation()
        self.drop = block.make_dropout(dropout)  # after the top-k (model.block_options.top_k)
        self.fc2 = block.make_unit(hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


@register_block("mixer")
class MixerBlock(TokenBlock):
    """MLP-Mixer layer. Shapes: `(batch, tokens, d) -> (batch, tokens, d)` (or with a member
    axis `(batch, k, tokens, d)`). `token_ratio`: token-mixing hidden `D_S / d` (0.5);
    `ratio`: channel-mixing hidden `D_C / d` (4)."""

    name = "mixer"
    default_ratio = 4.0

    def __init__(self, d: int, *, tokens: int | None = None, token_ratio: float = 0.5,
                 norm: str = "layernorm", dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(d, tokens=tokens, norm=norm, dropout=dropout, **kwargs)
        if not isinstance(token_ratio, int | float) or token_ratio <= 0:
            raise SpecError(f"model.block_options.token_ratio: expected a positive number, got "
                            f"{token_ratio!r}")
        self.token_hidden = hidden_width(d, token_ratio)
        self.norm1 = make_norm(norm, d)
        self.token_fc1 = nn.Linear(self.tokens, self.token_hidden)
        self.token_act = self.make_activation() if self.activation else nn.GELU()
        self.token_drop = nn.Dropout(dropout)
        self.token_fc2 = nn.Linear(self.token_hidden, self.tokens)
        self.norm2 = make_norm(norm, d)
        self.channel_mlp = ChannelMLP(self, d, self.hidden, dropout)

    def token_mix(self, x: Tensor) -> Tensor:
        """The token-mixing MLP on already-normalised `x (..., tokens, d)`."""
        h = self.token_fc1(x.transpose(-1, -2))
        return self.token_fc2(self.token_drop(self.token_act(h))).transpose(-1, -2)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = x + self.token_mix(self.norm1(x))
        return x + self.channels(self.channel_mlp, self.norm2(x))


class SpatialGatingUnit(nn.Module):
    """`u * (W LN(v) + b)` with `[u, v] = z.chunk(2, -1)`, `W (tokens, tokens)` across tokens.

    `W` starts uniform in `±init_scale / tokens` and `b` at 1 (gMLP: near identity); with
    `causal`, `W` is lower-triangular (token i reads tokens j <= i).
    Shapes: `(..., tokens, 2h) -> (..., tokens, h)`.
    """

    mask: Tensor | None

    def __init__(self, hidden: int, tokens: int, *, norm: str = "layernorm",
                 causal: bool = False, init_scale: float = 1e-3) -> None:
        super().__init__()
        self.norm = make_norm(norm, hidden)
        bound = init_scale / tokens
        self.weight = nn.Parameter(torch.empty(tokens, tokens).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.ones(tokens))
        self.causal = causal
        self.register_buffer("mask", torch.tril(torch.ones(tokens, tokens)) if causal else None,
                             persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        u, v = z.chunk(2, dim=-1)
        w = self.weight * self.mask if self.mask is not None else self.weight
        v = torch.matmul(w, self.norm(v)) + self.bias[:, None]
        return u * v


@register_block("gmlp")
class GMLPBlock(TokenBlock):
    """gMLP block: `x + W_out(drop(SGU(act(W_in LN(x)))))`, `W_in: d -> 2 * ratio * d`.

    `ratio` (3): the gated width `d_ffn / 2` over `d` (the paper's d_ffn = 6 d). Shapes:
    `(batch, tokens, d) -> (batch, tokens, d)`; `causal = true` for autoregressive use.
    """

    name = "gmlp"
    default_ratio = 3.0

    def __init__(self, d: int, *, tokens: int | None = None, causal: bool = False,
                 norm: str = "layernorm", dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(d, tokens=tokens, norm=norm, dropout=dropout, **kwargs)
        if not isinstance(causal, bool):
            raise SpecError(f"model.block_options.causal: expected true or false, got {causal!r}")
        self.norm = make_norm(norm, d)
        self.fc_in = self.make_unit(d, 2 * self.hidden)
        self.act = self.make_activation()
        self.sgu = SpatialGatingUnit(self.hidden, self.tokens, norm=norm, causal=causal)
        self.drop = self.make_dropout(dropout)
        self.fc_out = self.make_unit(self.hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        h = self.channels(self.fc_in, self.norm(x))
        h = self.drop(self.sgu(self.act(h)))
        return x + self.channels(self.fc_out, h)


class Affine(nn.Module):
    """ResMLP's Aff: `alpha * x + beta` per channel, `(..., d) -> (..., d)` (alpha=1, beta=0)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(d))
        self.beta = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.beta, self.alpha, x)


@register_block("resmlp")
class ResMLPBlock(TokenBlock):
    """ResMLP layer: `x = x + ls1 * Lin_tok(Aff1(x))` (one linear map across tokens), then
    `x = x + ls2 * ChannelMLP(Aff2(x))`, LayerScale `ls1, ls2 (d,)` starting at `layerscale`. Shapes: `(batch, tokens, d) -> (batch, tokens, d)`. `model.norm` is ignored
    (the Affine maps are ResMLP's norm)."""

    name = "resmlp"
    default_ratio = 4.0

    def __init__(self, d: int, *, tokens: int | None = None, layerscale: float = 0.1,
                 dropout: float = 0.0, norm: str = "layernorm", **kwargs: Any) -> None:
        super().__init__(d, tokens=tokens, norm=norm, dropout=dropout, **kwargs)
        if not isinstance(layerscale, int | float) or layerscale <= 0:
            raise SpecError(f"model.block_options.layerscale: expected a positive number, got "
                            f"{layerscale!r}")
        self.aff1 = Affine(d)
        self.token_fc = nn.Linear(self.tokens, self.tokens)
        self.ls1 = nn.Parameter(torch.full((d,), float(layerscale)))
        self.aff2 = Affine(d)
        self.channel_mlp = ChannelMLP(self, d, self.hidden, dropout)
        self.ls2 = nn.Parameter(torch.full((d,), float(layerscale)))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = x + self.ls1 * self.token_fc(self.aff1(x).transpose(-1, -2)).transpose(-1, -2)
        return x + self.ls2 * self.channels(self.channel_mlp, self.aff2(x))


TS_NORMS = ("batchnorm", "layernorm", "none")


class TimeChannelNorm(nn.Module):
    """Normalise `(batch, time, C)` over both axes: BatchNorm of the `time * C` features, or
    LayerNorm over `(time, C)`, or nothing. Shapes are kept."""

    def __init__(self, kind: str, time: int, channels: int) -> None:
        super().__init__()
        if kind not in TS_NORMS:
            raise SpecError(f"model.norm: tsmixer takes one of {TS_NORMS}, not {kind!r}")
        self.kind = kind
        if kind == "batchnorm":
            # the reference's Keras defaults (eps 1e-3, momentum 0.99 = torch's 0.01)
            self.norm: nn.Module = nn.BatchNorm1d(time * channels, eps=1e-3, momentum=0.01)
        elif kind == "layernorm":
            self.norm = nn.LayerNorm([time, channels])
        else:
            self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "batchnorm":
            return self.norm(x.flatten(-2)).view_as(x)
        return self.norm(x)


@register_block("tsmixer")
class TSMixerBlock(Block):
    """One TSMixer mixing layer over `(batch, tokens = time, d = channels)`, shapes kept.

    `ratio`: `ff_dim / d` of the feature-mixing MLP (or give `ff_dim`). Block options:
    `tokens` (the lookback length).
    """

    default_ratio = 2.0
    token_mixing = True

    def __init__(self, d: int, *, tokens: int | None = None, ff_dim: int | None = None,
                 norm: str = "batchnorm", dropout: float = 0.0, activation: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(d, dropout=dropout, activation=activation or "relu", **kwargs)
        self.tokens = check_tokens(tokens, "tsmixer")
        if ff_dim is not None:
            self.hidden = ff_dim
        self.norm1 = TimeChannelNorm(norm, self.tokens, d)
        self.time_fc = nn.Linear(self.tokens, self.tokens)
        self.norm2 = TimeChannelNorm(norm, self.tokens, d)
        self.fc1 = self.make_unit(d, self.hidden)
        self.fc2 = self.make_unit(self.hidden, d)
        # 8-bit dropout masks (3x faster than nn.Dropout on CPU), fused with the ReLU
        self.drop = ByteDropout(dropout)
        if self.make_activation().__class__ is nn.ReLU:
            self.act_drop: nn.Module = ReLUDropout(dropout)
        else:
            self.act_drop = nn.Sequential(self.make_activation(), ByteDropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.tokens, self.d):
            raise ValueError(f"tsmixer block expects (batch, {self.tokens}, {self.d}), got "
                             f"{tuple(x.shape)}")
        # one dense map over time for every channel (on the (batch, C, L) view: one GEMM)
        t = self.time_fc(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.act_drop(t)
        f = self.fc2(self.act_drop(self.fc1(self.norm2(x))))
        return x + self.drop(f)
