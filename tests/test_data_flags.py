"""One data-options object: every command that reads data takes DataOptions' fields as generated flags, the
API takes a DataOptions (or the same names as keywords), compare's YAML reads the same names.

No field or command is listed here: the fields come from DataOptions, the commands from the CLI app.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import MISSING, fields

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from conftest import make_task
from transferlab import api
from transferlab.analysis import advise, rank
from transferlab.cli import app
from transferlab.cli_options import DATA_COMMANDS
from transferlab.compare.config import resolve_config
from transferlab.data import DataOptions
from transferlab.errors import ConfigError

runner = CliRunner()
FIELDS = {f.name: f for f in fields(DataOptions)}
HINTS = typing.get_type_hints(DataOptions)


def _other_value(name: str):
    """A value of field `name`'s type that is not its default (what a user would pass to change it)."""
    hint, default = HINTS[name], FIELDS[name].default
    if typing.get_origin(hint) is typing.Literal:
        return next(c for c in typing.get_args(hint) if c != default)
    kinds = set(typing.get_args(hint)) or {hint}
    if int in kinds:
        return (default or 0) + 17
    return f"x-{name}"


def _commands() -> dict[str, typer.models.CommandInfo]:
    return {c.callback.__name__: c for c in app.registered_commands}


def _click_params(name: str) -> dict[str, object]:
    command = typer.main.get_command(app).commands[_commands()[name].name or name.replace("_", "-")]
    return {opt: p for p in command.params for opt in p.opts}


def _reading_data() -> list[str]:
    """The commands that read a dataset: those with a --data option."""
    return [name for name in _commands() if "--data" in _click_params(name)]


def test_every_command_reading_data_takes_every_field_or_says_why():
    readers = _reading_data()
    assert len(readers) >= 5  # pretrain, finetune, evaluate, compare, rank, advise, explain: found, not listed
    for name in readers:
        declared = DATA_COMMANDS.get(name)
        assert declared is not None, f"`{name}` reads data but its Data flags are not generated from DataOptions"
        flags = _click_params(name)
        for field in FIELDS:
            flag = "--" + field.replace("_", "-")
            if field in declared.omitted:
                assert declared.omitted[field].strip(), f"`{name}` leaves out {flag} without a reason"
                assert flag not in flags
            else:
                assert flag in flags, f"`{name}` has no {flag}"
                assert flags[flag].help, f"`{name}` {flag} has no help"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny pretrained and fine-tuned model, and the .npz they were trained on."""
    from transferlab.engine import TrainConfig

    root = tmp_path_factory.mktemp("data-flags")
    task = make_task(n_per_class=12, n_test_per_class=4)
    data = root / "data.npz"
    x = np.concatenate([task.x_pool, task.x_test])[:, 0]
    np.savez(data, x=(x * 255).astype(np.uint8), y=np.concatenate([task.y_pool, task.y_test]))
    cfg = TrainConfig(epochs=1, batch_size=16)
    api.pretrain(str(data), out=root / "pre", backbone="mlp", backbone_config={"hidden": [8]}, train=cfg, progress=False)
    api.finetune(root / "pre", str(data), out=root / "ft", train=cfg, progress=False)
    return {"pretrained": str(root / "pre"), "finetuned": str(root / "ft"), "data": str(data), "root": root}


class _Read(Exception):
    pass


@pytest.fixture
def read_options(monkeypatch):
    """The DataOptions a command reads its dataset with (the command stops there)."""
    seen: list[DataOptions] = []

    def load(self, data, **extra):
        seen.append(self)
        raise _Read

    monkeypatch.setattr(DataOptions, "load", load)
    return seen


def _invocation(name: str, folders, tmp_path) -> list[str]:
    """The command with its arguments (a fine-tuned model where its help says so, else the pretrained one), --data, --out."""
    params = _click_params(name)
    command = typer.main.get_command(app).commands[name]
    args = [name]
    for p in command.params:
        if p.param_type_name == "argument":
            args.append(folders["finetuned"] if "fine-tuned" in (getattr(p, "help", "") or "") else folders["pretrained"])
    args += ["--data", folders["data"]]
    if "--out" in params:
        args += ["--out", str(tmp_path / f"out-{name}")]
    return args


def test_every_data_flag_reaches_the_options_the_data_is_read_with(folders, read_options, tmp_path):
    for name in _reading_data():
        declared = DATA_COMMANDS[name]
        given = {field: _other_value(field) for field in declared.fields}
        flags = [str(a) for field, value in given.items() for a in ("--" + field.replace("_", "-"), value)]
        read_options.clear()
        result = runner.invoke(app, _invocation(name, folders, tmp_path) + flags)
        assert read_options, f"`{name}` did not read its data through DataOptions: {result.output}"
        got = read_options[0]
        for field, value in given.items():
            assert getattr(got, field) == value, f"`{name}` --{field.replace('_', '-')} {value} read as {getattr(got, field)!r}"


# The API: data_options, or the same names as keywords; both given and different → refused, naming both.
API_FUNCTIONS = [api.pretrain, api.finetune, rank, advise]


def _call(fn, folders, tmp_path, **kwargs):
    if fn is api.pretrain:
        return fn(folders["data"], out=tmp_path / "p", progress=False, **kwargs)
    if fn is rank:
        return fn([folders["pretrained"]], folders["data"], **kwargs)
    return fn(folders["pretrained"], folders["data"], **kwargs)


@pytest.mark.parametrize("fn", API_FUNCTIONS, ids=lambda f: f.__name__)
def test_api_takes_data_options_and_the_same_names_as_keywords(fn, folders, read_options, tmp_path):
    names = set(inspect.signature(fn).parameters)
    assert "data_options" in names
    taken = [f for f in FIELDS if f in names]
    assert set(FIELDS) - set(taken) <= {"target"}  # the analyses score classes; every other field is a keyword
    options = DataOptions(**{f: _other_value(f) for f in taken if f != "classes"})
    with pytest.raises(_Read):
        _call(fn, folders, tmp_path, data_options=options)
    assert read_options[-1] == options
    with pytest.raises(_Read):  # a keyword equal to data_options' value is no conflict
        _call(fn, folders, tmp_path, data_options=options, image_size=options.image_size)
    with pytest.raises(_Read):  # the keywords alone, as the README shows them
        _call(fn, folders, tmp_path, image_size=24, image_margin=2)
    assert (read_options[-1].image_size, read_options[-1].image_margin) == (24, 2)


@pytest.mark.parametrize("fn", API_FUNCTIONS, ids=lambda f: f.__name__)
def test_api_refuses_data_options_and_a_different_keyword(fn, folders, tmp_path):
    with pytest.raises(ConfigError, match=r"image_size=32 and data_options\.image_size=28 disagree.*data_options, or as "
                                          r"the keyword image_size"):
        _call(fn, folders, tmp_path, data_options=DataOptions(image_size=28), image_size=32)
    with pytest.raises(ConfigError, match=r"data_options must be a DataOptions; got \{'image_size': 28\}"):
        _call(fn, folders, tmp_path, data_options={"image_size": 28})


def test_analyses_refuse_a_numeric_target(folders, tmp_path):
    with pytest.raises(ConfigError, match="the analyses score class labels; got target='numeric'"):
        _call(rank, folders, tmp_path, data_options=DataOptions(target="numeric"))


def test_analyses_read_every_option_a_model_folder_recorded_and_the_caller_overrides_it():
    """forgetting, explain, what-transferred and the domain-adaptation source rows read a dataset as a folder's
    `preprocessing` (or a comparison's config) recorded it: every DataOptions field, not a hand-picked few."""
    from transferlab.analysis.target import TargetSpec

    recorded = {f: _other_value(f) for f in FIELDS if f != "target"} | {"scale": 255.0, "channels": 1}
    spec = TargetSpec.recorded("data.csv", recorded)
    assert spec.options == DataOptions(**{f: v for f, v in recorded.items() if f in FIELDS})
    given = TargetSpec.recorded("data.csv", recorded, label_column="y", text_column=None, test_data="t.csv")
    assert (given.label_column, given.text_column, given.test_data) == ("y", recorded["text_column"], "t.csv")
    text = {"image_size": None, "image_margin": None, "classes": None, "text_column": "sentence", "label_column": "label"}
    assert TargetSpec.recorded("s.csv", text).image_margin == 0  # a text model records no margin: the default
    with pytest.raises(ConfigError, match="the analyses score class labels; got target='numeric'"):
        TargetSpec.recorded("data.csv", {"target": "numeric"})


def test_compare_yaml_reads_the_same_names_into_the_same_object(tmp_path):
    omitted = DATA_COMMANDS["compare"].omitted
    given = {f: _other_value(f) for f in FIELDS if f not in omitted}
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump({"pretrained": "p", "data": "digits", "strategies": ["full"], **given}))
    config, _ = resolve_config(path, {}, None, {})
    assert config.data_options == DataOptions(**given)
    flag = {"image_margin": 1}  # a flag given overrides the file's value, by the same name
    assert resolve_config(path, flag, None, {})[0].data_options.image_margin == 1


