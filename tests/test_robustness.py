"""No traceback, nothing lost: every failure of the `mlplab` command is one `error: ...` line.

Corrupt, truncated, pickled or mismatched run files (info, load_run, export, --resume), a full
disk while checkpointing or writing the final files, a garbage lab.sqlite, OSErrors, bugs
(`internal error`, exit 1) and `--debug` / MLPLAB_DEBUG, and one writer per run directory
(a second process holds the lock).
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, crash_after_checkpoint
from safetensors.torch import save_file

import mlplab
from mlplab import cli
from mlplab.errors import RunBusyError, RunFileError, SpecError, TrainingError
from mlplab.lab.store import Store
from mlplab.train import checkpoint as ckpt


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def run_copy(frozen_run, tmp_path: Path) -> Path:
    """A finished run directory of our own to break."""
    return Path(shutil.copytree(frozen_run.run_dir, tmp_path / "run"))


@pytest.fixture
def unfinished(tiny_spec, tmp_path: Path) -> Path:
    """A run killed right after its second epoch's checkpoint (of 4)."""
    out = tmp_path / "unfinished"
    with crash_after_checkpoint(2, KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        mlplab.train(tiny_spec(), out=out)
    return out


def fails_everywhere(run_dir: Path, capsys, *expected: str) -> None:
    """`info`, `export` and `load_run` all refuse `run_dir` with one line holding `expected`."""
    for argv in (["info", str(run_dir)], ["info", str(run_dir), "--json"],
                 ["export", str(run_dir), "--onnx", str(run_dir.parent / "m.onnx")]):
        assert cli.run(argv) == 2, argv
        line = error_line(capsys)
        assert all(text in line for text in expected), (argv, line)
    with pytest.raises(RunFileError) as err:
        mlplab.load_run(run_dir)
    assert all(text in str(err.value) for text in expected)
    assert not (run_dir.parent / "m.onnx").exists()


# -- corrupt run files ---------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_corrupt_weights_are_one_line_errors(run_copy: Path, capsys, damage: str):
    weights = run_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                         "garbage": b"not weights at all " * 40}[damage])
    fails_everywhere(run_copy, capsys, str(weights), "not a valid safetensors file")


def test_a_pickle_in_place_of_the_weights_is_refused_unread(run_copy: Path, capsys):
    weights = run_copy / "model.safetensors"
    weights.write_bytes(pickle.dumps({"lift.weight": [1.0, 2.0]}))
    fails_everywhere(run_copy, capsys, str(weights), "pickle", "never unpickles")


