"""From an estimator's keyword arguments to the specs the one trainer runs: `ModelSpec`,
`TrainSpec`, and the torch thread count (with the device check)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from pydantic import ValidationError

from mlplab.errors import SpecError
from mlplab.nn import registry
from mlplab.nn.adapters import CAT_ENCODINGS as ADAPTER_CAT_ENCODINGS
from mlplab.nn.blocks import is_nonlinear
from mlplab.spec import ModelSpec, TrainSpec, _format_error
from mlplab.train.device import resolve_device
from mlplab.train.hooks import check_grid_schedule
from mlplab.train.threads import default_threads

# arch -> (block, ensemble); ReLU unless `activation` is given (none after a nonlinear unit); plain blocks have no norm (TabM
# paper); `block` replaces the arch's block.
ARCHS: dict[str, tuple[str, str]] = {
    "mlp": ("plain", "none"),
    "resnet": ("standard", "none"),
    "hourglass": ("hourglass", "none"),
    "tabm": ("plain", "tabm"),
    "tabm-mini": ("plain", "tabm-mini"),
}
NUM_EMBEDDINGS = (None, "none", "plr", "plr-lite", "ple")
CAT_ENCODINGS = (None, *ADAPTER_CAT_ENCODINGS)  # None: one-hot for the TabM archs (TabM paper)


def model_spec(est: Any) -> ModelSpec:
    """The `ModelSpec` an estimator's keyword arguments describe (arch presets + overrides)."""
    if est.arch not in ARCHS:
        raise SpecError(f"arch: unknown {est.arch!r}; choose one of "
                        + ", ".join(repr(a) for a in ARCHS))
    if est.num_embeddings not in NUM_EMBEDDINGS:
        raise SpecError(f"num_embeddings: unknown {est.num_embeddings!r}; choose None, "
                        "'plr', 'plr-lite' or 'ple'")
    if est.cat_encoding not in CAT_ENCODINGS:
        raise SpecError(f"cat_encoding: unknown {est.cat_encoding!r}; choose None (the "
                        "arch's default), 'embedding' or 'onehot'")
    for field, names, value in (("block", registry.BLOCKS, est.block),
                                ("activation", registry.ACTIVATIONS, est.activation),
                                ("unit", registry.UNITS, est.unit)):
        if value is not None and value not in names:
            raise SpecError(f"{field}: {names.unknown(value)}")
    arch_block, ensemble = ARCHS[est.arch]
    block = est.block or arch_block
    cat_encoding = est.cat_encoding or ("onehot" if ensemble != "none" else "embedding")
    embed = est.num_embeddings or "none"
    if ensemble == "none" and est.k is not None and est.k > 1:
        ensemble = "tabm"  # a BatchEnsemble of the chosen block family
    if ensemble == "tabm" and est.unit not in (None, "linear"):
        raise SpecError(f"unit: {est.unit!r} does not go with a BatchEnsemble (arch 'tabm' "
                        "or k > 1), which builds its own units; leave unit=None")
    n_blocks = est.n_blocks if est.n_blocks is not None else (2 if embed != "none" else 3)
    unit = est.unit or "linear"
    activation = est.activation or (None if is_nonlinear(unit) else "relu")  # the block rule
    try:
        return ModelSpec(block=block, width=est.d_block, depth=n_blocks,
                         activation=activation,
                         norm="none" if block == "plain" else "layernorm",
                         unit=unit, unit_options=est.unit_options or {},
                         dropout=est.dropout, ensemble=ensemble,
                         k=None if ensemble == "none" else est.k, num_embeddings=embed,
                         cat_encoding=cat_encoding)
    except ValidationError as err:
        raise SpecError(f"{type(est).__name__}: {_format_error(err, ModelSpec)}") from None


def train_spec(est: Any) -> TrainSpec:
    """The `TrainSpec` of an estimator: constant lr, no warmup or clipping (TabM paper).

    With `optimizer="lbfgs"`, `lr` and `weight_decay` left at the estimator's defaults (AdamW's)
    take L-BFGS's (`lr` 1, the line search's first trial step; no weight decay)."""
    resolve_device(est.device, field="device")  # unknown or absent: a SpecError naming it
    settings: dict[str, Any] = dict(
        optimizer=est.optimizer, lr=est.lr, weight_decay=est.weight_decay,
        batch_size=est.batch_size, epochs=est.max_epochs, warmup_epochs=0.0,
        schedule="constant", grad_clip=None, patience=est.patience, monitor=est.monitor,
        precision=est.precision, device=est.device,
        grid_update_epochs=est.grid_update_epochs or [],
        grid_extend=est.grid_extend or {})
    if est.optimizer == "lbfgs":
        defaults = inspect.signature(type(est)).parameters
        for name in ("lr", "weight_decay"):
            if settings[name] == defaults[name].default:
                del settings[name]
    try:
        return TrainSpec(**settings)
    except ValidationError as err:
        message = _format_error(err, TrainSpec).replace("train.epochs", "max_epochs")
        raise SpecError(f"{type(est).__name__}: {message}") from None


def check_schedule(est: Any, model: ModelSpec, train: TrainSpec) -> None:
    """`grid_update_epochs` / `grid_extend` need a unit with a grid (`check_grid_schedule`):
    a SpecError naming the estimator's parameter otherwise."""
    try:
        check_grid_schedule(model, train)
    except ValueError as err:
        message = str(err).replace("train.", "").replace("model.unit_options", "unit_options")
        raise SpecError(f"{type(est).__name__}: {message.replace('model.unit', 'unit')}") from None


def torch_threads(est: Any) -> int:
    """The torch threads for fit/predict: `threads`, or the free cores (`default_threads`)."""
    resolve_device(est.device, field="device")  # unknown or absent: a SpecError naming it
    if est.threads is None:
        return default_threads()
    if isinstance(est.threads, bool) or not isinstance(est.threads, (int, np.integer)) \
            or est.threads < 1:
        raise SpecError(f"threads: expected None or a positive integer, got {est.threads!r}")
    return int(est.threads)
