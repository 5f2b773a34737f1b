"""The one report page every report writes (sweep, inspect): a title, an intro and `Section`s
of paragraphs, bullet lists, tables, plots and code, rendered by two Jinja2 templates into a
self-contained `<stem>.html` (plots embedded as base64 PNG) and a `<stem>.md` (plots as files
under `plots/`), written atomically.

Tables are pandas DataFrames (cells formatted by `fmt`) or pre-formatted `(head, rows)` string
tables.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from mlplab.train.checkpoint import atomic_write_bytes

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid
#ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}img{max-width:100%}"""

Rows = tuple[list[str], list[list[str]]]

HTML = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css }}</style></head>
<body><h1>{{ title }}</h1>{% if intro %}<p>{{ intro }}</p>{% endif %}
{% for s in sections %}<section id="{{ s.id }}"><h2>{{ s.title }}</h2>
{% for kind, a, b in s.parts %}{% if kind == "text" %}<p>{{ a }}</p>
{% elif kind == "bullets" %}<ul>{% for item in a %}<li>{{ item }}</li>{% endfor %}</ul>
{% elif kind == "table" %}{{ a | safe }}
{% elif kind == "code" %}<pre>{{ a }}</pre>
{% else %}{% if b[1] %}<h3>{{ a }}</h3>{% endif %}<p><img alt="{{ a }}" src="data:image/png;base64,{{ b[0] }}"></p>
{% endif %}{% endfor %}</section>
{% endfor %}</body></html>
""")

MARKDOWN = jinja2.Environment(autoescape=False, keep_trailing_newline=True).from_string(
    """# {{ title }}
{% if intro %}
{{ intro }}
{% endif %}{% for s in sections %}
## {{ s.title }}
{% for kind, a, b in s.parts %}
{% if kind == "text" %}{{ a }}
{% elif kind == "bullets" %}{% for item in a %}- {{ item }}
{% endfor %}{% elif kind == "table" %}{{ a }}{% elif kind == "code" %}```{{ b }}
{{ a }}
```
{% else %}![{{ a }}](plots/{{ a }}.png)
{% endif %}{% endfor %}{% endfor %}""")


def fmt(v: Any) -> str:
    """A table cell: integers with thousands separators, 4 significant decimals, NaN empty."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "" if v is None else str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return "" if math.isnan(v) else str(v)
    if isinstance(v, int) or (v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.4g}" if v != 0 and abs(v) < 1e-3 else f"{v:.4f}"


def _rows(table: pd.DataFrame | Rows) -> Rows:
    if isinstance(table, pd.DataFrame):
        return ([str(c) for c in table.columns],
                [[fmt(v) for v in row] for row in table.itertuples(index=False)])
    return table


def markdown_table(table: pd.DataFrame | Rows) -> str:
    head, body = _rows(table)
    if not head:
        return "_(nothing to show)_\n"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return "\n".join(lines) + "\n"


_TABLE = jinja2.Environment(autoescape=True).from_string(
    "{% if head %}<table><thead><tr>{% for h in head %}<th>{{ h }}</th>{% endfor %}</tr></thead>"
    "<tbody>{% for r in body %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>"
    "{% endfor %}</tbody></table>{% else %}<p><em>(nothing to show)</em></p>{% endif %}")


def html_table(table: pd.DataFrame | Rows) -> str:
    head, body = _rows(table)
    return _TABLE.render(head=head, body=body)


class Section:
    """One `##` section: its parts in the order they were added."""

    def __init__(self, id: str, title: str) -> None:
        self.id, self.title = id, title
        self.parts: list[tuple[str, Any]] = []

    def text(self, paragraph: str) -> None:
        self.parts.append(("text", paragraph))

    def bullets(self, items: list[str]) -> None:
        self.parts.append(("bullets", list(items)))

    def table(self, table: pd.DataFrame | Rows | None, *, keep_empty: bool = False) -> None:
        """A DataFrame or `(head, rows)`; an empty one is left out unless `keep_empty`."""
        empty = table is None or (table.empty if isinstance(table, pd.DataFrame)
                                  else not table[0])
        if not empty or (keep_empty and table is not None):
            self.parts.append(("table", table))

    def plot(self, name: str, png: bytes, *, titled: bool = False) -> None:
        """A PNG named `name` (the file `plots/<name>.png`), with an `<h3>` when `titled`."""
        self.parts.append(("plot", (name, png, titled)))

    def code(self, text: str, language: str = "") -> None:
        self.parts.append(("code", (text, language)))

    @property
    def pngs(self) -> list[tuple[str, bytes]]:
        return [(v[0], v[1]) for kind, v in self.parts if kind == "plot"]

    def rendered(self, html: bool) -> dict[str, Any]:
        parts: list[tuple[str, Any, Any]] = []
        for kind, value in self.parts:
            if kind == "table":
                parts.append((kind, html_table(value) if html else markdown_table(value), None))
            elif kind == "plot":
                name, png, titled = value
                parts.append((kind, name, (base64.b64encode(png).decode(), titled)
                              if html else None))
            elif kind == "code":
                parts.append((kind, value[0], value[1]))
            else:
                parts.append((kind, value, None))
        return {"id": self.id, "title": self.title, "parts": parts}


def write_page(out: Path, stem: str, title: str, intro: str,
               sections: list[Section]) -> tuple[Path, Path]:
    """Write `<stem>.html`, `<stem>.md` and every plot to `out/plots/`; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    for s in sections:
        for name, png in s.pngs:
            atomic_write_bytes(out / "plots" / f"{name}.png", png)
    html_path, md_path = out / f"{stem}.html", out / f"{stem}.md"
    page = HTML.render(title=title, css=CSS, intro=intro.replace("`", ""),
                       sections=[s.rendered(html=True) for s in sections])
    text = MARKDOWN.render(title=title, intro=intro,
                           sections=[s.rendered(html=False) for s in sections])
    atomic_write_bytes(md_path, text.encode())
    atomic_write_bytes(html_path, page.encode())
    return html_path, md_path
