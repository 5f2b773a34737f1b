"""Data-parallel training: the split of a global batch and the loss scale (fast, in one
process), and `mlplab train --nproc 2` against one process, with a kill -9 and resume (slow:
each launch starts torchrun and two Python processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mlplab.errors import SpecError
from mlplab.train import distributed as ddp

REPO = Path(__file__).resolve().parents[1]
SPEC = """seed = 0
[data]
source = "sklearn:iris"
[model]
block = "standard"
width = 16
depth = 2
[train]
epochs = {epochs}
batch_size = 15
lr = 3e-3
patience = 1000
threads = 1
precision = "fp32"
"""
# relative: two processes sum the gradient in another order (fp32 last bits). fp32 pinned: under
# bf16 ("auto" on an AMX host) one process trains bf16 weights with fp32 masters while a
# data-parallel run uses bf16 autocast, which differ by more (2e-4 relative on this run)
TOL = 1e-5


def _fake_world(monkeypatch: pytest.MonkeyPatch, r: int, world: int) -> None:
    monkeypatch.setattr(ddp, "active", lambda: True)
    monkeypatch.setattr(ddp, "rank", lambda: r)
    monkeypatch.setattr(ddp, "world_size", lambda: world)


def test_rank_parts_cover_the_batch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    idx = torch.randperm(15, generator=torch.Generator().manual_seed(0))
    parts = []
    for r in range(2):
        _fake_world(monkeypatch, r, 2)
        parts.append(ddp.local_rows(idx))
    assert [len(p) for p in parts] == [8, 7]
    assert torch.equal(torch.cat(parts), idx)


def test_scaled_rank_gradients_average_to_the_global_batch_gradient(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What DDP computes (mean over ranks of each rank's scaled gradient) equals the one-process
    gradient of the batch's mean loss, also when the parts differ in size (15 rows on 2)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    x, y = torch.randn(15, 4), torch.randint(0, 3, (15,))
    idx = torch.arange(15)

    def grad(rows: torch.Tensor, scale: float) -> torch.Tensor:
        lin.zero_grad()
        (torch.nn.functional.cross_entropy(lin(x[rows]), y[rows]) * scale).backward()
        return lin.weight.grad.clone()

    full = grad(idx, 1.0)
    grads = []
    for r in range(2):
        _fake_world(monkeypatch, r, 2)
        rows = ddp.local_rows(idx)
        grads.append(grad(rows, ddp.loss_scale(len(rows), len(idx))))
    torch.testing.assert_close(sum(grads) / 2, full)


def test_lbfgs_is_refused_data_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_world(monkeypatch, 0, 2)
    with pytest.raises(SpecError, match="train.optimizer"):
        ddp.check_supported("lbfgs")
    ddp.check_supported("adamw")


def test_nproc_must_be_positive(tmp_path: Path) -> None:
    from mlplab.cli import run

    (tmp_path / "s.toml").write_text(SPEC.format(epochs=1))
    assert run(["train", str(tmp_path / "s.toml"), "--nproc", "0", "--out",
                str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def _mlplab(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen([sys.executable, "-m", "mlplab", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _assert_same(a: dict, b: dict) -> None:
    for split in ("train", "val", "test"):
        for name, value in a[split].items():
            assert b[split][name] == pytest.approx(value, rel=TOL, abs=1e-6), (split, name)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_pid(root: int, rank: int) -> int | None:
    """The pid of the torchrun worker with RANK=`rank` below process `root`."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
        todo += _children(pid)
    return None


@pytest.mark.slow
def test_two_processes_match_one_and_resume_after_kill_9(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(epochs=60))
    one = _mlplab("train", str(spec), "--out", str(tmp_path / "one"), "--quiet")
    assert one.wait(timeout=300) == 0, one.stdout.read()

    two = _mlplab("train", str(spec), "--nproc", "2", "--out", str(tmp_path / "two"),
                  "--quiet")
    ckpt = tmp_path / "two" / "checkpoint"
    deadline = time.monotonic() + 240
    while not (ckpt.is_dir() and any(p.name >= "epoch-000003" for p in ckpt.iterdir())):
        assert two.poll() is None, two.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = _rank_pid(two.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    assert two.wait(timeout=120) == 2  # torchrun stopped rank 0 too; mlplab says how to resume
    assert "--resume" in two.stdout.read()
    assert not (tmp_path / "two" / "metrics.json").exists()

    again = _mlplab("train", "--resume", str(tmp_path / "two"), "--nproc", "2", "--quiet")
    assert again.wait(timeout=300) == 0, again.stdout.read()
    a, b = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert b["epochs"] == a["epochs"] == 60
    _assert_same(a, b)
    for ca, cb in zip(a["curves"], b["curves"], strict=True):
        assert cb["train_loss"] == pytest.approx(ca["train_loss"], rel=TOL)


@pytest.mark.slow
def test_a_sweep_trial_in_two_processes_matches_one(tmp_path: Path) -> None:
    import mlplab
    from mlplab.rundir import read_spec

    base = {"name": "ddp", "seeds": [0], "data": {"source": "sklearn:iris"},
            "model": {"block": "standard", "width": 16, "depth": 2},
            "train": {"epochs": 4, "batch_size": 15, "patience": None, "threads": 1,
                      "precision": "fp32"},
            "axes": {"model.width": [16]}, "execution": {"nproc": 2}}
    result = mlplab.sweep(base, out=tmp_path / "sweep", workers=0)
    assert result.counts == {"done": 1}, result.errors
    trial = next((tmp_path / "sweep" / "trials").iterdir())
    one = mlplab.train(read_spec(trial), out=tmp_path / "one")
    _assert_same(_metrics(tmp_path / "one"), _metrics(trial))
    assert one.epochs == 4
