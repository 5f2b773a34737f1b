"""Field runs through the one trainer: `task.kind = "field"` data and splits, every encoding
trains, FreSh recorded in the run, the pictures, a SIGKILLed field run resumes to the same
metrics, bad options name their field."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import checkpointed_epochs, env, mlplab_executable, start_and_kill

import mlplab
from mlplab.domains import build_data
from mlplab.errors import SpecError
from mlplab.fields.domain import grid_masks, train_val_masks
from mlplab.spec import load_spec, parse_spec


def field_spec(adapter: str = "hashgrid", *, size: int = 24, epochs: int = 3,
               options: dict | None = None, task: dict | None = None, **model) -> dict:
    siren = adapter == "siren"
    return {
        "seed": 0, "data": {"source": "skimage:camera"},
        "task": {"kind": "field", "options": {"size": size, **(task or {})}},
        "model": {"adapter": adapter, "adapter_options": options or {}, "block": "plain",
                  "width": 16, "depth": 2, "norm": "none",
                  "unit": "siren" if siren else "linear",
                  **({} if siren else {"activation": "relu"}), **model},
        "train": {"lr": 1e-2, "batch_size": 128, "epochs": epochs, "patience": None,
                  "weight_decay": 0.0, "schedule": "constant", "warmup_epochs": 0,
                  "threads": 1},
    }


def test_field_data_splits_and_coding() -> None:
    spec = parse_spec(field_spec(task={"split": "every-second"}))
    data = build_data(spec)
    assert data.kind == "field" and data.schema.info["shape"] == [24, 24]
    # every second pixel: 144 on the lattice, 9 (1/16) of them held back for validation; no
    # held-out pixel is trained on or used for model selection
    assert data.train.x.shape == (135, 2) and data.train.y.shape == (135, 1)
    assert len(data.val) == 9 and len(data.test) == 576
    lattice = {tuple(r) for r in data.test.x[torch.from_numpy(
        grid_masks((24, 24), "every-second")[0])].tolist()}
    seen = [tuple(r) for r in torch.cat([data.train.x, data.val.x]).tolist()]
    assert len(set(seen)) == 144 and set(seen) == lattice
    assert float(data.test.x.min()) == -1.0 and float(data.test.x.max()) == 1.0
    train, val = grid_masks((4, 4), "all")
    assert train.all() and val.sum() == 4
    train, val = grid_masks((4, 4), "every-second")
    assert train.sum() == 4 and (val == ~train).all()
    train, val = train_val_masks((16, 16), "every-second", val_fraction=0.25, seed=3)
    lattice, _ = grid_masks((16, 16), "every-second")
    assert val.sum() == 16 and train.sum() == 48 and not (train & val).any()
    assert ((train | val) == lattice).all()
    again, _ = train_val_masks((16, 16), "every-second", val_fraction=0.25, seed=3)
    other, _ = train_val_masks((16, 16), "every-second", val_fraction=0.25, seed=4)
    assert (again == train).all() and not (other == train).all()
    wave = parse_spec({**field_spec(size=64), "data": {"source": "signal:sine?freq=3&n=64"}})
    data = build_data(wave)
    # a [-1, 1] signal is coded into [0, 1] and decoded back by the task
    assert float(data.test.y.min()) >= 0 and float(data.test.y.max()) <= 1
    task = mlplab.domains.run_task(wave, data)
    np.testing.assert_allclose(task.decode(data.test.y), np.sin(np.pi * 3 * np.linspace(-1, 1, 64)),
                               atol=1e-5)


@pytest.mark.parametrize("adapter", ["hashgrid", "fourier", "posenc", "siren", "densegrid",
                                     "rbfgrid", "coords"])
def test_every_encoding_trains_a_field(adapter: str) -> None:
    options = {"fourier": {"n_frequencies": 16, "sigma": 4.0},
               "posenc": {"n_frequencies": 6}, "densegrid": {"base_resolution": 12,
                                                             "finest_resolution": 12},
               "rbfgrid": {"base_resolution": 12, "finest_resolution": 12},
               "hashgrid": {"levels": 4, "log2_table": 8, "finest_resolution": 32}}
    spec = field_spec(adapter, options=options.get(adapter, {}), epochs=8)
    if adapter in ("siren", "fourier", "posenc", "coords"):
        spec["train"]["lr"] = 3e-3
    result = mlplab.train(spec)
    psnr = [c["val_psnr"] for c in result.curves]
    assert result.metrics["test"]["psnr"] > 11 and psnr[-1] > psnr[0] + 1
    assert result.counts["params"] == sum(p.numel() for p in result.model.parameters())


def test_hashgrid_fits_better_than_plain_coordinates() -> None:
    grid = mlplab.train(field_spec("hashgrid", size=32, epochs=8,
                                   options={"levels": 6, "finest_resolution": 32}))
    plain = mlplab.train(field_spec("coords", size=32, epochs=8))
    assert grid.metrics["test"]["psnr"] > plain.metrics["test"]["psnr"] + 3


def test_fresh_is_chosen_from_the_data_and_recorded(tmp_path: Path) -> None:
    spec = field_spec("fourier", options={"sigma": "fresh", "n_frequencies": 16},
                      task={"fresh_candidates": [0.5, 4.0, 64.0], "fresh_inits": 2})
    result = mlplab.train(spec, out=tmp_path / "run")
    record = json.loads((tmp_path / "run" / "model.json").read_text())
    fresh = record["schema"]["info"]["fresh"]
    assert fresh["option"] == "sigma" and fresh["candidates"] == [0.5, 4.0, 64.0]
    assert len(fresh["distances"]) == 3 and fresh["chosen"] in fresh["candidates"]
    assert result.model.adapter.sigma == fresh["chosen"]
    loaded = mlplab.load_run(tmp_path / "run")  # the saved run rebuilds the chosen sigma
    assert loaded.model.adapter.sigma == fresh["chosen"]
    summary = json.loads((tmp_path / "run" / "fields.json").read_text())
    assert summary["fresh"]["chosen"] == fresh["chosen"]


def test_fresh_runs_once_and_a_resume_reuses_it(tmp_path: Path, monkeypatch) -> None:
    import mlplab.fields.fresh as fresh_module

    spec = field_spec("fourier", options={"sigma": "fresh", "n_frequencies": 16}, epochs=2,
                      task={"fresh_candidates": [0.5, 4.0, 64.0], "fresh_inits": 1,
                            "split": "every-second"})
    mlplab.train(spec, out=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "spec.json").read_text())["task"]["options"]
    record = saved["fresh_result"]
    assert record["chosen"] in [0.5, 4.0, 64.0] and record["inputs"]["seed"] == 0
    # the band FreSh compares is set by the signal's side (64 px: 16 bins, as when fitting all
    # pixels), not by the 32 px training lattice (which alone would give 8)
    big = parse_spec({**spec, "task": {**spec["task"], "options": {
        **spec["task"]["options"], "size": 64}}})
    assert build_data(big).schema.info["fresh"]["spectrum_size"] == 16
    assert big.task.options["fresh_result"]["spectrum_size"] == 16

    def no_fresh(*args, **kwargs):
        raise AssertionError("FreSh ran again")

    monkeypatch.setattr(fresh_module, "fresh_select", no_fresh)
    resumed = mlplab.resume(tmp_path / "run")  # spec.json carries the choice
    assert resumed.model.adapter.sigma == record["chosen"]
    with pytest.raises(AssertionError, match="FreSh ran again"):  # other inputs: FreSh again
        mlplab.train({**spec, "seed": 1, "task": {**spec["task"], "options": saved}})
    with pytest.raises(AssertionError, match="FreSh ran again"):  # another background
        mlplab.train({**spec, "task": {**spec["task"], "options": {**saved, "alpha": "black"}}})


def test_run_directory_pictures(tmp_path: Path) -> None:
    from PIL import Image

    mlplab.train(field_spec(task={"split": "every-second"}), out=tmp_path / "run")
    run = tmp_path / "run"
    for name in ("reconstruction.png", "error_map.png", "psnr_curve.png", "fields.json"):
        assert (run / name).is_file(), name
    assert Image.open(run / "reconstruction.png").size == (24, 24)
    summary = json.loads((run / "fields.json").read_text())
    assert summary["psnr_heldout"] is not None
    assert summary["psnr_lattice"] >= summary["psnr_heldout"] and summary["psnr_val"] is not None
    assert 0 < summary["ssim"] <= 1 and summary["params_per_sample"] > 0


def test_bad_field_options_name_their_field() -> None:
    with pytest.raises(SpecError, match=r"task\.options\.splt: unknown key; did you mean 'split'"):
        parse_spec(field_spec(task={"splt": "all"}))
    with pytest.raises(SpecError, match=r"model\.adapter_options: .*levels"):
        parse_spec(field_spec(options={"levels": 0}))
    with pytest.raises(SpecError, match=r"model\.adapter_options: .*'fresh' applies"):
        parse_spec(field_spec(options={"levels": "fresh"}))
    with pytest.raises(SpecError, match=r"model\.adapter: 'hashgrid' encodes coordinates"):
        mlplab.train({"data": {"source": "sklearn:iris"}, "model": {"adapter": "hashgrid"},
                      "train": {"epochs": 1}})
    with pytest.raises(mlplab.errors.DataError, match="not an image"):
        mlplab.train({**field_spec(), "data": {"source": str(Path(__file__))}})


RESUMED = {  # a hash grid (both lookups: the native one is as reproducible); a dense grid trained with the output-TV penalty's seeded points
    "hashgrid": field_spec(size=32, epochs=8, options={"levels": 4, "log2_table": 8}),
    "hashgrid_native": field_spec(size=32, epochs=8, options={"levels": 4, "log2_table": 8,
                                                              "implementation": "native"}),
    "output_tv": field_spec("densegrid", size=32, epochs=8,
                            options={"base_resolution": 15, "finest_resolution": 15},
                            task={"split": "every-second", "output_tv": 0.02,
                                  "output_tv_points": 512}),
}


@pytest.mark.parametrize("name", sorted(RESUMED))
def test_field_run_resumes_after_sigkill_to_the_same_metrics(tmp_path: Path, name: str) -> None:
    spec_path = tmp_path / "field.json"
    spec_path.write_text(json.dumps(RESUMED[name]))
    reference = tmp_path / "ref"
    mlplab.train(load_spec(spec_path), out=reference)
    run = tmp_path / "run"
    start_and_kill(spec_path, run, lambda d: checkpointed_epochs(d) >= 2, timeout=120)
    done = subprocess.run([mlplab_executable(), "train", "--resume", str(run), "--quiet"],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads((run / "metrics.json").read_text())
    want = json.loads((reference / "metrics.json").read_text())
    for part in ("train", "val", "test"):
        assert got[part] == want[part], part
    assert json.loads((run / "fields.json").read_text())["psnr"] == json.loads(
        (reference / "fields.json").read_text())["psnr"]
    assert torch.equal(mlplab.load_run(run).model.adapter.table,
                       mlplab.load_run(reference).model.adapter.table)


def test_fit_image_command(tmp_path: Path, capsys) -> None:
    from mlplab import cli

    run = tmp_path / "fit"
    code = cli.run(["fit-image", "skimage:camera", "--encoding", "fourier", "--scale", "fresh",
                    "--size", "24", "--epochs", "2", "--threads", "1", "--out", str(run),
                    "--quiet"])
    printed = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "FreSh chose sigma =" in printed and "PSNR" in printed and "dB" in printed
    assert (run / "reconstruction.png").is_file() and (run / "psnr_curve.png").is_file()
    assert cli.run(["info", str(run)]) == 0
    smooth = tmp_path / "smooth"
    assert cli.run(["fit-image", "skimage:camera", "--encoding", "rbf", "--split", "every-second",
                    "--output-tv", "0.03", "--size", "24", "--epochs", "2", "--threads", "1",
                    "--out", str(smooth), "--quiet"]) == 0
    assert mlplab.load_run(smooth).spec.task.options["output_tv"] == 0.03
    assert cli.run(["fit-image", "skimage:camera", "--output-tv", "-1", "--size", "24",
                    "--out", str(tmp_path / "bad")]) == 2
    assert "output_tv" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert cli.run(["fit-image", "skimage:camera", "--encoding", "none", "--scale", "3",
                    "--out", str(tmp_path / "x")]) == 2
    assert "has no scale option" in capsys.readouterr().err


def test_grid_smoothness_is_a_total_variation_loss() -> None:
    from mlplab.fields.model import field_model
    from mlplab.nn.aux_loss import total_aux_loss
    from mlplab.nn.encodings import grid_total_variation

    model = field_model("densegrid", 2, 1, encoding_options={"base_resolution": 3,
                                                              "finest_resolution": 3,
                                                              "features": 1})
    grid = model.adapter
    with torch.no_grad():  # a ramp along x (the fast axis of a level's vertices): TV = 1 / 3
        ramp = torch.arange(4.0).repeat(4) / 3
        grid.table.copy_(ramp.view(grid.table.shape))
    assert float(grid_total_variation(grid).detach()) == pytest.approx(1.0 / 3)
    assert total_aux_loss(model) is None  # smoothness 0: no term
    spec = field_spec("rbfgrid", options={"base_resolution": 8, "finest_resolution": 8,
                                          "smoothness": 0.5}, epochs=5)
    result = mlplab.train(spec)
    grid = result.model.adapter
    assert grid.smoothness == 0.5
    grid.train()
    with torch.no_grad():
        assert float(total_aux_loss(result.model)) == pytest.approx(
            0.5 * float(grid_total_variation(grid)))
        grid.eval()
        assert total_aux_loss(result.model) is None  # evaluation adds nothing
    rough = mlplab.train({**spec, "model": {**spec["model"], "adapter_options": {
        "base_resolution": 8, "finest_resolution": 8}}})
    with torch.no_grad():
        assert float(grid_total_variation(grid)) < 0.5 * float(
            grid_total_variation(rough.model.adapter))
    with pytest.raises(SpecError, match=r"smoothness: applies to the grid encodings"):
        parse_spec(field_spec("fourier", options={"smoothness": 1.0}))
    with pytest.raises(SpecError, match=r"smoothness: expected a number >= 0"):
        parse_spec(field_spec("rbfgrid", options={"smoothness": -1}))


def test_output_total_variation_penalty() -> None:
    from mlplab.fields.output_tv import EPS, OutputTotalVariation

    tv = OutputTotalVariation(0.5, points=64, shape=(5, 9), seed=3)  # 9 wide (x), 5 high (y)
    x = tv.inputs(step=7)
    assert x.shape == (3 * 64, 2)
    base, right, down = x.split(64)
    torch.testing.assert_close(right - base, torch.tensor([[0.25, 0.0]]).expand(64, 2))
    torch.testing.assert_close(down - base, torch.tensor([[0.0, 0.5]]).expand(64, 2))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.equal(tv.inputs(7), x) and not torch.equal(tv.inputs(8), x)  # seeded by step
    assert not torch.equal(OutputTotalVariation(0.5, 64, (5, 9), seed=4).inputs(7), x)
    # a linear field f = 2u + v: the differences are 2 * 0.25 along x and 0.5 along y
    out = (2 * x[:, :1] + x[:, 1:]).expand(-1, 3)  # three channels alike
    want = 0.5 * 0.5 * (2 * (0.5 ** 2 + EPS ** 2) ** 0.5)
    assert float(tv.penalty(out)) == pytest.approx(want)
    assert float(tv.penalty(torch.zeros(3 * 64, 1))) == pytest.approx(0.5 * EPS)


def test_output_tv_smooths_an_every_second_fit_and_val_fraction_zero() -> None:
    from mlplab.fields.output_tv import OutputTotalVariation

    base = field_spec("densegrid", size=24, epochs=20,
                      options={"base_resolution": 23, "finest_resolution": 23},
                      task={"split": "every-second", "val_fraction": 0})
    data = build_data(parse_spec(base))
    # nothing held back: train and val are the whole 12 x 12 lattice
    assert len(data.train) == len(data.val) == 144 and torch.equal(data.train.x, data.val.x)
    task = mlplab.domains.run_task(parse_spec(base), data)
    assert task.training_penalty(data, 0) is None
    smooth_spec = {**base, "task": {**base["task"], "options": {
        **base["task"]["options"], "output_tv": 0.05, "output_tv_points": 256}}}
    rough, smooth = mlplab.train(base), mlplab.train(smooth_spec)
    # the penalty reaches the grid vertices between the training pixels: their output varies
    # less from pixel to pixel
    tv = OutputTotalVariation(1.0, 2048, (24, 24), seed=9)
    with torch.no_grad():
        x = tv.inputs(0)
        variation = [float(tv.penalty(r.model.eval()(x))) for r in (rough, smooth)]
    assert variation[1] < 0.8 * variation[0]
    assert rough.metrics["test"]["psnr"] != smooth.metrics["test"]["psnr"]
    with pytest.raises(SpecError, match=r"task\.options\.output_tv"):
        parse_spec({**base, "task": {**base["task"], "options": {"output_tv": -1}}})
