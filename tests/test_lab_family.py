"""Named families (`[family.<name>]`): exactly the variants to compare, instead of a grid."""

from __future__ import annotations

import json

import pytest
from lab_util import tiny_sweep, toml_text

import mlplab
from mlplab.errors import SpecError
from mlplab.lab.results import load_results
from mlplab.lab.spec import load_sweep, parse_sweep
from mlplab.lab.store import Store

FAMILIES = {"mlp": {}, "swiglu": {"model.block": "swiglu"},
            "deep-plain": {"model.block": "plain", "model.depth": 2}}


def named(**override):
    return tiny_sweep(axes=None, family=FAMILIES, **override)


def test_named_families_keep_their_names_and_values():
    spec = parse_sweep(named())
    assert spec.labelled_families() == list(FAMILIES.items())
    assert spec.families() == list(FAMILIES.values())
    assert spec.label_of({"model.block": "swiglu"}) == "swiglu"


def test_family_tables_in_toml(tmp_path):
    path = tmp_path / "fam.toml"
    path.write_text(toml_text(tiny_sweep(axes=None)) + """
[family.mlp]
[family.swiglu]
"model.block" = "swiglu"
[family.deep-plain]
"model.block" = "plain"
"model.depth" = 2
""")
    assert load_sweep(path).labelled_families() == list(FAMILIES.items())


@pytest.mark.parametrize("override,message", [
    ({"axes": {"model.depth": [1, 2]}}, "either \\[axes\\] or named"),
    ({"family": {"a/b": {}}}, "family: name 'a/b' must be"),
    ({"family": {"x": {"model.blok": "plain"}}}, "family.x: 'model.blok' is not a run-spec field"),
    ({"family": {"x": {"model.width": 8}}}, "'model.width' is solved from the budget"),
    ({"family": {"x": {"model.block": "nope"}}}, "family 'x'.*unknown block 'nope'"),
    ({"search": {"n_trials": 2, "space": {"model.block": {"choices": ["standard"]}}}},
     "already an axis or a family's field"),
])
def test_bad_family_specs_name_the_problem(override, message):
    spec = {**named(), **override}
    with pytest.raises(SpecError, match=message):
        parse_sweep(spec)


def test_a_family_alone_makes_a_sweep():
    spec = parse_sweep(named(budget=None))
    assert spec.budget is None and len(spec.families()) == 3


def test_named_family_sweep_runs_and_reports_its_labels(tmp_path):
    spec = named(budget={"params": [6e3]}, seeds=[0])
    result = mlplab.sweep(spec, out=tmp_path / "s", workers=0)
    assert result.counts == {"done": 3}
    runs = load_results(tmp_path / "s").runs
    assert sorted(runs["family"]) == sorted(FAMILIES)
    plain = runs[runs["family"] == "deep-plain"].iloc[0]
    assert plain["spec"]["model"]["block"] == "plain" and plain["spec"]["model"]["depth"] == 2
    again = mlplab.sweep(spec, out=tmp_path / "s", workers=0)  # everything stored: skipped
    assert again.counts == {"done": 3}


def test_a_store_written_before_named_families_still_accepts_its_sweep(tmp_path):
    spec = parse_sweep(tiny_sweep()).model_dump(mode="json")
    old = {k: v for k, v in spec.items() if k != "family"}
    store = Store(str(tmp_path / "lab.sqlite"))
    try:
        first = store.ensure_sweep("tiny", old, {})
        assert store.ensure_sweep("tiny", spec, {}) == first
        changed = {**spec, "family": {"a": {}}, "axes": {}}
        with pytest.raises(SpecError, match="different spec"):
            store.ensure_sweep("tiny", changed, {})
    finally:
        store.close()


def test_a_store_written_before_newer_spec_fields_still_resumes(tmp_path):
    """Fields added to the spec language later (here `inspect`, `model.block_options`) get
    their defaults when the stored spec is compared, so an older store keeps resuming."""
    sweep = parse_sweep(tiny_sweep())
    spec = sweep.model_dump(mode="json")
    old = json.loads(json.dumps(spec))
    old["base"].pop("inspect")
    old["base"]["model"].pop("block_options")
    assert old != spec
    store = Store(str(tmp_path / "lab.sqlite"))
    try:
        first = store.ensure_sweep("tiny", old, {})
        again = store.ensure_sweep("tiny", spec, {}, normalise=lambda s: type(sweep).model_validate(
            s).model_dump(mode="json"))
        assert again == first
        with pytest.raises(SpecError, match="different spec"):  # without it: refused
            store.ensure_sweep("tiny", spec, {})
    finally:
        store.close()
