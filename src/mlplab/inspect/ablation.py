"""Block ablation: the task's loss and metric with one block changed, ranked by the damage.

Modes (each a forward hook that replaces the block's output, removed afterwards):
- `skip`: the block is left out, its input passes through (the residual stream alone). For a
  `plain` layer that changes the width (the first one) this is not defined: NaN (and so is
  `loop`).
- `zero`: the block's output is replaced by zeros.
- `mean`: the block's output is replaced by its mean over the evaluated rows (mean ablation).
- `loop`: the block is applied twice, `f(f(x))` ("skip a layer or loop it").

`importance` of a block is its loss increase under `skip` (`zero` where skipping is not
defined); the table is sorted by it, most important first.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from mlplab.inspect.capture import BlockSite, Recorder, batches, blocks_of, run_model

MODES = ("skip", "zero", "mean", "loop")


def _replacement(site: BlockSite, mode: str, mean: Tensor | None):
    block = site.block

    def hook(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> Tensor | None:
        x = args[0]
        if mode == "skip":
            return x
        if mode == "zero":
            return torch.zeros_like(out)
        if mode == "mean":
            return mean.to(out.dtype).expand_as(out)
        return block.forward(out)  # loop: forward() bypasses this hook

    return hook


def _evaluate(model: nn.Module, task: Any, split: Any, batch_size: int) -> dict[str, float]:
    out = torch.cat(run_model(model, batches(split, batch_size=batch_size)))
    return task.metrics(out, split.y)


def ablation(model: nn.Module, task: Any, split: Any, *, modes: tuple[str, ...] = MODES,
             batch_size: int = 1024) -> pd.DataFrame:
    """One row per (block, mode): `loss`, the task's default monitor `metric` and their change
    from the intact model (`delta_loss`, `delta_metric`), plus an `intact` row (block 0).
    `split` is a `Split` (evaluated whole); `task` a `mlplab.tasks.Task`."""
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"ablation mode {mode!r}; choose from {', '.join(MODES)}")
    sites = blocks_of(model)
    metric = task.monitor
    base = _evaluate(model, task, split, batch_size)
    means: dict[int, Tensor] = {}
    if "mean" in modes:
        with Recorder(sites, ("outputs",)) as rec:
            run_model(model, batches(split, batch_size=batch_size))
        means = {s.number: rec.get("outputs", s.number).mean(0, keepdim=True) for s in sites}
    skippable = _same_shapes(model, sites, split)
    rows = [{"block": 0, "kind": "intact", "mode": "none", "loss": base["loss"],
             "metric": base[metric], "delta_loss": 0.0, "delta_metric": 0.0}]
    for site in sites:
        for mode in modes:
            if mode in ("skip", "loop") and site.number not in skippable:
                values = {"loss": math.nan, metric: math.nan}
            else:
                handle = site.block.register_forward_hook(
                    _replacement(site, mode, means.get(site.number)))
                try:
                    values = _evaluate(model, task, split, batch_size)
                finally:
                    handle.remove()
            rows.append({"block": site.number, "kind": site.kind, "mode": mode,
                         "loss": values["loss"], "metric": values[metric],
                         "delta_loss": values["loss"] - base["loss"],
                         "delta_metric": values[metric] - base[metric]})
    frame = pd.DataFrame(rows)
    frame.attrs["metric"] = metric
    return frame


def _same_shapes(model: nn.Module, sites: list[BlockSite], split: Any) -> set[int]:
    """The blocks whose output has their input's shape (on two rows)."""
    with Recorder(sites, ("inputs", "outputs")) as rec:
        run_model(model, batches(split, rows=2))
    return {s.number for s in sites
            if rec.get("inputs", s.number).shape == rec.get("outputs", s.number).shape}


def importance(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per block, ranked: loss increase when skipped (zeroed where skipping is not
    defined), and the loss change of every mode as columns."""
    table = frame[frame["block"] > 0].pivot_table(index=["block", "kind"], columns="mode",
                                                  values="delta_loss", dropna=False)
    table = table.reset_index()
    key = table["skip"] if "skip" in table else pd.Series(math.nan, index=table.index)
    if "zero" in table:
        key = key.fillna(table["zero"])
    table["importance"] = key
    table = table.sort_values("importance", ascending=False, na_position="last")
    table.insert(0, "rank", range(1, len(table) + 1))
    table.columns.name = None
    return table.reset_index(drop=True)
