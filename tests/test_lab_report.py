"""The report renders: report.html parses and embeds its PNG plots; report.md and the terminal
Pareto table show the same sweep."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest
from lab_util import tiny_sweep

import mlplab
from mlplab.cli import run
from mlplab.lab.report import pareto_rows
from mlplab.lab.results import load_results, summary, win_table


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A tiny sweep with a 2-trial lr search per family and budget."""
    out = tmp_path_factory.mktemp("lab") / "searched"
    result = mlplab.sweep(tiny_sweep(name="searched", search={"n_trials": 2}), out=out, workers=0)
    assert result.counts == {"done": 24}  # 2 families x 3 budgets x (2 search + 2 seeds)
    return out


def test_final_runs_use_the_best_search_value(searched):
    res = load_results(searched)
    t = res.trials
    for _, part in t.groupby(["family", "budget"]):
        search = part[part["kind"] == "search"]
        higher = res.info["higher_is_better"][res.info["monitor"]]  # val.log_loss: lower
        best = search.loc[search["objective"].idxmax() if higher else search["objective"].idxmin()]
        for spec in part[part["kind"] == "run"]["spec"]:
            assert spec["train"]["lr"] == best["spec"]["train"]["lr"]
    assert summary(res)["seeds"].tolist() == [2] * 6


def test_report_html_parses_with_embedded_images(searched):
    path = mlplab.report(searched)
    assert path == searched / "report.html"
    page = Page()
    page.feed(path.read_text())
    page.close()
    assert page.tags[0] == "html" and "table" in page.tags
    assert len(page.images) >= 4  # pareto, scaling, curves, search
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("Win table at matched budgets", "Pareto table", "Spec", "Environment"):
        assert heading in page.headings
    md = (searched / "report.md").read_text()
    assert "| family | budget | params |" in md and "![pareto](plots/pareto.png)" in md
    assert (searched / "plots" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_win_table_and_pareto_rows_agree(searched):
    res = load_results(searched)
    wins = win_table(res)
    assert wins["budget"].tolist() == [3e3, 6e3, 1.2e4]
    best = max if res.info["higher_is_better"][res.info["metric"].split(".")[1]] else min
    for _, row in wins.iterrows():
        assert row[row["winner"]] == best(row["standard"], row["hourglass"])
    table = summary(res)
    head, rows = pareto_rows(res, table)
    assert head[0] == "family" and len(rows) == 6

    q = table["quality"] * (1 if best is max else -1)  # higher q is better

    def dominated(i: int, cost: str, pool) -> bool:
        c = table[cost]
        return any(c[j] <= c[i] and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i])
                   for j in pool if j != i)

    # each row's marks, recomputed by brute force over the family and over every family
    for i, row in enumerate(rows):
        family = table.index[table["family"] == table.loc[i, "family"]]
        expected = "".join(mark + ("" if dominated(i, cost, table.index) else "*")
                           for mark, cost in (("P", "params"), ("F", "flops"),
                                              ("T", "train_seconds"))
                           if not dominated(i, cost, family))
        assert row[-1] == expected, (row, table.loc[i])


def test_compare_and_report_cli(searched, capsys):
    assert run(["compare", str(searched)]) == 0
    text = capsys.readouterr().out
    assert "standard" in text and "hourglass" in text and "test.log_loss" in text
    assert run(["report", str(searched), "--out", str(searched / "again")]) == 0
    assert (searched / "again" / "report.html").is_file()
    assert run(["compare", str(searched / "nothing-here")]) == 2
    assert "error:" in capsys.readouterr().err