def test_weights_of_another_shape_name_the_tensor(run_copy: Path, capsys):
    weights = run_copy / "model.safetensors"
    tensors = ckpt.read_tensors(weights)
    name = next(k for k, v in tensors.items() if v.ndim == 2)
    rows, cols = tensors[name].shape
    tensors[name] = torch.zeros(rows + 1, cols)
    del tensors[next(k for k in tensors if k != name)]
    save_file(tensors, str(weights))
    fails_everywhere(run_copy, capsys, str(weights), "does not fit the model", repr(name),
                     f"({rows + 1}, {cols})", f"needs ({rows}, {cols})", "missing")


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("spec.json", '{"seed": 0, "data": {"source"', "not valid JSON"),
    ("spec.json", '{"data": {"source": "sklearn:iris"}, "model": {"width": "wide"}}',
     "model.width"),
    ("model.json", "[]", "should hold a JSON object"),
    ("model.json", '{"schema": {}, "d_out": 3, "features": {}, "target": {}}',
     "unexpected content"),
    ("metrics.json", '{"train": {}}', "lacks 'val'"),
    ("metrics.json", b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_invalid_json_files_are_one_line_errors(run_copy: Path, capsys, name: str,
                                                content: str | bytes, expected: str):
    path = run_copy / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for argv in (["info", str(run_copy)], ["train", "--resume", str(run_copy), "--quiet"]):
        if name == "metrics.json" and argv[0] == "train":
            continue  # --resume rewrites metrics.json; it never reads it
        assert cli.run(argv) == 2, argv
        line = error_line(capsys)
        assert str(path) in line and expected in line, line
    with pytest.raises(RunFileError, match=expected):
        mlplab.load_run(run_copy)


def test_estimator_directory_with_corrupt_weights(tmp_path: Path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    est = mlplab.MLPClassifier(d_block=8, n_blocks=1, max_epochs=2, random_state=0).fit(X, y)
    est.save(tmp_path / "est")
    (tmp_path / "est" / "model.safetensors").write_bytes(b"\x80\x04junk")
    with pytest.raises(RunFileError, match="pickle"):
        mlplab.load(tmp_path / "est")
    assert cli.run(["export", str(tmp_path / "est"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "model.safetensors is a pickle" in error_line(capsys)


# -- info tells the truth ------------------------------------------------------------


def test_info_on_a_sound_unfinished_run_still_suggests_resume(unfinished: Path, capsys):
    assert cli.run(["info", str(unfinished)]) == 0
    assert "unfinished: 2 epochs checkpointed" in " ".join(capsys.readouterr().out.split())


def test_info_checks_the_latest_checkpoint(unfinished: Path, capsys):
    state = ckpt.latest_checkpoint(unfinished) / "state.json"
    state.write_text('{"epoch": "two"}')
    assert cli.run(["info", str(unfinished)]) == 2
    line = error_line(capsys)
    assert str(state) in line and "epoch" in line


# -- --resume from a corrupt checkpoint ----------------------------------------------


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors",
                                  "rng.safetensors", "state.json", "optimizer.json"])
def test_resume_from_a_corrupt_checkpoint_says_how_to_restart(unfinished: Path, tiny_spec,
                                                              tmp_path: Path, capsys, name: str):
    last = ckpt.latest_checkpoint(unfinished)
    data = (last / name).read_bytes()
    (last / name).write_bytes(data[: len(data) // 2])
    assert cli.run(["train", "--resume", str(unfinished), "--quiet"]) == 2
    line = error_line(capsys)
    assert str(last / name) in line and f"delete {unfinished / 'checkpoint'}" in line
    assert not (unfinished / "metrics.json").exists()
    shutil.rmtree(unfinished / "checkpoint")  # ... and the advice works
    assert cli.run(["train", "--resume", str(unfinished), "--quiet"]) == 0
    reference = mlplab.train(tiny_spec(), out=tmp_path / "ref")
    assert json.loads((unfinished / "metrics.json").read_text())["test"] == reference.metrics["test"]


def test_resume_with_a_checkpoint_of_another_shape(unfinished: Path, capsys):
    last = ckpt.latest_checkpoint(unfinished)
    tensors = ckpt.read_tensors(last / "optimizer.safetensors")
    key = next(k for k, v in tensors.items() if v.ndim == 2)
    tensors[key] = torch.zeros(3, 3)
    save_file(tensors, str(last / "optimizer.safetensors"))
    assert cli.run(["train", "--resume", str(unfinished), "--quiet"]) == 2
    line = error_line(capsys)
    assert "optimizer state" in line and "(3, 3)" in line and "delete" in line


# -- a full disk ---------------------------------------------------------------------


def no_space(*args: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint(tiny_spec, tmp_path: Path,
                                                                 monkeypatch, capsys):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(tiny_spec()))
    run_dir = tmp_path / "run"
    epoch = {}
    commit = ckpt.commit_checkpoint

    def tracked_commit(run_dir, n, files, link_from=None):
        epoch["now"] = n
        return commit(run_dir, n, files, link_from)

    def open_until_full(file, mode="r", *args, **kwargs):  # epoch 3: the disk fills mid-way
        if epoch.get("now") == 3 and "w" in mode and Path(file).name == "optimizer.json":
            raise no_space()
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(ckpt, "commit_checkpoint", tracked_commit)
    monkeypatch.setattr(ckpt, "open", open_until_full, raising=False)
    assert cli.run(["train", str(spec_path), "--out", str(run_dir), "--quiet"]) == 2
    line = error_line(capsys)
    assert "No space left on device" in line and "checkpoint of epoch 3" in line
    assert "nothing is lost up to epoch 2" in line and f"--resume {run_dir}" in line
    assert [p.name for p in (run_dir / "checkpoint").iterdir()] == ["epoch-000002"]
    monkeypatch.undo()  # space freed: the resumed run ends as an uninterrupted one
    assert cli.run(["train", "--resume", str(run_dir), "--quiet"]) == 0
    reference = mlplab.train(tiny_spec())
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == reference.metrics["test"]


def test_full_disk_while_writing_the_final_files(tiny_spec, tmp_path: Path, monkeypatch):
    write = ckpt.atomic_write_bytes

    def full_for_metrics(path, data):
        if Path(path).name == "metrics.json":
            raise no_space()
        write(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", full_for_metrics)
    with pytest.raises(TrainingError, match=r"No space left on device.*all 4 epochs are "
                                            r"checkpointed.*--resume") as err:
        mlplab.train(tiny_spec(), out=tmp_path / "run")
    assert isinstance(err.value.__cause__, OSError)
    monkeypatch.undo()
    assert mlplab.resume(tmp_path / "run").epochs == 4
    assert (tmp_path / "run" / "metrics.json").is_file()


# -- stale temp files and permissions ------------------------------------------------


def test_stale_temp_files_are_removed_when_a_run_starts_again(tiny_spec, tmp_path: Path):
    out = tmp_path / "run"
    mlplab.train(tiny_spec(), out=out)
    (out / "metrics.json").unlink()  # killed during the final write: only its temp file
    (out / ".metrics.json.1a2b3c.tmp").write_text('{"train": ')
    (out / "checkpoint" / ".tmp-5d6e7f").mkdir()
    mlplab.resume(out)
    assert not list(out.glob(".*.tmp")) and not list((out / "checkpoint").glob(".tmp-*"))
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_files_get_the_usual_permissions(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        ckpt.write_json(tmp_path / "a.json", {"x": 1})
        (tmp_path / "plain.txt").write_text("x")
        final = ckpt.commit_checkpoint(tmp_path, 1, {"state.json": b"{}"})
        (tmp_path / "plain_dir").mkdir()
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777

    assert mode(tmp_path / "a.json") == mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert mode(final) == mode(tmp_path / "plain_dir") == 0o777 & ~umask


# -- one writer per run directory ----------------------------------------------------

HOLD_LOCK = """\
import sys
from mlplab.train.lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def locked_by_another_process(unfinished: Path):
    """`unfinished`, with its lock held by another process until the fixture ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(unfinished)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "locked\n"
        yield unfinished, proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_second_writer_is_refused_and_deletes_nothing(locked_by_another_process, capsys):
    run_dir, pid = locked_by_another_process
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    assert cli.run(["train", "--resume", str(run_dir), "--quiet"]) == 2
    line = error_line(capsys)
    assert "being trained by another process" in line and f"pid {pid}" in line
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    with pytest.raises(RunBusyError):
        mlplab.resume(run_dir)


def test_new_run_into_a_busy_directory_is_refused(locked_by_another_process, tiny_spec):
    run_dir, _ = locked_by_another_process
    (run_dir / "spec.json").unlink()  # even before the other writer marked it as a run
    with pytest.raises(RunBusyError, match="another process"):
        mlplab.train(tiny_spec(), out=run_dir)
    assert ckpt.latest_checkpoint(run_dir).name == "epoch-000002"


def test_lock_is_released_after_the_other_process_ends(unfinished: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    held = subprocess.run([sys.executable, "-c", HOLD_LOCK, str(unfinished)], env=env,
                          input="", capture_output=True, text=True, timeout=60)
    assert held.stdout == "locked\n"
    assert mlplab.resume(unfinished).epochs == 4
    assert not (unfinished / ".lock").exists()  # the holder removes it when done


# -- the lab store, OS errors, bugs and --debug --------------------------------------


def test_garbage_lab_sqlite_is_one_line(tmp_path: Path, capsys):
    (tmp_path / "lab.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(SpecError, match="is not an SQLite database"):
        Store(tmp_path / "lab.sqlite")
    assert cli.run(["compare", str(tmp_path)]) == 2
    assert "lab.sqlite is not an SQLite database" in error_line(capsys)


def test_long_path_is_an_os_error_line_cut_short(tmp_path: Path, tiny_spec, capsys):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(tiny_spec()))
    assert cli.run(["train", str(spec_path), "--out", str(tmp_path / ("x" * 100_000))]) == 2
    line = error_line(capsys)
    assert "File name too long" in line and "…" in line and len(line) < 1200


def failing(err: BaseException):
    def command(args):
        raise err
    return command


@pytest.mark.parametrize(("err", "code", "expected"), [
    (OSError(errno.EACCES, "Permission denied", "/data/x.csv"), 2,
     "error: Permission denied: '/data/x.csv'"),
    (MemoryError(), 2, "error: out of memory (MemoryError); use a smaller model.width"),
    (ZeroDivisionError("division by zero"), 1,
     "error: internal error: ZeroDivisionError: division by zero (a bug in mlplab; run with "
     "--debug (or MLPLAB_DEBUG=1) for the traceback)"),
    (mlplab.MlplabError("x" * 10_000_000), 2, "error: xxx"),
])
def test_every_failure_is_one_line(monkeypatch, capsys, err, code, expected):
    monkeypatch.delenv("MLPLAB_DEBUG", raising=False)
    monkeypatch.setattr(cli, "cmd_info", failing(err))
    assert cli.run(["info", "somewhere"]) == code
    line = error_line(capsys)
    assert line.startswith(expected) and len(line) < 1100


def test_debug_shows_the_traceback(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("MLPLAB_DEBUG", raising=False)
    with pytest.raises(mlplab.MlplabError, match="not a run directory"):
        cli.run(["--debug", "info", str(tmp_path)])
    with pytest.raises(mlplab.MlplabError):
        cli.run(["info", str(tmp_path), "--debug"])  # also after the subcommand
    monkeypatch.setattr(cli, "cmd_info", failing(ZeroDivisionError("x")))
    with pytest.raises(ZeroDivisionError):
        cli.run(["--debug", "info", str(tmp_path)])
    monkeypatch.setenv("MLPLAB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.run(["info", str(tmp_path)])
    monkeypatch.setenv("MLPLAB_DEBUG", "0")
    assert cli.run(["info", str(tmp_path)]) == 1
