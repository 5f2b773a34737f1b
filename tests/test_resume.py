"""Resume after a kill: the resumed run ends with exactly the uninterrupted run's metrics.

A real `mlplab train` subprocess is killed with SIGKILL once it has checkpointed two epochs,
then `mlplab train --resume` finishes it. Also: a run killed before its first checkpoint,
and (in-process, faster) a crash right after a checkpoint with SGD momentum and AdamW.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import (
    checkpointed_epochs,
    crash_after_checkpoint,
    env,
    mlplab_executable,
    start_and_kill,
)

import mlplab
from mlplab import cli
from mlplab.spec import load_spec
from mlplab.train import checkpoint as ckpt

EPOCHS = 15
SPEC_TOML = f"""\
seed = 3
[data]
source = "sklearn:digits"
max_rows = 500
[model]
block = "standard"
width = 48
depth = 2
dropout = 0.1
norm = "batchnorm"
[train]
epochs = {EPOCHS}
batch_size = 32
lr = 0.001
monitor = "log_loss"
patience = 4
threads = 1
"""


def comparable(summary: dict) -> dict:
    """Everything in metrics.json except wall-clock timings."""
    curves = [{k: v for k, v in c.items() if k != "seconds"} for c in summary["curves"]]
    return {"train": summary["train"], "val": summary["val"], "test": summary["test"],
            "counts": summary["counts"], "best_epoch": summary["best_epoch"],
            "epochs": summary["epochs"], "stopped_early": summary["stopped_early"],
            "curves": curves}


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "digits_small.toml"
    path.write_text(SPEC_TOML)
    return path


@pytest.fixture(scope="module")
def uninterrupted(spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "run"
    mlplab.train(load_spec(spec_path), out=out)
    return json.loads((out / "metrics.json").read_text())


def test_reference_run_is_long_enough(uninterrupted: dict):
    # a kill after two checkpoints lands mid-run, and the best weights come from later on,
    # so the comparison covers epochs trained by the resumed process
    assert uninterrupted["epochs"] == EPOCHS and uninterrupted["best_epoch"] > 4


def test_resume_after_sigkill_matches_uninterrupted(spec_path: Path, tmp_path: Path,
                                                    uninterrupted: dict, capsys):
    run_dir = tmp_path / "run"
    done = start_and_kill(spec_path, run_dir, lambda d: checkpointed_epochs(d) >= 2)
    assert 2 <= done < uninterrupted["best_epoch"]
    assert cli.run(["info", str(run_dir)]) == 0
    assert f"unfinished: {done} epochs checkpointed" in " ".join(capsys.readouterr().out.split())
    resumed = subprocess.run([mlplab_executable(), "train", "--resume", str(run_dir), "--quiet"],
                             env=env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "metrics.json").read_text())
    for part in ("train", "val", "test"):
        assert summary[part] == uninterrupted[part], part  # exactly, not approximately
    assert comparable(summary) == comparable(uninterrupted)


def test_bf16_resume_after_sigkill_matches_uninterrupted(tmp_path: Path):
    """bf16 with fp32 master weights (layer norm: the master-weight route): a kill -9 and
    --resume end bitwise equal to an uninterrupted run."""
    spec_path = tmp_path / "bf16.toml"
    spec_path.write_text(SPEC_TOML.replace('norm = "batchnorm"', 'norm = "layernorm"')
                         .replace("threads = 1", 'threads = 1\nprecision = "bf16"'))
    mlplab.train(load_spec(spec_path), out=tmp_path / "ref")
    reference = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    run_dir = tmp_path / "run"
    done = start_and_kill(spec_path, run_dir, lambda d: checkpointed_epochs(d) >= 2)
    assert 2 <= done < reference["epochs"]
    resumed = subprocess.run([mlplab_executable(), "train", "--resume", str(run_dir), "--quiet"],
                             env=env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert comparable(summary) == comparable(reference)
    weights = ckpt.read_tensors(run_dir / "model.safetensors")
    assert {v.dtype for v in weights.values()} == {torch.float32}


def test_resume_after_kill_before_first_checkpoint(spec_path: Path, tmp_path: Path,
                                                   uninterrupted: dict):
    run_dir = tmp_path / "run"
    start_and_kill(spec_path, run_dir, lambda d: (d / "spec.json").is_file())
    assert (run_dir / "model.json").is_file()  # written before spec.json marks the run
    # make the state exactly "killed before the first checkpoint, mid-write": whatever the
    # process got to checkpoint is removed, a half-written temp checkpoint is left behind
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
    (run_dir / "checkpoint" / ".tmp-partial").mkdir(parents=True)
    (run_dir / "checkpoint" / ".tmp-partial" / "model.safetensors").write_bytes(b"\0" * 10)
    assert ckpt.latest_checkpoint(run_dir) is None
    result = mlplab.resume(run_dir)
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert comparable(summary) == comparable(uninterrupted)
    assert result.metrics["test"] == uninterrupted["test"]
    assert not list((run_dir / "checkpoint").glob(".tmp-*"))  # the partial write is cleaned up


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_resume_after_crash_in_process(tiny_spec, tmp_path: Path, optimizer: str):
    spec = tiny_spec(data={"source": "sklearn:wine"},
                     model={"dropout": 0.2, "norm": "batchnorm", "width": 24},
                     train={"optimizer": optimizer, "epochs": 6, "monitor": "loss",
                            "warmup_epochs": 2, "lr": 0.003})
    reference = mlplab.train(spec, out=tmp_path / "ref")
    assert reference.best_epoch > 3  # the final weights come from after the crash

    class Crash(Exception):
        pass

    with crash_after_checkpoint(2, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=tmp_path / "run")
    assert checkpointed_epochs(tmp_path / "run") == 2
    torch.manual_seed(999)  # the resumed run must restore the RNG itself
    resumed = mlplab.resume(tmp_path / "run")
    assert resumed.metrics == reference.metrics
    assert (resumed.best_epoch, resumed.epochs) == (reference.best_epoch, reference.epochs)
    for name, value in reference.model.state_dict().items():
        assert value.equal(resumed.model.state_dict()[name]), name


def test_resume_of_a_finished_run_reproduces_it(tiny_spec, tmp_path: Path):
    out = tmp_path / "run"
    first = mlplab.train(tiny_spec(), out=out)
    (out / "metrics.json").unlink()  # killed after the last checkpoint, before metrics.json
    again = mlplab.resume(out)
    assert again.metrics == first.metrics and again.epochs == first.epochs


def test_resume_needs_a_run_directory(tmp_path: Path):
    with pytest.raises(mlplab.SpecError, match="not a run directory"):
        mlplab.resume(tmp_path)
