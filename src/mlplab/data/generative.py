"""Generative image tasks on the bundled 8x8 digits: restore the clean image from a corrupted one.

Multi-output regression (64 targets, one per pixel, intensities scaled to [0, 1]):

- `sklearn:digits-denoise`: input = the image plus gaussian noise (std `NOISE_STD`), clipped
  to [0, 1];
- `sklearn:digits-inpaint`: input = the image with a random 4x4 square (of 25 positions)
  set to 0.

The corruption is drawn from the spec's `seed` (same seed, same rows). By default one
corrupted copy per image (the spec's split applies); `?copies=K` (1-20) draws K corrupted
copies of every image and fixes the split per image (70/15/15 train/val/test, drawn from the
seed), so no clean image is seen in two splits. Input columns `x0..x63`, targets `p0..p63`;
scored by the mean per-pixel RMSE (`rmse`) in intensity units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlplab.data.sources import RawTable
from mlplab.errors import DataError
from mlplab.messages import did_you_mean, short_repr

NOISE_STD = 0.3
HOLE = 4
SIDE = 8
TASKS = {
    "digits-denoise": "8x8 digits: noisy image (gaussian std 0.3) -> clean 64 pixels, "
                      "1,797 images, multi-output regression",
    "digits-inpaint": "8x8 digits: image with a 4x4 hole -> clean 64 pixels, 1,797 images, "
                      "multi-output regression",
}
PIXELS = [f"p{i}" for i in range(SIDE * SIDE)]
INPUTS = [f"x{i}" for i in range(SIDE * SIDE)]


MAX_COPIES = 20


def corrupt(clean: np.ndarray, task: str, seed: int, copy: int = 0) -> np.ndarray:
    """`clean (n, 64)` in [0, 1] -> the corrupted inputs `(n, 64)`, drawn from `seed` (and
    the copy's index)."""
    rng = np.random.default_rng([seed, 0x6D6C70, copy])  # the source's own stream
    if task == "digits-denoise":
        return np.clip(clean + NOISE_STD * rng.standard_normal(clean.shape), 0.0, 1.0)
    images = clean.reshape(-1, SIDE, SIDE).copy()
    corners = rng.integers(0, SIDE - HOLE + 1, size=(len(images), 2))
    for image, (r, c) in zip(images, corners, strict=True):
        image[r:r + HOLE, c:c + HOLE] = 0.0
    return images.reshape(len(clean), -1)


def parse_name(name: str) -> tuple[str, int]:
    """`"digits-denoise?copies=4"` -> `("digits-denoise", 4)`; `DataError` for a bad option."""
    task, _, query = name.partition("?")
    copies = 1
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != "copies":
            hint = did_you_mean(key, ["copies"])
            raise DataError(f"data.source: sklearn:{task} has no option {short_repr(key)}; "
                            f"{hint + ' ' if hint else ''}it takes copies=K")
        if not value.isdigit() or not 1 <= int(value) <= MAX_COPIES:
            raise DataError(f"data.source: copies={short_repr(value)}: expected an integer "
                            f"in [1, {MAX_COPIES}]")
        copies = int(value)
    return task, copies


def load_generative(name: str, *, seed: int = 0) -> RawTable:
    """The table of `name` (a key of `TASKS`, optionally `?copies=K`): `x0..x63` inputs,
    `p0..p63` targets."""
    from sklearn.datasets import load_digits

    task, copies = parse_name(name)
    clean = load_digits().data / 16.0
    noisy = np.concatenate([corrupt(clean, task, seed, c) for c in range(copies)])
    frame = pd.concat([pd.DataFrame(noisy, columns=INPUTS),
                       pd.DataFrame(np.tile(clean, (copies, 1)), columns=PIXELS)], axis=1)
    split = None
    if copies > 1:  # every copy of an image in the same split
        rng = np.random.default_rng([seed, 0x73706C])
        per_image = rng.choice(np.array(["train", "val", "test"]), size=len(clean),
                               p=[0.7, 0.15, 0.15])
        split = np.tile(per_image, copies)
    return RawTable(frame, PIXELS, "regression", split=split)
