"""The README stays true: its ```python blocks run, in order, in one namespace; it opens with
the two commands; the files and the error line it shows are real.

Mark a block ```python skip-test to leave it out (for example one that needs a long run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

import mlplab
from mlplab.lab.spec import load_sweep
from mlplab.spec import load_spec

README = REPO / "README.md"
FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str, str]]:
    """`(line number, info string, code)` of every ```python fenced block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2))
            for m in FENCE.finditer(text)]


def test_fence_parser():
    text = "x\n```python\na = 1\n```\n```python skip-test\nb = 2\n```\n```bash\nc\n```\n"
    assert python_blocks(text) == [(2, "", "a = 1\n"), (5, "skip-test", "b = 2\n")]


def test_readme_opens_with_the_two_commands():
    head = README.read_text().splitlines()[:60]
    demo = [i for i, line in enumerate(head) if line.strip().startswith("make demo")]
    test = [i for i, line in enumerate(head) if line.strip().startswith("make test")]
    assert demo and test, "README must show `make demo` and `make test` in its first 60 lines"
    assert demo[0] < test[0]
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", (REPO / "Makefile").read_text(), re.MULTILINE)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocks = [b for b in python_blocks(README.read_text()) if "skip-test" not in b[1]]
    assert blocks, "the README should show the Python API in at least one ```python block"
    monkeypatch.chdir(tmp_path)  # examples may write runs/ relative to the working directory
    namespace: dict = {"__name__": "__readme__"}
    for line, _, code in blocks:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102


def test_example_specs_named_in_the_readme_exist_and_validate():
    names = set(re.findall(r"examples/[\w.-]+\.toml", README.read_text()))
    assert {"examples/digits.toml", "examples/diamonds.toml"} <= names
    for name in sorted(names):
        text = (REPO / name).read_text()
        if "[axes]" in text or "[family." in text:  # a sweep file, for `mlplab sweep`
            spec = load_sweep(REPO / name)
        else:
            spec = load_spec(REPO / name)
        assert spec.name == Path(name).stem


def test_readme_error_line_is_what_the_cli_prints():
    shown = [line for line in README.read_text().splitlines()
             if line.startswith("error: model.block")]
    assert shown, "README shows the bad-spec error line"
    with pytest.raises(mlplab.SpecError) as err:
        mlplab.parse_spec({"data": {"source": "sklearn:iris"}, "model": {"block": "hourglas"}})
    assert shown[0] == f"error: {err.value}"
