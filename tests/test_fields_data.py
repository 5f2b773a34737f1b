"""Field signals (scikit-image samples, image files, 1-D signals, WAV), PSNR against its closed
form, SSIM, FreSh's choice on one-frequency signals, the reconstruction pictures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mlplab.errors import DataError
from mlplab.fields.fresh import fresh_select, radial_spectrum, spectrum_distance
from mlplab.fields.metrics import mse_to_psnr, psnr, ssim
from mlplab.fields.model import field_model
from mlplab.fields.plots import save_error_map, save_image, save_psnr_curves
from mlplab.fields.signals import load_signal


def test_skimage_camera_resized_with_coordinates_in_range() -> None:
    s = load_signal("skimage:camera", size=64)
    assert s.shape == (64, 64) and s.channels == 1 and s.values.dtype == np.float32
    assert 0.0 <= s.values.min() and s.values.max() <= 1.0 and s.value_range == 1.0
    xy = s.coords()
    assert xy.shape == (64 * 64, 2) and xy.min() == -1.0 and xy.max() == 1.0
    # row-major grid: x (the column) varies fastest, so row r is xy[r*64:(r+1)*64]
    np.testing.assert_allclose(xy[:64, 0], np.linspace(-1, 1, 64), rtol=1e-6)
    assert (xy[:64, 1] == -1.0).all()
    coffee = load_signal("skimage:coffee", size=60)
    assert coffee.shape == (40, 60) and coffee.channels == 3  # aspect kept, longer side 60
    assert load_signal("skimage:coffee", size=32, channels="gray").channels == 1


def test_unknown_sample_and_non_image_get_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="did you mean 'camera'"):
        load_signal("skimage:camra")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="not an image Pillow can read"):
        load_signal(str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load_signal(str(tmp_path / "missing.png"))
    with pytest.raises(DataError, match="neither"):
        load_signal(str(tmp_path / "table.csv"))


def test_grayscale_rgba_and_palette_files(tmp_path: Path) -> None:
    from PIL import Image

    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    s = load_signal(str(tmp_path / "g.png"))
    assert s.channels == 1
    np.testing.assert_allclose(s.values[..., 0], gray / 255.0, rtol=1e-6)
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red, half transparent on the left half
    rgba[..., 3] = 255
    rgba[:, :4, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    white = load_signal(str(tmp_path / "a.png"))
    assert white.channels == 3
    np.testing.assert_allclose(white.values[0, 0], [1, 1, 1])  # transparent -> white
    np.testing.assert_allclose(white.values[0, 7], [1, 0, 0])
    black = load_signal(str(tmp_path / "a.png"), alpha="black")
    np.testing.assert_allclose(black.values[0, 0], [0, 0, 0])
    with pytest.raises(DataError, match="alpha channel"):
        load_signal(str(tmp_path / "a.png"), alpha="error")
    Image.fromarray(gray, mode="L").convert("P").save(tmp_path / "p.png")
    assert load_signal(str(tmp_path / "p.png")).channels == 3
    assert load_signal("skimage:logo", size=32).channels == 3  # an RGBA sample


def test_one_dimensional_signals_and_wav(tmp_path: Path) -> None:
    from scipy.io import wavfile

    s = load_signal("signal:sine?freq=5&n=200")
    assert s.shape == (200,) and s.value_range == 2.0 and s.coords().shape == (200, 1)
    t = np.linspace(-1, 1, 200)
    np.testing.assert_allclose(s.values[:, 0], np.sin(math.pi * 5 * t), atol=1e-6)
    assert load_signal("signal:chirp", size=100).shape == (100,)
    with pytest.raises(DataError, match="no option 'freq'"):
        load_signal("signal:chirp?freq=3")
    stereo = (np.stack([np.linspace(-1, 1, 500)] * 2, axis=1) * 32767).astype(np.int16)
    wavfile.write(tmp_path / "a.wav", 8000, stereo)
    w = load_signal(str(tmp_path / "a.wav"))
    assert w.shape == (500,) and w.info["sample_rate"] == 8000
    assert abs(float(w.values.max()) - 1.0) < 1e-3
    (tmp_path / "b.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match="not a WAV file"):
        load_signal(str(tmp_path / "b.wav"))


def test_psnr_matches_the_closed_form() -> None:
    target = torch.full((100, 1), 0.5, dtype=torch.float64)
    pred = target + 0.1  # MSE = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert psnr(pred, target) == pytest.approx(20.0, abs=1e-9)
    assert mse_to_psnr(1e-4) == pytest.approx(40.0)
    assert mse_to_psnr(1e-4, value_range=2.0) == pytest.approx(40.0 + 20 * math.log10(2))
    assert psnr(target, target) == math.inf
    # predictions are clipped to the signal's range before scoring
    assert psnr(torch.full((4, 1), 3.0), torch.ones(4, 1)) == math.inf


def test_ssim_of_images() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 1))
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1), img) < 0.9
    assert math.isnan(ssim(img[:, 0], img[:, 0]))


def test_radial_spectrum_finds_the_frequency() -> None:
    s = load_signal("signal:sine?freq=12&n=512")
    spec = radial_spectrum(s.flat(), s.shape)
    assert spec.sum() == pytest.approx(1.0) and int(np.argmax(spec)) + 1 == 12
    img = np.cos(2 * math.pi * 5 * np.arange(64) / 64)[None, :] * np.ones((64, 1))
    spec2 = radial_spectrum(img.reshape(-1, 1), (64, 64))
    assert int(np.argmax(spec2)) + 1 == 5
    assert spectrum_distance(spec, spec) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("encoding", "option", "candidates"), [
    ("fourier", "sigma", [1.0, 8.0, 64.0]), ("siren", "omega_0", [10.0, 100.0, 300.0])])
def test_fresh_picks_the_scale_of_a_one_frequency_signal(encoding: str, option: str,
                                                         candidates: list[float]) -> None:
    torch.manual_seed(0)

    def make(value: float) -> torch.nn.Module:
        options = {option: value, "n_features" if encoding == "siren" else "n_frequencies": 32}
        return field_model(encoding, 1, 1, width=32, depth=2, encoding_options=options)

    chosen = {}
    for freq in (2, 100):
        s = load_signal(f"signal:sine?freq={freq}&n=1024")
        result = fresh_select(make, torch.from_numpy(s.coords()), s.flat(), s.shape,
                              option=option, candidates=candidates, spectrum_size=128)
        assert result.candidates == candidates and len(result.distances) == 3
        chosen[freq] = result.chosen
    assert chosen[2] == candidates[0] and chosen[100] == candidates[-1]


def test_pictures(tmp_path: Path) -> None:
    from PIL import Image

    img = np.linspace(0, 1, 48).reshape(6, 8, 1)
    p = save_image(img, tmp_path / "r.png")
    back = np.asarray(Image.open(p))
    assert back.shape == (6, 8) and back.max() == 255 and back.min() == 0
    assert save_error_map(img * 0.9, img, tmp_path / "e.png").stat().st_size > 1000
    curve = save_psnr_curves({"hashgrid": ([0.1, 0.5, 1.0], [20.0, 30.0, 35.0])},
                             tmp_path / "c.png", marks=[30, 40])
    assert curve.stat().st_size > 1000