def test_data_flags_show_real_types_and_choices():
    for name in _reading_data():
        flags = _click_params(name)
        for field in DATA_COMMANDS[name].fields:
            param = flags["--" + field.replace("_", "-")]
            hint, given = HINTS[field], param.type_descriptor.annotation  # the type typer parses the flag as
            if typing.get_origin(hint) is typing.Literal:
                assert [c.value for c in given] == list(typing.get_args(hint)), f"`{name}` --{field}: {given}"
            elif int in (set(typing.get_args(hint)) or {hint}):
                assert given is int, f"`{name}` --{field}: {given}"
            else:
                assert given is str, f"`{name}` --{field}: {given}"
            default = None if DATA_COMMANDS[name].recorded or FIELDS[field].default is MISSING else FIELDS[field].default
            assert param.default == default


# Functions reading data as a model folder recorded it take the fields they let a caller override, as keywords
# or in data_options; any other field of data_options must stay at its default.
def _recorded_functions():
    from transferlab.analysis import explain

    return [(api.evaluate, lambda f, kw: api.evaluate(f["finetuned"], f["data"], **kw)),
            (explain, lambda f, kw: explain(f["finetuned"], data=f["data"], **kw)),
            (api.predict, lambda f, kw: api.predict(f["finetuned"], f["data"], **kw))]


@pytest.mark.parametrize("index", range(3))
def test_recorded_readers_take_data_options_for_what_they_let_you_override(index, folders, monkeypatch):
    fn, call = _recorded_functions()[index]
    names = set(inspect.signature(fn).parameters)
    assert "data_options" in names
    overridable = [f for f in FIELDS if f in names]
    assert overridable
    for field in set(FIELDS) - set(overridable):  # what the model recorded is not overridden by data_options
        with pytest.raises(ConfigError, match=rf"{fn.__name__} reads {field} as the model recorded it; got "
                                              rf"data_options\.{field}=.*Leave it at its default"):
            call(folders, {"data_options": DataOptions(**{field: _other_value(field)})})
    field = overridable[0]
    value = _other_value(field)
    with pytest.raises(ConfigError, match=rf"{field}='other' and data_options\.{field}={value!r} disagree"):
        call(folders, {"data_options": DataOptions(**{field: value}), field: "other"})
    assert DataOptions.overrides(DataOptions(**{field: value}), fn.__name__, **{field: None}) == {field: value}
