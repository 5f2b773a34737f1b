"""`mlplab inspect RUN_DIR`: the report files, clear errors for bad runs, and a real-browser
check of inspect.html and the lab's run report (headless Chromium, skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import mlplab
from mlplab.cli import run as cli


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspect") / "run"
    mlplab.train({"seed": 0, "data": {"source": "sklearn:digits", "max_rows": 400},
                  "model": {"block": "bilinear", "width": 24, "depth": 2},
                  "train": {"epochs": 3, "batch_size": 64, "threads": 1},
                  "inspect": {"track": "sparsity", "probe_rows": 64}}, out=out)
    return out


def test_inspect_writes_every_section(tracked_run, capsys):
    code = cli(["inspect", str(tracked_run), "--bilinear", "--top", "4",
                "--transcoder", "block=2", "--expansion", "2", "--k", "4"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "sparsity: block 1" in printed and "transcoder: block 2" in printed
    page = (tracked_run / "inspect.html").read_text()
    for section in ("Activation sparsity", "Ablation", "Linear probes", "Bilinear decomposition",
                    "Transcoder", "Tracked during training"):
        assert section in page
    assert page.count("data:image/png;base64,") >= 6  # self-contained
    md = (tracked_run / "inspect.md").read_text()
    assert "![sparsity](plots/sparsity.png)" in md
    for name in ("sparsity", "sparsity_epochs", "ablation", "probes", "bilinear_block1",
                 "bilinear_block2", "transcoder_examples"):
        assert (tracked_run / "plots" / f"{name}.png").stat().st_size > 1000


def test_python_api_returns_frames(tracked_run):
    report = mlplab.inspect(tracked_run, what=["sparsity", "ablation"])
    assert list(report.sparsity["block"]) == [1, 2]
    assert {"epoch", "frac_active", "dead"} <= set(report.tracked.columns)
    assert set(report.ablation["mode"]) == {"none", "skip", "zero", "mean", "loop"}
    assert report.probes is None
    with pytest.raises(mlplab.SpecError, match="unknown analysis"):
        mlplab.inspect(tracked_run, what=["sparsiti"])


def _one_error_line(capsys, argv: list[str]) -> str:
    code = cli(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_missing_or_corrupt_runs_are_one_line_errors(tracked_run, tmp_path, capsys):
    assert "does not exist" in _one_error_line(capsys, ["inspect", str(tmp_path / "nope")])
    broken = tmp_path / "broken"
    shutil.copytree(tracked_run, broken)
    (broken / "model.safetensors").write_bytes(b"\x80\x04garbage")
    assert "model.safetensors" in _one_error_line(capsys, ["inspect", str(broken)])
    shutil.copy(tracked_run / "model.safetensors", broken / "model.safetensors")
    (broken / "model.json").write_text("{")
    assert "model.json" in _one_error_line(capsys, ["inspect", str(broken)])
    (broken / "model.json").unlink()
    assert "model.json" in _one_error_line(capsys, ["inspect", str(broken)])
    assert "block=N" in _one_error_line(capsys, ["inspect", str(tracked_run),
                                                 "--transcoder", "2"])
    assert "block number 1..2" in _one_error_line(capsys, ["inspect", str(tracked_run),
                                                           "--transcoder", "block=5"])


def test_bilinear_flag_needs_bilinear_blocks(tmp_path, capsys):
    out = tmp_path / "std"
    mlplab.train({"data": {"source": "sklearn:iris"}, "model": {"width": 8, "depth": 1},
                  "train": {"epochs": 1, "threads": 1}}, out=out)
    assert "model.block = 'bilinear'" in _one_error_line(capsys, ["inspect", str(out),
                                                                  "--bilinear"])


def _browser() -> str | None:
    for name in ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _png_colours(path: Path) -> int:
    """How many distinct colours a screenshot holds (a blank page has one)."""
    import matplotlib.image
    import numpy as np

    pixels = (matplotlib.image.imread(path)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def _screenshot(page: Path, shot: Path) -> str:
    """Render `page` in headless Chromium: a screenshot at `shot`; returns the rendered DOM."""
    browser = _browser()
    if browser is None:
        pytest.skip("no headless Chromium (apt-get install chromium; `make test` tries it)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1200,1600"]
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 5000
    return subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True,
                          capture_output=True, text=True, timeout=120).stdout


def test_inspect_report_renders_in_a_browser(tracked_run, tmp_path):
    if not (tracked_run / "inspect.html").exists():
        mlplab.inspect(tracked_run).write()
    shot = tmp_path / "inspect.png"
    dom = _screenshot(tracked_run / "inspect.html", shot)
    assert _png_colours(shot) > 20  # text, tables and plots, not a blank page
    for section in ("Activation sparsity", "Ablation", "Linear probes"):
        assert f"<h2>{section}</h2>" in dom


def test_lab_run_report_renders_in_a_browser(tracked_run, tmp_path):
    from mlplab.lab.run_report import run_report

    page = run_report(tracked_run, out=tmp_path)
    shot = tmp_path / "report.png"
    dom = _screenshot(page, shot)
    assert _png_colours(shot) > 20
    assert "<h2>Learning curves</h2>" in dom and "<h2>Metrics</h2>" in dom


def test_sweep_report_renders_in_a_browser(tmp_path):
    if _browser() is None:
        pytest.skip("no headless Chromium (apt-get install chromium; `make test` tries it)")
    out = tmp_path / "sweep"
    mlplab.sweep({"name": "tiny", "seeds": [0], "data": {"source": "sklearn:iris"},
                  "model": {"width": 8, "depth": 1}, "train": {"epochs": 1, "threads": 1},
                  "family": {"a": {}, "b": {"model.depth": 2}}}, out=out, workers=0)
    dom = _screenshot(mlplab.report(out), tmp_path / "sweep.png")
    assert _png_colours(tmp_path / "sweep.png") > 20
    assert "<h2>Pareto table</h2>" in dom and "<h2>Spec</h2>" in dom
