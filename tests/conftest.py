"""Shared fixtures: one torch thread (the machine is shared), tiny specs, small finished runs."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import mlplab  # noqa: E402
from mlplab.train import checkpoint as ckpt  # noqa: E402
from mlplab.train.trainer import Trainer  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]

TINY_SPEC: dict[str, Any] = {
    "seed": 0,
    "data": {"source": "sklearn:iris"},
    "model": {"block": "standard", "width": 16, "depth": 2},
    "train": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "patience": None, "threads": 1},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with the (nested) keys of `override` replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def tiny_spec() -> Callable[..., dict[str, Any]]:
    """`tiny_spec(model={...}, train={...})`: a small iris spec with some sections replaced."""

    def make(**override: Any) -> dict[str, Any]:
        return merge(TINY_SPEC, override)

    return make


@pytest.fixture(scope="session")
def frozen_run(tmp_path_factory: pytest.TempPathFactory) -> mlplab.RunResult:
    """A finished run directory: hourglass blocks, frozen lift, batchnorm, wine (3 classes)."""
    out = tmp_path_factory.mktemp("runs") / "frozen"
    spec = merge(TINY_SPEC, {
        "data": {"source": "sklearn:wine"},
        "model": {"block": "hourglass", "width": 32, "lift": "frozen", "norm": "batchnorm"},
        "train": {"epochs": 3},
    })
    return mlplab.train(spec, out=out)


@contextmanager
def crash_after_checkpoint(epoch: int, error: type[BaseException]) -> Iterator[None]:
    """Within the block, training raises `error` right after committing `epoch`'s checkpoint
    (what a kill at that moment leaves on disk)."""
    save = Trainer._save_checkpoint

    def save_then_crash(self: Trainer, improved: bool) -> None:
        save(self, improved)
        if self.state.epoch == epoch:
            raise error

    Trainer._save_checkpoint = save_then_crash  # type: ignore[method-assign]
    try:
        yield
    finally:
        Trainer._save_checkpoint = save  # type: ignore[method-assign]


def mlplab_executable() -> str:
    """The `mlplab` console script next to the running interpreter (the project venv)."""
    exe = Path(sys.executable).parent / "mlplab"
    return str(exe) if exe.exists() else str(REPO / ".venv" / "bin" / "mlplab")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.gpu` tests run only where CUDA is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs CUDA: torch.cuda.is_available() is False "
                                   f"(torch {torch.__version__})")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- kill -9 a real `mlplab train` (resume tests) ----------------------------------------

def env() -> dict[str, str]:
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


def checkpointed_epochs(run_dir: Path) -> int:
    last = ckpt.latest_checkpoint(run_dir)
    return int(last.name.split("-")[1]) if last is not None else 0


def start_and_kill(spec_path: Path, run_dir: Path, ready: Callable[[Path], bool], *,
                   timeout: float = 60) -> int:
    """Start `mlplab train`, SIGKILL it once `ready(run_dir)`; return epochs checkpointed."""
    proc = subprocess.Popen([mlplab_executable(), "train", str(spec_path), "--out", str(run_dir),
                             "--quiet"], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not ready(run_dir):
            assert proc.poll() is None, f"training ended before the kill: {proc.communicate()}"
            assert time.monotonic() < deadline, f"training made no progress in {timeout} s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    return checkpointed_epochs(run_dir)
