"""A plain-autograd hash/dense grid from instant-NGP's description: the reference the
`GridEncoding` tests compare against (tests/test_hashgrid.py, tests/test_fields_encodings.py)."""

from __future__ import annotations

import itertools

import torch

from mlplab.nn.hashgrid import PRIMES, GridEncoding


def reference_encoding(enc: GridEncoding, x: torch.Tensor) -> torch.Tensor:
    """instant-NGP per level and per corner, plain autograd through the table and `x`."""
    u = (x.clamp(-1, 1) + 1) / 2
    outs = []
    for level, res in enumerate(enc.resolutions):
        pos = u * res
        cell = torch.minimum(pos.detach().floor(), torch.tensor(res - 1.0))
        frac = pos - cell
        acc = 0
        for corner in itertools.product([0, 1], repeat=enc.d_in):
            c = cell.long() + torch.tensor(corner)
            w = 1
            for k, bit in enumerate(corner):
                w = w * (frac[:, k] if bit else 1 - frac[:, k])
            if enc.dense_levels[level]:
                i = sum(c[:, k] * (res + 1) ** k for k in range(enc.d_in))
            else:
                h = torch.zeros_like(c[:, 0])
                for k in range(enc.d_in):
                    h = h ^ (c[:, k] * PRIMES[k])
                i = h % enc.table_size
            acc = acc + w[:, None] * enc.table[int(enc.offsets[level]) + i]
        outs.append(acc)
    return torch.cat(outs, dim=1)
