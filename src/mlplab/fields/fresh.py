"""FreSh: choose an embedding's scale from the spectrum of the *untrained* model's output.

For each candidate scale (Fourier `sigma`, SIREN `omega_0`, hash-grid `finest_resolution`) a
model is built and evaluated, untrained, on the signal's grid; its output's radially-summed
FFT magnitude spectrum (DC dropped, normalised to sum 1) is compared with the target's by the
Wasserstein distance over frequency bins (`scipy.stats.wasserstein_distance`); the closest
candidate wins (Kania et al., FreSh). Each candidate's spectrum is averaged over `n_inits`
initialisations (seeds `seed`, `seed + 1`, ...), so the choice does not hang on one draw.
Like the paper's code, only the lowest `spectrum_size` frequency bins are compared: the noise
floor above them would swamp the distance. The authors recommend 128 bins (64 for SIREN) on
their 512-1024 px images, i.e. half the Nyquist range of a 512 px side (a quarter for
SIREN); the default here keeps that fraction for any size: `min(shape) // 4` bins
(`// 8` for SIREN's `omega_0`), 64 on a 256 x 256 image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mlplab.nn.encodings import is_fresh

DEFAULT_CANDIDATES: dict[str, tuple[float, ...]] = {
    "sigma": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    "omega_0": (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0),
    "finest_resolution": (32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0),
}
NYQUIST_FRACTION = {"omega_0": 0.25}  # of the Nyquist range compared; default 0.5


def default_spectrum_size(option: str, shape: Sequence[int]) -> int:
    """Bins compared by default: half the Nyquist range (a quarter for SIREN), at least 8."""
    return max(8, int(min(shape) // 2 * NYQUIST_FRACTION.get(option, 0.5)))


def radial_spectrum(values: np.ndarray | torch.Tensor, shape: Sequence[int],
                    size: int | None = None) -> np.ndarray:
    """Radially summed FFT magnitude of a grid signal, DC dropped, the first `size` bins
    (all up to Nyquist when None), normalised to sum 1.

    `values (n, C)` in C order of `shape` (`(H, W)` or `(T,)`); channels are summed. Bin `r`
    holds the frequencies with `round(|k|) = r` (k in cycles over the grid), r = 1..size.
    """
    v = torch.as_tensor(values, dtype=torch.float64).reshape(*shape, -1)
    v = v - v.mean(dim=tuple(range(len(shape))), keepdim=True)
    dims = tuple(range(len(shape)))
    mag = torch.fft.fftn(v, dim=dims).abs().sum(-1).numpy()
    freqs = np.meshgrid(*[np.fft.fftfreq(s) * s for s in shape], indexing="ij")
    radius = np.rint(np.sqrt(sum(f * f for f in freqs))).astype(np.int64)
    n_bins = min(s // 2 for s in shape) + 1
    keep = radius < n_bins
    spec = np.bincount(radius[keep], weights=mag[keep], minlength=n_bins)[1:]
    if size is not None:
        spec = spec[:size]
    total = spec.sum()
    return spec / total if total > 0 else np.full_like(spec, 1.0 / len(spec))


def spectrum_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two normalised spectra over the same bins."""
    from scipy.stats import wasserstein_distance

    bins = np.arange(1, len(a) + 1, dtype=np.float64)
    return float(wasserstein_distance(bins, bins, a + 1e-12, b + 1e-12))


@dataclass
class FreshResult:
    """The chosen value of `option`, every candidate and its spectrum distance."""

    option: str
    chosen: float
    candidates: list[float]
    distances: list[float]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> FreshResult:
        """From a run's record (`schema.info["fresh"]`, which also keeps FreSh's inputs)."""
        return cls(record["option"], record["chosen"], list(record["candidates"]),
                   list(record["distances"]))

    def summary(self) -> str:
        pairs = ", ".join(f"{c:g}: {d:.3g}" for c, d in zip(self.candidates, self.distances,
                                                              strict=True))
        return (f"FreSh chose {self.option} = {self.chosen:g} (spectrum Wasserstein distance "
                f"per candidate: {pairs})")


@torch.no_grad()
def model_spectrum(model: nn.Module, coords: torch.Tensor, shape: Sequence[int],
                   size: int | None = None, batch_size: int = 65536) -> np.ndarray:
    was = model.training
    model.eval()
    outs = [model(coords[i: i + batch_size]).float() for i in range(0, len(coords), batch_size)]
    model.train(was)
    return radial_spectrum(torch.cat(outs), shape, size)


def fresh_select(make_model: Callable[[float], nn.Module], coords: torch.Tensor,
                 target: np.ndarray | torch.Tensor, shape: Sequence[int], *, option: str,
                 candidates: Sequence[float] | None = None, n_inits: int = 3,
                 seed: int = 0, spectrum_size: int | None = None) -> FreshResult:
    """Evaluate `make_model(value)` untrained for each candidate value on `coords (n, d)`;
    pick the value whose output spectrum is closest to `target`'s (`(n, C)` on `shape`).
    `make_model` is called under `torch.manual_seed(seed + i)` for i < `n_inits`."""
    values = [float(c) for c in (candidates or DEFAULT_CANDIDATES[option])]
    if not values:
        raise ValueError("FreSh needs at least one candidate value")
    size = spectrum_size or default_spectrum_size(option, shape)
    want = radial_spectrum(target, shape, size)
    state = torch.get_rng_state()
    distances = []
    try:
        for value in values:
            spectra = []
            for i in range(n_inits):
                torch.manual_seed(seed + i)
                spectra.append(model_spectrum(make_model(value), coords, shape, size))
            distances.append(spectrum_distance(np.mean(spectra, axis=0), want))
    finally:
        torch.set_rng_state(state)
    best = int(np.argmin(distances))
    return FreshResult(option, values[best], values, [round(d, 6) for d in distances])


__all__ = ["DEFAULT_CANDIDATES", "FreshResult", "fresh_select", "radial_spectrum",
           "spectrum_distance", "model_spectrum", "is_fresh"]
