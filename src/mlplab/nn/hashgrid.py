"""Grid encodings of coordinates: multiresolution hash grid, dense grid, Gaussian RBF grid.

One core (`GridEncoding`) serves all three: `levels` grids of resolution `N_l` (geometric from
`base_resolution` to `finest_resolution`, instant-NGP's rule `N_l = floor(N_min * b^l)`), each
vertex holding `features` learned values. A coordinate `x in [-1, 1]^d` is placed at
`u * N_l` with `u = (x + 1) / 2`; its value on a level is a weighted sum over nearby vertices:
the `2^d` corners of its cell with multilinear weights (`kernel="linear"`), or a `4^d`
window with separable Gaussian weights (`kernel="gaussian"`). A level whose `(N_l + 1)^d`
vertices fit into `2^log2_table` entries is indexed densely (no collisions); a finer one is
hashed with instant-NGP's spatial hash `xor_k(c_k * pi_k) mod 2^log2_table`,
`pi = (1, 2654435761, 805459861)`. Every level lives in one flat `(rows, features)` table:
the index math is done for all levels at once in int32 (tensors `(…, batch, levels)`), and the
lookup (`mlplab.nn.grid_lookup`) is one `index_select` of whole rows plus a weighted sum over
the corners, its backward one `scatter_add_` per corner into the table; its output is already the
`(batch, levels * features)` layout.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from mlplab.nn import options as opt
from mlplab.nn.encodings import CoordinateAdapter
from mlplab.nn.grid_lookup import GridLookup
from mlplab.nn.grid_native import NativeBuildError, NativeGridLookup
from mlplab.nn.grid_native import load as load_native
from mlplab.nn.registry import register_adapter

PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037)
KERNELS = ("linear", "gaussian")
IMPLEMENTATIONS = ("torch", "native")
GAUSSIAN_TAPS = (-1, 0, 1, 2)  # vertices around the cell, per axis, for kernel="gaussian"


def level_resolutions(levels: int, base: float, finest: float) -> list[int]:
    """instant-NGP's geometric resolutions: `floor(base * b^l)`, `b = (finest/base)^(1/(L-1))`."""
    if levels == 1:
        return [int(math.floor(finest))]
    growth = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
    return [int(math.floor(base * growth ** level + 1e-9)) for level in range(levels)]


