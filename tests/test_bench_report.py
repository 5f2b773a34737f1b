"""`mlplab bench` writes only its own BENCHMARKS.md section, with the ratios it measured."""

from __future__ import annotations

from mlplab.bench.report import SECTION, throughput_table, write_section


def test_write_section_replaces_only_its_own_section(tmp_path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Lab\n\nlab text\n\n" + SECTION + "\n\nold\n\n## Later\n\nkeep\n")
    write_section(path, SECTION + "\n\nnew figures\n")
    text = path.read_text()
    assert "old" not in text and "new figures" in text
    assert "lab text" in text and "## Later\n\nkeep" in text
    assert text.count(SECTION) == 1
    fresh = tmp_path / "NEW.md"
    write_section(fresh, SECTION + "\n\nfigures\n")
    assert fresh.read_text().startswith("# Benchmarks") and "figures" in fresh.read_text()


def test_throughput_table_ratios() -> None:
    rows = [{"width": 1024, "batch": 1024, "contender": name, "samples_per_s": rate,
             "samples_per_cpu_s": rate / 2, "gflops": rate * 0.2}
            for name, rate in [("mlplab fp32", 1500.0), ("mlplab bf16", 4500.0),
                               ("torch loop", 1000.0), ("sklearn", 500.0)]]
    table = throughput_table(rows, peak_fp32=400.0)
    line = table.splitlines()[-1]
    assert "| 300 | 75% | 3.00x | 1.50x | 3.00x | — |" in line
