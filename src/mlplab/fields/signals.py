"""Signals for neural fields: images and 1-D signals on a regular grid, `values (*shape, C)`.

Sources (`load_signal`):
- `skimage:<name>`: a scikit-image sample image (`camera`, `astronaut`, `coffee`, ...; shipped
  in the wheel, nothing is downloaded);
- a PNG/JPEG/BMP/TIFF path (read with Pillow);
- `signal:chirp`, `signal:sines?freqs=3,17,40`, `signal:sine?freq=8` (synthetic 1-D, `n`
  samples, default 4096), or a `.wav` path (scipy; channels averaged to mono).

Channels: grayscale stays one channel; RGB three; an alpha channel is composited onto white
(`alpha = "white"`, the default) or onto black, or refused (`alpha = "error"`); palette and
16-bit images are converted by Pillow. `channels = "gray"` turns colour into luminance
(ITU-R 601), `"rgb"` replicates gray. Image values lie in [0, 1] (`value_range` 1), audio in
[-1, 1] (`value_range` 2): PSNR is measured against that range. `size` resizes an image so its
longer side has `size` pixels (anti-aliased, scikit-image), or resamples a 1-D signal to
`size` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from mlplab.errors import DataError
from mlplab.messages import did_you_mean, short_repr

SKIMAGE_IMAGES = ("astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee",
                  "coins", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
                  "rocket", "text")
SYNTHETIC = ("chirp", "sines", "sine")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
ALPHA = ("white", "black", "error")
CHANNELS = ("auto", "gray", "rgb")


@dataclass
class Signal:
    """A signal sampled on a grid: `values (*shape, channels)` float32, `shape` the grid
    (`(H, W)` for images, `(T,)` for 1-D signals), `value_range` the nominal peak-to-peak range
    PSNR is measured against."""

    name: str
    values: np.ndarray
    value_range: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-1])

    @property
    def channels(self) -> int:
        return int(self.values.shape[-1])

    @property
    def d_coord(self) -> int:
        return len(self.shape)

    @property
    def n(self) -> int:
        return math.prod(self.shape)

    def coords(self) -> np.ndarray:
        """Grid coordinates in [-1, 1] (`linspace(-1, 1, size)` per axis, the last axis first:
        x then y for images): `(n, d_coord)` float32, rows in C order of the grid."""
        axes = [np.linspace(-1.0, 1.0, s, dtype=np.float32) for s in self.shape]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.reshape(-1) for m in reversed(mesh)], axis=1)

    def flat(self) -> np.ndarray:
        """`values` as rows: `(n, channels)`."""
        return self.values.reshape(self.n, self.channels)


def _options(query: str, source: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise DataError(f"data.source: cannot read the options {query!r} of "
                        f"{short_repr(source)} (expected key=value&key=value)") from None


def _float_list(text: str, key: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DataError(f"data.source: option {key} expects numbers separated by commas, "
                        f"got {text!r}") from None


def synthetic_signal(name: str, options: dict[str, str], seed: int = 0) -> Signal:
    """`chirp`: a sum of three linear chirps; `sines`: a sum of sines at `freqs` (cycles over
    the [-1, 1] interval, default 2,9,31); `sine`: one sine at `freq` (default 8). Values in
    [-1, 1]; `n` samples (default 4096)."""
    allowed = {"chirp": {"n"}, "sines": {"n", "freqs"}, "sine": {"n", "freq"}}[name]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataError(f"data.source: signal:{name} has no option {unknown[0]!r}; it takes "
                        + ", ".join(sorted(allowed)))
    try:
        n = int(options.get("n", 4096))
    except ValueError:
        raise DataError(f"data.source: option n expects an integer, got {options['n']!r}") from None
    if n < 8:
        raise DataError(f"data.source: option n must be at least 8, got {n}")
    t = np.linspace(-1.0, 1.0, n)
    if name == "sine":
        freqs = _float_list(options.get("freq", "8"), "freq")
        y = np.sin(math.pi * freqs[0] * t)
    elif name == "sines":
        freqs = _float_list(options.get("freqs", "2,9,31"), "freqs")
        rng = np.random.default_rng(seed)
        phases = rng.uniform(0, 2 * math.pi, len(freqs))
        y = sum(np.sin(math.pi * f * t + p) for f, p in zip(freqs, phases, strict=True))
        y = y / max(len(freqs), 1)
    else:
        y = (np.sin(math.pi * (4 * t + 12 * t * t)) + np.sin(math.pi * (30 * t - 10 * t * t))
             + np.sin(math.pi * (60 + 40 * t) * t)) / 3
    return Signal(f"signal:{name}", y.astype(np.float32)[:, None], value_range=2.0,
                  info={"kind": "signal", "options": options})


def read_wav(path: Path) -> Signal:
    import warnings

    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"data.source: {short_repr(str(path))} is not a WAV file scipy can "
                        f"read ({err})") from None
    data = np.asarray(data)
    if data.dtype.kind == "i":
        data = data.astype(np.float64) / float(np.iinfo(data.dtype).max)
    elif data.dtype.kind == "u":  # 8-bit WAV is unsigned, centred at 128
        data = (data.astype(np.float64) - 128.0) / 128.0
    data = data.astype(np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.size < 8:
        raise DataError(f"data.source: {short_repr(str(path))} holds {data.size} samples; "
                        "a field needs at least 8")
    return Signal(str(path), np.clip(data, -1, 1).astype(np.float32)[:, None], value_range=2.0,
                  info={"kind": "audio", "sample_rate": int(rate)})


def _from_array(name: str, img: np.ndarray, *, alpha: str) -> Signal:
    """uint8/uint16/bool/float arrays `(H, W)`, `(H, W, 1..4)` -> values in [0, 1]."""
    if img.dtype == bool:
        img = img.astype(np.float32)
    elif img.dtype.kind in "ui":
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or min(img.shape[:2]) < 2:
        raise DataError(f"data.source: {short_repr(name)} has shape {img.shape}; an image "
                        "must be (H, W) or (H, W, 1-4 channels), at least 2x2")
    if img.shape[2] in (2, 4):  # an alpha channel
        if alpha == "error":
            raise DataError(f"data.source: {short_repr(name)} has an alpha channel; set "
                            "alpha = 'white' or 'black' to composite it")
        colour, a = img[:, :, :-1], img[:, :, -1:]
        background = 1.0 if alpha == "white" else 0.0
        img = colour * a + background * (1.0 - a)
    return Signal(name, np.clip(img, 0.0, 1.0), value_range=1.0, info={"kind": "image"})


def read_image(path: Path, *, alpha: str) -> Signal:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise DataError(f"data.source: image file {short_repr(str(path))} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif im.mode in ("1",):
                im = im.convert("L")
            elif im.mode.startswith("I;16") or im.mode == "I":
                arr = np.asarray(im, dtype=np.float64) / 65535.0
                return _from_array(str(path), arr.astype(np.float32), alpha=alpha)
            elif im.mode == "F":
                arr = np.asarray(im, dtype=np.float32)
                lo, hi = float(arr.min()), float(arr.max())
                return _from_array(str(path), (arr - lo) / max(hi - lo, 1e-12), alpha=alpha)
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"data.source: {short_repr(str(path))} is not an image Pillow can read "
                        f"({type(err).__name__}: {err})") from None
    return _from_array(str(path), arr, alpha=alpha)


def skimage_image(name: str, *, alpha: str) -> Signal:
    if name not in SKIMAGE_IMAGES:
        hint = did_you_mean(name, list(SKIMAGE_IMAGES))
        raise DataError(f"data.source: unknown scikit-image sample {name!r}; "
                        f"{hint + ' ' if hint else ''}choose one of {', '.join(SKIMAGE_IMAGES)}")
    from skimage import data

    return _from_array(f"skimage:{name}", getattr(data, name)(), alpha=alpha)


def convert_channels(signal: Signal, channels: str) -> Signal:
    v = signal.values
    if channels == "gray" and v.shape[-1] == 3:
        v = (v @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    elif channels == "rgb" and v.shape[-1] == 1 and signal.d_coord == 2:
        v = np.repeat(v, 3, axis=-1)
    signal.values = np.ascontiguousarray(v, dtype=np.float32)
    return signal


def resize(signal: Signal, size: int) -> Signal:
    """Images: longer side to `size` (anti-aliased); 1-D: `size` samples (linear)."""
    if signal.d_coord == 1:
        old = signal.values[:, 0]
        t_old = np.linspace(0.0, 1.0, len(old))
        signal.values = np.interp(np.linspace(0.0, 1.0, size), t_old, old).astype(
            np.float32)[:, None]
        return signal
    from skimage.transform import resize as sk_resize

    h, w = signal.shape
    scale = size / max(h, w)
    new = (max(2, round(h * scale)), max(2, round(w * scale)))
    if new != (h, w):
        signal.values = sk_resize(signal.values, (*new, signal.channels), anti_aliasing=scale < 1,
                                  preserve_range=True).astype(np.float32)
    return signal


def load_signal(source: str, *, size: int | None = None, channels: str = "auto",
                alpha: str = "white", seed: int = 0) -> Signal:
    """The signal a source names, resized and with the channels asked for (see the module)."""
    if channels not in CHANNELS:
        raise DataError(f"data.channels: expected one of {', '.join(CHANNELS)}, got {channels!r}")
    if alpha not in ALPHA:
        raise DataError(f"data.alpha: expected one of {', '.join(ALPHA)}, got {alpha!r}")
    if size is not None and (not isinstance(size, int) or size < 2):
        raise DataError(f"data.size: expected an integer >= 2, got {size!r}")
    if source.startswith("skimage:"):
        signal = skimage_image(source.removeprefix("skimage:"), alpha=alpha)
    elif source.startswith("signal:"):
        name, _, query = source.removeprefix("signal:").partition("?")
        if name not in SYNTHETIC:
            hint = did_you_mean(name, list(SYNTHETIC))
            raise DataError(f"data.source: unknown synthetic signal {name!r}; "
                            f"{hint + ' ' if hint else ''}choose one of {', '.join(SYNTHETIC)}")
        signal = synthetic_signal(name, _options(query, source), seed)
    else:
        path = Path(source).expanduser()
        if path.suffix.lower() == ".wav":
            if not path.exists():
                raise DataError(f"data.source: WAV file {short_repr(source)} does not exist")
            signal = read_wav(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES or path.exists():
            signal = read_image(path, alpha=alpha)
        else:
            raise DataError(f"data.source: {short_repr(source)} is neither skimage:<name>, "
                            "signal:<name>, an image file nor a .wav file")
    if size is not None:
        signal = resize(signal, size)
    return convert_channels(signal, channels)
