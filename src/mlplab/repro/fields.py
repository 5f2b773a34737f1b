"""Neural-field reproductions: `fourier-features` (Tancik et al., 2020) and `fresh` (Kania et
al., 2024), each as ordinary sweeps of `task.kind = "field"` runs.

`fourier-features`: on natural images (scikit-image samples) trained on every second pixel
per axis and tested on the whole image, plain coordinates < positional encoding < Gaussian
Fourier features. `fresh`: per image, a grid search over the Fourier features' sigma (one
family per candidate) and one family with `sigma = "fresh"` over the same candidates; FreSh
agrees when its PSNR is within the seed spread of the grid's best value (paired by seed, in
seed-spread units, as the one verdict rule of `mlplab.repro.verdict` measures), at the cost
of one run instead of one per candidate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlplab.errors import SpecError
from mlplab.fields.presets import COMPACT, PRESETS, TRAIN
from mlplab.fields.signals import SKIMAGE_IMAGES
from mlplab.repro import register
from mlplab.repro.base import Claim, Part, Reproduction, judge
from mlplab.repro.verdict import AGREES, DISAGREES, INCONCLUSIVE, Verdict

PAPER_FF = ("natural images, train on every second pixel, test on all: no encoding 19.32 dB, "
            "basic 21.71 dB, positional encoding 24.95 dB, Gaussian 25.57 dB (Tancik et al., "
            "Table 1)")
PAPER_FRESH = ("FreSh's configuration matches an extensive grid search over the embedding's "
               "hyperparameter at the cost of one training run (Kania et al.)")


def _family(encoding: str, *, compact: bool = False, **options: Any) -> dict[str, Any]:
    model = dict(PRESETS[encoding]["model"])
    small = COMPACT[encoding] if compact else {}
    model.update({k: v for k, v in small.items() if k != "adapter_options"})
    out = {f"model.{k}": v for k, v in model.items() if k != "adapter_options"}
    out["model.adapter_options"] = {**model.get("adapter_options", {}),
                                    **small.get("adapter_options", {}), **options}
    out["train.lr"] = PRESETS[encoding]["train"]["lr"]
    return out


def _base(p: Any, image: str, split: str = "every-second") -> dict[str, Any]:
    if image not in SKIMAGE_IMAGES:
        raise SpecError(f"protocol.images: unknown scikit-image sample {image!r}; choose from "
                        + ", ".join(SKIMAGE_IMAGES))
    return {"seeds": list(p.seeds), "data": {"source": f"skimage:{image}"},
            "task": {"kind": "field", "options": {"size": p.size, "split": split}},
            "model": {"block": "plain", "norm": "none", "activation": "relu"},
            "train": {**TRAIN, "epochs": p.epochs, "threads": 1},
            "analysis": {"metric": "test.psnr", "loss": "test.mse"}}


# --- fourier-features ---------------------------------------------------------------------

@dataclass(frozen=True)
class FourierProtocol:
    """What `mlplab repro fourier-features` runs (`tag` suffixes the sweep names)."""

    images: tuple[str, ...] = ("astronaut", "coffee")
    seeds: tuple[int, ...] = (0, 1)
    size: int = 256
    epochs: int = 60
    fourier_sigma: float = 8.0
    posenc_sigma: float = 16.0
    tag: str = ""


FF_DEFAULT = FourierProtocol()
FF_FULL = FourierProtocol(images=("astronaut", "coffee", "chelsea", "rocket", "camera",
                                  "immunohistochemistry"), seeds=(0, 1, 2), epochs=250,
                          tag="full")


def build_ff(p: FourierProtocol) -> list[Part]:
    parts = []
    for image in p.images:
        name = f"fourier-features-{image}" + (f"-{p.tag}" if p.tag else "")
        families = {"none": _family("none"),
                    "posenc": _family("posenc", sigma=p.posenc_sigma),
                    "fourier": _family("fourier", sigma=p.fourier_sigma)}
        parts.append(Part(name, image, {"name": name, **_base(p, image), "family": families},
                          {"domain": "image"}))
    return parts


def claims_ff(p: FourierProtocol) -> list[Claim]:
    return [Claim("positional encoding beats no encoding", "posenc", "none", paper=PAPER_FF),
            Claim("Gaussian Fourier features beat positional encoding", "fourier", "posenc",
                  paper=PAPER_FF),
            Claim("Gaussian Fourier features beat no encoding", "fourier", "none",
                  paper=PAPER_FF, counts=False)]


register(Reproduction(
    name="fourier-features",
    paper="Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional "
          "Domains (Tancik et al., NeurIPS 2020)",
    claim="On natural images trained on every second pixel and tested on all, an MLP on "
          "plain coordinates is worst, positional encoding better, Gaussian Fourier features "
          "best.",
    figures=(PAPER_FF, "Their images: 512 x 512, trained on 256 x 256; here scikit-image "
                       "samples resized to 256 (trained on 128 x 128), sigma on [-1, 1] "
                       "coordinates (half the value on their [0, 1] ones)."),
    minutes=9.0, full_minutes=40.0, protocols={"default": FF_DEFAULT, "full": FF_FULL},
    build=build_ff, claims=claims_ff))


# --- fresh --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FreshProtocol:
    """What `mlplab repro fresh` runs: the sigma grid and FreSh over the same candidates,
    fitting each image (`split = "all"`, as the FreSh paper evaluates: the PSNR of the fit)."""

    images: tuple[str, ...] = ("camera", "astronaut")
    seeds: tuple[int, ...] = (0, 1, 2)
    size: int = 256
    epochs: int = 20
    split: str = "all"
    candidates: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    compact: bool = True  # the <= 0.5 params/pixel Fourier MLP (96 wide, 64 frequencies)
    tag: str = ""


FRESH_DEFAULT = FreshProtocol()
FRESH_FULL = FreshProtocol(images=("camera", "astronaut", "coffee", "chelsea", "rocket"),
                           seeds=(0, 1, 2), epochs=60, compact=False,
                           candidates=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), tag="full")


def _sigma_name(value: float) -> str:
    return f"sigma-{value:g}"


def build_fresh(p: FreshProtocol) -> list[Part]:
    parts = []
    for image in p.images:
        name = f"fresh-{image}" + (f"-{p.tag}" if p.tag else "")
        families = {_sigma_name(v): _family("fourier", compact=p.compact, sigma=v)
                    for v in p.candidates}
        families["fresh"] = {**_family("fourier", compact=p.compact, sigma="fresh"),
                             "task.options": {"size": p.size, "split": p.split,
                                              "fresh_candidates": list(p.candidates)}}
        parts.append(Part(name, image, {"name": name, **_base(p, image, p.split),
                                        "family": families}, {"domain": "image"}))
    return parts


def claims_fresh(p: FreshProtocol) -> list[Claim]:
    return [Claim(f"FreSh vs sigma = {v:g}", "fresh", _sigma_name(v), counts=False)
            for v in p.candidates]


GRID_BEST = "grid-best"


@dataclass(frozen=True)
class FreshReproduction(Reproduction):
    """Judged against the grid's best value of each image (known only from the data: its
    runs are relabelled `grid-best`), all images' seed pairs pooled: agrees when the 95%
    interval of FreSh's standardised paired difference reaches zero or above and its mean is
    within one seed spread (-1 or more); disagrees when the interval lies below -1 seed
    spread; inconclusive otherwise."""

    def verdict(self, runs: pd.DataFrame, protocol: Any) -> Verdict:
        base = super().verdict(runs, protocol)
        best_runs, chosen = [], []
        for label, part in runs.groupby("label", sort=False):
            grid = part[part["family"] != "fresh"]
            if grid.empty or not (part["family"] == "fresh").any():
                continue
            means = grid.groupby("family")["quality"].mean()
            best = str(means.idxmax() if bool(part["higher"].iloc[0]) else means.idxmin())
            chosen.append(f"{label}: {best}")
            best_runs.append(part[part["family"] == best].assign(family=GRID_BEST))
        if not best_runs:
            return dataclasses.replace(base, outcome=INCONCLUSIVE)
        pooled = pd.concat([runs, *best_runs], ignore_index=True)
        c = judge(pooled, Claim("FreSh within the seed spread of the grid's best sigma ("
                                + ", ".join(chosen) + ")", "fresh", GRID_BEST,
                                paper=PAPER_FRESH))
        within = c.pairs >= 3 and c.high >= 0 and c.effect >= -1
        below = c.pairs >= 3 and c.high < -1
        c = dataclasses.replace(c, outcome=AGREES if within else DISAGREES if below
                                else INCONCLUSIVE)
        return dataclasses.replace(base, outcome=c.outcome, comparisons=[c, *base.comparisons])


register(FreshReproduction(
    name="fresh",
    paper="FreSh: Frequency Shifting for Accelerated Neural Representation Learning (Kania et "
          "al., ICLR 2025)",
    claim="The Fourier-feature sigma FreSh picks from the untrained model's spectrum trains as "
          "well as the best sigma of a full grid search over the same candidates (within the "
          "seed spread), for the cost of one run.",
    figures=(PAPER_FRESH, "Paper, Fourier features on images: the grid search costs ~20x the "
                          "compute of FreSh + one training run (493 h vs 25 h for 50 images)."),
    minutes=6.5, full_minutes=60.0, protocols={"default": FRESH_DEFAULT, "full": FRESH_FULL},
    build=build_fresh, claims=claims_fresh))
