"""The MoE unit: a mixture of affine experts behind a learned router."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mlplab.nn import options as opt
from mlplab.nn.registry import register_unit

ROUTERS = ("topk", "gumbel")


@register_unit("moe")
class MoEUnit(nn.Module):
    """`y = sum_e g_e(x) (W_e x + b_e)` over `experts` affine maps: `(..., d_in) -> (..., d_out)`.

    Every row (every leading index) is routed on its own by `softmax(R x)`:
    - `router = "topk"`: the row goes to its `top_k` most probable experts (sparse: each expert
      computes only its rows, gathered with `index_select` and summed back with `index_add`);
      gates are the probabilities, renormalised over the chosen experts when `top_k > 1`
      (under `torch.export`, e.g. ONNX export, the same sum is computed densely).
    - `router = "gumbel"`: a dense gate, `gumbel_softmax(R x, temperature)` in training and its
      deterministic counterpart `softmax(R x / temperature)` at eval (GG-MoE); every expert
      computes every row.
    `balance` weights the Switch Transformer load-balancing loss `E sum_e f_e P_e` (`f_e`:
    share of routed rows, `P_e`: mean router probability), added in training.
    """

    nonlinear = False

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, experts: int = 4,
                 top_k: int = 1, router: str = "topk", balance: float = 0.01,
                 temperature: float = 1.0) -> None:
        super().__init__()
        self.check_options(dict(bias=bias, experts=experts, top_k=top_k, router=router,
                                balance=balance, temperature=temperature))
        self.d_in, self.d_out, self.experts, self.top_k = d_in, d_out, experts, top_k
        self.router, self.balance, self.temperature = router, float(balance), float(temperature)
        bound = 1.0 / math.sqrt(d_in)
        self.router_weight = nn.Parameter(torch.empty(experts, d_in).uniform_(-bound, bound))
        self.weight = nn.Parameter(torch.empty(experts, d_out, d_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(experts, d_out).uniform_(-bound, bound)) \
            if bias else None
        self._aux: Tensor | None = None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        experts = opt.check_int(options, "experts", low=1)
        opt.check_int(options, "top_k", low=1, high=experts)
        opt.check_choice(options, "router", ROUTERS)
        opt.check_float(options, "balance", low=0.0)
        opt.check_float(options, "temperature", low=0.0, open_low=True)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.d_in)
        logits = F.linear(x, self.router_weight)
        probs = logits.softmax(-1)
        if self.router == "topk":
            out, chosen = self._sparse(x, probs)
        else:
            out, chosen = self._dense(x, logits)
        self._aux = None
        if self.training and self.balance > 0:
            share = torch.bincount(chosen, minlength=self.experts).to(probs.dtype)
            share = share / chosen.numel()
            self._aux = self.balance * self.experts * (share * probs.mean(0)).sum()
        return out.reshape(*lead, self.d_out)

    def _sparse(self, x: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
        gate, idx = probs.topk(self.top_k, dim=-1)  # (n, k)
        if self.top_k > 1:
            gate = gate / gate.sum(-1, keepdim=True)
        chosen = idx.reshape(-1)
        if torch.compiler.is_exporting():  # no data-dependent sizes: the same sum, densely
            return self._combine(x, torch.zeros_like(probs).scatter(1, idx, gate)), chosen
        order = chosen.argsort(stable=True)
        rows = order // self.top_k
        sizes = torch.bincount(chosen, minlength=self.experts).tolist()
        parts = [
            F.linear(part, self.weight[e], self.bias[e] if self.bias is not None else None)
            for e, part in enumerate(x.index_select(0, rows).split(sizes)) if sizes[e]
        ]
        y = torch.cat(parts) * gate.reshape(-1)[order].unsqueeze(-1)
        out = y.new_zeros(x.shape[0], self.d_out).index_add(0, rows, y)
        return out, chosen

    def _dense(self, x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            gate = F.gumbel_softmax(logits, tau=self.temperature)
        else:
            gate = (logits / self.temperature).softmax(-1)
        return self._combine(x, gate), gate.argmax(-1)

    def _combine(self, x: Tensor, gate: Tensor) -> Tensor:
        """`sum_e gate[:, e] (W_e x + b_e)` with every expert computing every row."""
        bias = self.bias.reshape(-1) if self.bias is not None else None
        h = F.linear(x, self.weight.reshape(-1, self.d_in), bias)
        out = torch.bmm(gate.unsqueeze(1).to(h.dtype), h.view(-1, self.experts, self.d_out))
        return out.squeeze(1)

    def aux_loss(self) -> Tensor | None:
        """The balance loss of the last training forward pass, handed out once."""
        aux, self._aux = self._aux, None
        return aux

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, experts={self.experts}, "
                f"top_k={self.top_k}, router={self.router!r}")
