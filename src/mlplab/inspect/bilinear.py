"""Bilinear blocks as third-order tensors, eigendecomposed per output direction.

A `bilinear` block computes `x + W2((W n + b) * (V n + c)) + b2` with `n = norm(x)`. With the
input augmented by a constant, `ñ = [n, 1]` of size `d + 1`, output `o` of the branch is the
quadratic form `ñᵀ T[o] ñ + b2[o]`, where `T[o] = Σ_k W2[o, k] w̃_k ṽ_kᵀ` (`w̃_k = [W_k, b_k]`,
`ṽ_k = [V_k, c_k]`), symmetrised (`(T + Tᵀ) / 2`, which leaves the form unchanged). For an
output direction `u` (a head row: the class's readout of the residual stream), the
interaction matrix `Q_u = Σ_o u_o T[o]` is symmetric; `torch.linalg.eigh` gives
`Q_u = Σ_i λ_i v_i v_iᵀ`, so `uᵀ branch(x) = Σ_i λ_i (v_i · ñ)² + uᵀ b2`: the class's
evidence is a sum of squared projections on a few directions when few `λ_i` dominate.
`top_share` is the share of `Σ λ_i²` in the `top` largest `|λ_i|`.

Eigenvectors live in the block's normed input space; `input_patterns` maps them to the
model's input through the lift (`lift.weightᵀ (γ ⊙ v)`, with the norm's scale `γ`): exact
up to the norm's centring for block 1, an approximation that ignores earlier blocks after it.
Bilinear blocks built from `linear` units only (no TabM ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlplab.errors import SpecError
from mlplab.inspect.capture import BlockSite, blocks_of


def _linear_weights(module: nn.Module, what: str) -> tuple[Tensor, Tensor]:
    if not isinstance(module, nn.Linear):
        raise SpecError(f"bilinear decomposition: the block's {what} must be a linear unit "
                        f"(model.unit = 'linear', no ensemble), not {type(module).__name__}")
    w = module.weight.detach().double()
    b = module.bias.detach().double() if module.bias is not None else torch.zeros(w.shape[0])
    return w, b.double()


def interaction_tensor(block: nn.Module) -> tuple[Tensor, Tensor]:
    """`(T (d_out, d+1, d+1) symmetric in its last two axes, b2 (d_out,))` in float64."""
    w_in, b_in = _linear_weights(block.fc_in, "input projection")
    w2, b2 = _linear_weights(block.fc2, "output projection")
    aug = torch.cat([w_in, b_in[:, None]], dim=1)  # (2h, d+1)
    gate, value = aug.chunk(2, dim=0)
    t = torch.einsum("ok,ki,kj->oij", w2, gate, value)
    return (t + t.transpose(1, 2)) / 2, b2


def branch_from_tensor(t: Tensor, b2: Tensor, n: Tensor) -> Tensor:
    """The block's branch output `(batch, d_out)` from its normed input `n (batch, d)`."""
    aug = torch.cat([n.double(), torch.ones(len(n), 1, dtype=torch.float64)], dim=1)
    return torch.einsum("oij,bi,bj->bo", t, aug, aug) + b2


@dataclass
class Decomposition:
    """Eigendecomposition of `Q_u` for each of `labels` (one output direction each)."""

    block: int
    labels: list[str]
    eigenvalues: Tensor  # (m, d+1), ascending as eigh returns them
    eigenvectors: Tensor  # (m, d+1, d+1), columns are eigenvectors

    def top(self, i: int, n: int, sign: int) -> tuple[Tensor, Tensor]:
        """The `n` most positive (`sign=1`) or most negative (`-1`) eigenpairs of direction
        `i`: `(values (n,), vectors (n, d+1))`."""
        vals = self.eigenvalues[i]
        order = vals.argsort(descending=sign > 0)[:n]
        return vals[order], self.eigenvectors[i][:, order].T

    def top_share(self, n: int) -> Tensor:
        """Per direction, the share of `Σ λ²` held by the `n` largest `|λ|`: `(m,)`."""
        sq = self.eigenvalues ** 2
        return sq.sort(dim=1, descending=True).values[:, :n].sum(1) / sq.sum(1).clamp_min(1e-300)


def decompose(block: nn.Module, directions: Tensor, labels: list[str], number: int = 0
              ) -> Decomposition:
    """Decompose a bilinear block along `directions (m, d_out)` (e.g. the head's rows)."""
    t, _ = interaction_tensor(block)
    q = torch.einsum("mo,oij->mij", directions.detach().double(), t)
    vals, vecs = torch.linalg.eigh(q)
    return Decomposition(number, labels, vals, vecs)


def bilinear_sites(model: nn.Module) -> list[BlockSite]:
    return [s for s in blocks_of(model) if s.kind == "bilinear"]


def head_directions(model: nn.Module, labels: list[str] | None = None
                    ) -> tuple[Tensor, list[str]]:
    """The head's rows `(d_out, width)` as output directions, with their labels."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise SpecError("bilinear decomposition needs a linear head (no ensemble)")
    w = head.weight.detach()
    names = labels if labels is not None and len(labels) == len(w) else \
        [f"output {i}" for i in range(len(w))]
    return w, names


def decompose_model(model: nn.Module, labels: list[str] | None = None) -> list[Decomposition]:
    """Every bilinear block of `model`, along the head's rows; `SpecError` if there is none."""
    sites = bilinear_sites(model)
    if not sites:
        raise SpecError("--bilinear needs a model with model.block = 'bilinear'")
    directions, names = head_directions(model, labels)
    return [decompose(s.block, directions, names, s.number) for s in sites]


def input_patterns(model: nn.Module, site: BlockSite, vectors: Tensor) -> Tensor:
    """Eigenvectors `(m, d+1)` of a block mapped to the model's input, `(m, d_in)`."""
    lift = getattr(getattr(model, "backbone", None), "lift", None)
    weight = getattr(lift, "weight", None)
    if weight is None or weight.ndim != 2:
        raise SpecError("bilinear decomposition: input patterns need a linear lift")
    gamma = getattr(site.block.norm, "weight", None)
    v = vectors[:, :-1].double()
    if isinstance(gamma, Tensor):
        v = v * gamma.detach().double()
    return v @ weight.detach().double()
