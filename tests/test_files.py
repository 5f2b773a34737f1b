"""Run files: strict JSON and unique default run directories."""

import json
import math
from datetime import datetime

from mlplab.run import default_run_dir
from mlplab.spec import parse_spec
from mlplab.train.checkpoint import read_json, write_json


def test_json_files_are_strict_json(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"r2": math.nan, "curve": [1.0, math.inf], "pair": (2, -math.inf)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"r2": None, "curve": [1.0, None], "pair": [2, None]}
    assert read_json(path)["curve"] == [1.0, None]


def test_default_run_dir_never_reuses_an_existing_directory(tmp_path, monkeypatch):
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 22, 9, 30, 0)

    monkeypatch.setattr("mlplab.run.datetime", FrozenClock)
    spec = parse_spec({"name": "x", "data": {"source": "sklearn:iris"}})
    first = default_run_dir(spec, tmp_path)
    assert first.name == "x-20261122-093000"
    first.mkdir()
    second = default_run_dir(spec, tmp_path)
    assert second.name == "x-20261122-093000-2" and not second.exists()