class GridEncoding(CoordinateAdapter):
    """`levels` grids of learned features: `(batch, d_in) -> (batch, levels * features)`.

    Options: `levels`, `features` per level, `log2_table` (entries per level at most
    `2^log2_table`), `base_resolution`, `finest_resolution`, `kernel` ("linear" corners or a
    "gaussian" 4-per-axis window of width `rbf_width` cells), `hashed` (False: every level
    dense, sized `(N_l + 1)^d`), `init_scale` (tables start `U(-s, s)`), `lr_scale` (the
    trainer multiplies the learning rate of this module's parameters by it), `implementation`
    ("torch": the pure-PyTorch lookup; "native": the fused C++ loops of
    `mlplab.nn.grid_native` -- the same outputs bitwise, table gradients to float rounding --
    for the linear kernel with up to 3 coordinates, compiled on first use; it serves fp32 CPU
    calls whose coordinates need no gradient outside tracing, the torch path the rest; where
    the op cannot be built it warns and uses the torch path). Coordinates outside `[-1, 1]`
    are clamped onto the grid.
    """

    scale_option = "finest_resolution"

    def __init__(self, d_in: int, *, levels: int = 16, features: int = 2, log2_table: int = 12,
                 base_resolution: float = 16, finest_resolution: float = 512,
                 kernel: str = "linear", hashed: bool = True, rbf_width: float = 1.0,
                 init_scale: float = 1e-4, lr_scale: float = 1.0,
                 implementation: str = "torch") -> None:
        super().__init__()
        self.check_options(dict(levels=levels, features=features, log2_table=log2_table,
                                base_resolution=base_resolution,
                                finest_resolution=finest_resolution, kernel=kernel,
                                hashed=hashed, rbf_width=rbf_width, init_scale=init_scale,
                                lr_scale=lr_scale, implementation=implementation))
        if d_in > len(PRIMES):
            raise ValueError(f"grid encodings take at most {len(PRIMES)} coordinates, got {d_in}")
        self.d_in, self.levels, self.features = d_in, levels, features
        self.kernel, self.hashed, self.rbf_width = kernel, hashed, float(rbf_width)
        self.lr_scale = float(lr_scale)
        self.implementation = implementation
        if implementation == "native":
            if d_in > 3:
                raise ValueError(f"implementation='native' takes at most 3 coordinates, "
                                 f"got {d_in}; use implementation='torch'")
            try:  # compiled here, before any training
                load_native()
            except NativeBuildError as err:  # same outputs either way: warn, keep working
                warnings.warn(f"{err}; this grid uses the torch lookup", stacklevel=2)
                self.implementation = "torch"
        self.table_size = 2 ** log2_table
        self.resolutions = level_resolutions(levels, base_resolution, finest_resolution)
        vertices = [(r + 1) ** d_in for r in self.resolutions]
        self.dense_levels = [not hashed or v <= self.table_size for v in vertices]
        self.n_dense = sum(self.dense_levels)  # a prefix: resolutions grow with the level
        assert all(self.dense_levels[: self.n_dense]) and not any(self.dense_levels[self.n_dense:])
        self.sizes = [v if dense else self.table_size
                      for v, dense in zip(vertices, self.dense_levels, strict=True)]
        # hashed levels first in the table, so their offsets are multiples of the table size
        # and `hash | offset == hash + offset`; dense levels after them
        order = sorted(range(levels), key=lambda level: self.dense_levels[level])
        offsets = [0] * levels
        start = 0
        for level in order:
            offsets[level] = start
            start += self.sizes[level]
        self.register_buffer("res", torch.tensor(self.resolutions, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("res_int", self.res.int(), persistent=False)
        self.register_buffer("top", self.res_int - 1, persistent=False)
        # per axis k and level l: the multiplier of the vertex coordinate (the dense stride
        # (N_l + 1)^k or the hash prime pi_k, as int32 that wraps: its low bits are exact),
        # and the level's offset on axis 0 (hashed levels keep `self.mask` low bits)
        primes = [p - 2**32 if p >= 2**31 else p for p in PRIMES[:d_in]]
        mult = [[(r + 1) ** k if dense else primes[k]
                 for r, dense in zip(self.resolutions, self.dense_levels, strict=True)]
                for k in range(d_in)]
        self.register_buffer("mult", torch.tensor(mult, dtype=torch.int32), persistent=False)
        self.mask = self.table_size - 1
        # per level: the bits a vertex term keeps (all on dense levels, `mask` on hashed ones)
        self.register_buffer("masks", torch.tensor(
            [-1 if dense else self.mask for dense in self.dense_levels], dtype=torch.int32),
            persistent=False)
        self.register_buffer("gauss_offs", torch.tensor(GAUSSIAN_TAPS, dtype=torch.int32).view(
            -1, 1, 1), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int32),
                             persistent=False)
        # a row per vertex; drawn feature-major, so a seed gives the tables it gave before
        init = torch.empty(features, sum(self.sizes)).uniform_(-init_scale, init_scale)
        self.table = nn.Parameter(init.t().contiguous())
        self.d_out = levels * features

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        opt.check_int(options, "levels", low=1, high=64)
        opt.check_int(options, "features", low=1)
        opt.check_int(options, "log2_table", low=1, high=30)
        opt.check_float(options, "base_resolution", low=1.0)
        opt.check_float(options, "finest_resolution", low=1.0)
        if options["finest_resolution"] < options["base_resolution"]:
            raise opt.UnitOptionError("finest_resolution", "must be >= base_resolution")
        opt.check_choice(options, "kernel", KERNELS)
        opt.check_bool(options, "hashed")
        opt.check_float(options, "rbf_width", low=0.0, open_low=True)
        opt.check_float(options, "init_scale", low=0.0)
        opt.check_float(options, "lr_scale", low=0.0, open_low=True)
        opt.check_choice(options, "implementation", IMPLEMENTATIONS)
        if options["implementation"] == "native" and options["kernel"] != "linear":
            raise opt.UnitOptionError("implementation", "'native' covers kernel='linear' only")

    def taps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Each axis's share of the flat row index and its weight, all levels at once:
        `(batch, d_in) -> ((d_in, K, batch, L) int32, (d_in, K, batch, L))`, K = 2 (linear)
        or 4 (gaussian). A share is `(vertex_k * mult_k) & mask_l` (the dense stride or hash
        prime, wrapping in int32: its low bits are exact); axis 0's also holds the offset."""
        u = x.float().clamp(-1.0, 1.0).add(1.0).mul(0.5)
        pos = u.t().unsqueeze(-1) * self.res  # (d, B, L), >= 0
        base = pos.detach().int()  # floor, as pos >= 0
        torch.minimum(base, self.top, out=base)
        mult = self.mult.unsqueeze(1)  # (d, 1, L)
        d, b, n_levels = base.shape
        if self.kernel == "linear":
            terms = torch.empty((d, 2, b, n_levels), dtype=torch.int32, device=x.device)
            torch.mul(base, mult, out=terms[:, 0])
            torch.add(terms[:, 0], mult, out=terms[:, 1])  # (v + 1) * m = v * m + m
            if pos.requires_grad:  # coordinates that require grad: differentiable weights
                frac = pos - base
                weight = torch.stack([1.0 - frac, frac], 1)
            else:  # written in place: no stack copy
                weight = pos.new_empty((d, 2, b, n_levels))
                torch.sub(pos, base, out=weight[:, 1])
                torch.sub(1.0, weight[:, 1], out=weight[:, 0])
        else:
            frac = pos - base
            offs = self.gauss_offs
            vertex = torch.minimum((base.unsqueeze(1) + offs).clamp_min_(0), self.res_int)
            terms = vertex * mult.unsqueeze(1)
            weight = ((frac.unsqueeze(1) - offs) / self.rbf_width).square_().neg_().exp_()
        terms.bitwise_and_(self.masks)
        terms[0].add_(self.offsets)
        return terms, weight

    def lookup_indices(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Flat table rows and weights of every corner, (row, level):
        `(batch, d_in) -> ((C, batch * L) int32, (C, batch * L))`, C = K^d.

        The dense levels come first (the coarse ones), so the axes' shares are combined by
        broadcasting straight into the two slices of one int32 output: summed on the dense
        levels, xor-ed on the hashed ones.
        """
        terms, weight = self.taps(x)  # (d, K, B, L)
        d, k, b, n_levels = terms.shape
        nd = self.n_dense
        w = weight[0]
        for axis in range(1, d):  # over coordinates (d <= 5), never over levels
            w = (w.unsqueeze(1) * weight[axis].view((1,) * axis + (k, b, n_levels))).flatten(0, 1)
        if d == 1:
            return terms[0].reshape(k, b * n_levels), w.reshape(k, b * n_levels)
        idx = torch.empty((k,) * d + (b, n_levels), dtype=torch.int32, device=x.device)
        for part, combine in ((slice(0, nd), torch.add), (slice(nd, n_levels), torch.bitwise_xor)):
            if part.start == part.stop:
                continue
            shaped = [terms[a][..., part].view((1,) * a + (k,) + (1,) * (d - 1 - a)
                                              + (b, part.stop - part.start)) for a in range(d)]
            acc = shaped[0]
            for a in range(1, d - 1):
                acc = combine(acc, shaped[a])
            combine(acc, shaped[-1], out=idx[..., part])
        return idx.view(k ** d, b * n_levels), w.reshape(k ** d, b * n_levels)

    def forward(self, x: Tensor, x_cat: Tensor | None = None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"expected coordinates (batch, {self.d_in}), got {tuple(x.shape)}")
        if self.implementation == "native" and self.native_serves(x):
            out = NativeGridLookup.apply(self.table, x.float().contiguous(), *self.level_buffers())
            return out.view(x.shape[0], self.d_out)
        idx, w = self.lookup_indices(x)
        return GridLookup.apply(self.table, idx, w).view(x.shape[0], self.d_out)

    def level_buffers(self) -> tuple[Tensor, ...]:
        """What a fused lookup needs besides the table and the coordinates, per level `(L,)`
        (`mult`: `(d_in, L)`): resolution, top cell, axis multipliers, masks, offsets."""
        return self.res, self.top, self.mult, self.masks, self.offsets

    def native_serves(self, x: Tensor) -> bool:
        """Whether the native lookup covers this call: CPU, fp32 table, coordinates that need
        no gradient (it returns the table's only), no tracing (`torch.compile`, `torch.export`
        and the JIT see the torch path, which they can read) and no dispatch mode (the FLOP
        counters of `mlplab.count` see the torch path's ops: the same count either way)."""
        return (x.device.type == "cpu" and self.table.dtype == torch.float32
                and not (x.requires_grad and torch.is_grad_enabled())
                and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
                and _get_current_dispatch_mode() is None)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        table = state_dict.get(prefix + "table")
        if table is not None and table.shape != self.table.shape \
                and table.shape == self.table.shape[::-1]:
            state_dict[prefix + "table"] = table.t().contiguous()  # the old (features, rows)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, levels={self.levels}, features={self.features}, "
                f"table={self.table_size}, resolutions={self.resolutions[0]}..."
                f"{self.resolutions[-1]}, kernel={self.kernel!r}, "
                f"dense_levels={self.n_dense}"
                + (f", implementation={self.implementation!r}"
                   if self.implementation != "torch" else ""))


@register_adapter("hashgrid")
class HashGridEncoding(GridEncoding):
    """Multiresolution hash grid (instant-NGP): `(batch, d_in) -> (batch, levels * features)`.

    Defaults: 16 levels x 2 features, `2^12` entries per level, resolutions 16..512.
    """


@register_adapter("densegrid")
class DenseGridEncoding(GridEncoding):
    """Dense grid(s) of features, multilinear lookup, no hashing:
    `(batch, d_in) -> (batch, levels * features)`. Defaults: one level of resolution 64
    (65^d vertices) with 4 features."""

    def __init__(self, d_in: int, *, levels: int = 1, features: int = 4,
                 base_resolution: float = 64, finest_resolution: float = 64,
                 **options: Any) -> None:
        super().__init__(d_in, levels=levels, features=features, hashed=False,
                         base_resolution=base_resolution, finest_resolution=finest_resolution,
                         **{"log2_table": 30, **options})


@register_adapter("rbfgrid")
class RBFGridEncoding(GridEncoding):
    """Gaussian RBF grid: learned features at dense grid vertices, each coordinate reads a
    4-per-axis window weighted `exp(-(offset / rbf_width)^2)` (offset in cells):
    `(batch, d_in) -> (batch, levels * features)`. Defaults: one level of resolution 64,
    4 features, width 1 cell."""

    def __init__(self, d_in: int, *, levels: int = 1, features: int = 4,
                 base_resolution: float = 64, finest_resolution: float = 64,
                 **options: Any) -> None:
        super().__init__(d_in, levels=levels, features=features, hashed=False,
                         kernel="gaussian", base_resolution=base_resolution,
                         finest_resolution=finest_resolution, **{"log2_table": 30, **options})
