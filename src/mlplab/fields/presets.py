"""Field run specs per encoding: what `mlplab fit-image`, the examples, the benchmark and the
reproductions train. Each preset is sized for a 256 x 256 image at <= 2 parameters per pixel
and trains with Adam (no weight decay, no clipping, constant rate: on hash grids the cosine
schedule's early decay cost ~5 dB at a fixed budget) on random batches of 8,192 pixels.
"""

from __future__ import annotations

import copy
from typing import Any

from mlplab.errors import SpecError

MLP = {"block": "plain", "norm": "none", "activation": "relu"}
SIREN_MLP = {"block": "plain", "norm": "none", "unit": "siren"}

PRESETS: dict[str, dict[str, Any]] = {
    "hashgrid": {"model": {**MLP, "adapter": "hashgrid", "width": 64, "depth": 2,
                           "adapter_options": {"levels": 16, "features": 2, "log2_table": 12,
                                               "base_resolution": 16,
                                               "finest_resolution": 512}},
                 "train": {"lr": 1e-2}},
    "densegrid": {"model": {**MLP, "adapter": "densegrid", "width": 64, "depth": 2,
                            "adapter_options": {"features": 6, "base_resolution": 128,
                                                "finest_resolution": 128}},
                  "train": {"lr": 1e-2}},
    "rbfgrid": {"model": {**MLP, "adapter": "rbfgrid", "width": 64, "depth": 2,
                          "adapter_options": {"features": 6, "base_resolution": 128,
                                              "finest_resolution": 128}},
                "train": {"lr": 1e-2}},
    "fourier": {"model": {**MLP, "adapter": "fourier", "width": 192, "depth": 3,
                          "adapter_options": {"n_frequencies": 128, "sigma": 8.0}},
                "train": {"lr": 2e-3}},
    "posenc": {"model": {**MLP, "adapter": "posenc", "width": 256, "depth": 2,
                         "adapter_options": {"n_frequencies": 32, "sigma": 64.0}},
               "train": {"lr": 2e-3}},
    "siren": {"model": {**SIREN_MLP, "adapter": "siren", "width": 240, "depth": 2,
                        "adapter_options": {"omega_0": 30.0}},
              "train": {"lr": 1e-3}},
    "none": {"model": {**MLP, "adapter": "coords", "width": 192, "depth": 3},
             "train": {"lr": 2e-3}},
}
ENCODINGS = tuple(PRESETS)
# compressive fits: <= 0.5 parameters per pixel of a 256 x 256 image
COMPACT: dict[str, dict[str, Any]] = {
    "hashgrid": {"adapter_options": {"levels": 12, "log2_table": 10}},
    "densegrid": {"adapter_options": {"base_resolution": 64, "finest_resolution": 64}},
    "rbfgrid": {"adapter_options": {"base_resolution": 64, "finest_resolution": 64}},
    "fourier": {"width": 96, "depth": 2, "adapter_options": {"n_frequencies": 64}},
    "posenc": {"width": 128, "adapter_options": {"n_frequencies": 16}},
    "siren": {"width": 112},
    "none": {"width": 96},
}
TRAIN = {"batch_size": 8192, "epochs": 40, "weight_decay": 0.0, "grad_clip": None,
         "schedule": "constant", "warmup_epochs": 0.0, "patience": None}
SCALE_OPTION = {"fourier": "sigma", "posenc": "sigma", "siren": "omega_0",
                "hashgrid": "finest_resolution"}

NATIVE_ENCODINGS = ("hashgrid", "densegrid")


def field_run_spec(source: str, encoding: str = "hashgrid", *, size: int | None = 256,
                   split: str = "all", scale: str | float | None = None,
                   epochs: int | None = None, seed: int = 0, threads: int | None = None,
                   name: str | None = None, precision: str = "fp32",
                   compact: bool = False, native: bool = False) -> dict[str, Any]:
    """The run spec (a dict) of one field fit with encoding `encoding`'s preset (`compact`:
    its <= 0.5 parameters-per-pixel variant); `scale` overrides the encoding's scale option
    (`"fresh"`: FreSh chooses it); `native`: the linear grids' fused C++ lookup
    (`implementation = "native"`)."""
    if encoding not in PRESETS:
        raise SpecError(f"--encoding: unknown encoding {encoding!r}; choose one of "
                        + ", ".join(ENCODINGS))
    preset = copy.deepcopy(PRESETS[encoding])
    model = preset["model"]
    if compact:
        small = COMPACT[encoding]
        model.update({k: v for k, v in small.items() if k != "adapter_options"})
        model["adapter_options"] = {**model.get("adapter_options", {}),
                                    **small.get("adapter_options", {})}
    if scale is not None:
        option = SCALE_OPTION.get(encoding)
        if option is None:
            raise SpecError(f"--scale: encoding {encoding!r} has no scale option (those with "
                            f"one: {', '.join(SCALE_OPTION)})")
        model.setdefault("adapter_options", {})[option] = scale
    if native:
        if encoding not in NATIVE_ENCODINGS:
            raise SpecError(f"--native: applies to the linear grid encodings "
                            f"({', '.join(NATIVE_ENCODINGS)}), not {encoding!r}")
        model.setdefault("adapter_options", {})["implementation"] = "native"
    train = {**TRAIN, **preset["train"], "precision": precision}
    if epochs is not None:
        train["epochs"] = epochs
    if threads is not None:
        train["threads"] = threads
    options: dict[str, Any] = {"split": split}
    if size is not None:
        options["size"] = size
    return {"name": name or f"field-{encoding}", "seed": seed, "data": {"source": source},
            "task": {"kind": "field", "options": options}, "model": model, "train": train}
