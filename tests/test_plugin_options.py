"""Every option of every registered strategy and backbone is a CLI flag generated from its config dataclass.

No plug-in or option name is hard-coded in the walks: they read the registries, so a new plug-in is
walked automatically.
"""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import transferlab.api
import transferlab.cli_compare
from transferlab.cli import app
from transferlab.errors import ConfigError
from transferlab.plugin_options import PluginOption, assign_options, plugin_options, shared_names

runner = CliRunner()


class Captured(Exception):
    """Raised by the stand-ins below: the command got as far as calling the API."""


def _sample(o: PluginOption) -> tuple[list[str], object]:
    """Command-line words that set option `o` to a value other than its default, and that value."""
    if o.base is bool and not o.is_list:
        return ([o.flag] if not o.default else ["--no-" + o.flag[2:]]), not o.default
    if o.choices:
        value = [c for c in o.choices if c != o.default][-1]
        return [o.flag, value], value
    one = {int: lambda d: 2 * d if isinstance(d, int) and d else 3,
           float: lambda d: d / 2 if isinstance(d, float) and d else 0.25,
           str: lambda d: "x-value"}[o.base]
    if o.is_list:
        value = [one(d) for d in o.default] if o.default else [one(None), one(None)]
        return [o.flag, ",".join(str(v) for v in value)], value
    value = one(o.default)
    return [o.flag, str(value)], value


def _capture(monkeypatch, module, name):
    seen = {}

    def stand_in(*args, **kwargs):
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(module, name, stand_in)
    return seen


def _invoke(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, Captured), result.output
    return result


STRATEGY_OPTIONS = plugin_options("strategy")
BACKBONE_OPTIONS = plugin_options("backbone")


@pytest.mark.parametrize("option", STRATEGY_OPTIONS, ids=lambda o: f"{o.owner}.{o.name}")
def test_every_strategy_option_reaches_finetune(option, monkeypatch):
    words, value = _sample(option)
    seen = _capture(monkeypatch, transferlab.api, "finetune")
    _invoke(["finetune", "model", "--data", "d", "--strategy", option.owner, *words])
    assert seen["strategy"] == option.owner and seen["strategy_options"] == {option.name: value}
    if option.name in shared_names(STRATEGY_OPTIONS):  # the qualified flag works too
        _invoke(["finetune", "model", "--data", "d", "--strategy", option.owner, option.qualified_flag, *words[1:]])
        assert seen["strategy_options"] == {option.name: value}


@pytest.mark.parametrize("option", STRATEGY_OPTIONS, ids=lambda o: f"{o.owner}.{o.name}")
def test_every_strategy_option_reaches_the_comparison_grid(option, monkeypatch):
    words, value = _sample(option)
    seen = {}

    def stand_in(config, out, **kwargs):
        seen["config"] = config
        raise Captured

    monkeypatch.setattr(transferlab.cli_compare, "run_with_progress", stand_in)
    from transferlab.strategies import strategy_class

    unlabeled = ["--unlabeled-data", "train"] if strategy_class(option.owner).needs_unlabeled else []  # domain adaptation
    _invoke(["compare", "model", "--data", "d", "--out", "o", "--strategies", option.owner, *unlabeled, *words])
    spec = next(s for s in seen["config"].strategies if s.name == option.owner)
    assert spec.options == {option.name: value}


@pytest.mark.parametrize("option", BACKBONE_OPTIONS, ids=lambda o: f"{o.owner}.{o.name}")
def test_every_backbone_option_reaches_pretrain(option, monkeypatch):
    from transferlab.cli_options import RESERVED

    words, value = _sample(option)
    if words[0] in RESERVED["backbone"]:  # pretrain has a flag of that name (--image-size): the qualified one is the option's
        words[0] = option.qualified_flag
    seen = _capture(monkeypatch, transferlab.api, "pretrain")
    _invoke(["pretrain", "--data", "d", "--backbone", option.owner, *words])
    assert seen["backbone"] == option.owner and seen["backbone_config"] == {option.name: value}
    if option.name in shared_names(BACKBONE_OPTIONS):
        _invoke(["pretrain", "--data", "d", "--backbone", option.owner, option.qualified_flag, *words[1:]])
        assert seen["backbone_config"] == {option.name: value}


def _parser_flags(command: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[command]
    return {opt for p in cmd.params if p.param_type_name == "option" for opt in p.opts + p.secondary_opts}


@pytest.mark.parametrize("kind, listing, commands", [("strategy", "strategies", ["finetune", "compare"]),
                                                     ("backbone", "backbones", ["pretrain"])])
def test_what_the_listings_show_is_what_the_parsers_accept(kind, listing, commands):
    rows = json.loads(runner.invoke(app, [listing, "--json"]).stdout)[listing]
    fields = [f for r in rows for f in (r["options"] if kind == "strategy" else r["fields"])]
    listed = {flag for f in fields for flag in f["flags"]}
    assert len(fields) == len(plugin_options(kind)) and all(f["type"] and f["help"] for f in fields)
    from transferlab.cli_options import RESERVED

    # a plain flag a command already has for itself (--image-size) is not the option's: its qualified flag is
    generated = ({o.flag for o in plugin_options(kind)} - RESERVED[kind]) | {o.qualified_flag for o in plugin_options(kind)}
    for command in commands:
        accepted = _parser_flags(command)
        assert listed <= accepted
        # every generated plug-in flag the parser has is listed (no hidden, unlisted spelling)
        assert {f for f in accepted & generated if not f.startswith("--no-")} <= listed | {"--strategy", "--backbone"}


def test_old_spellings_and_distinct_names_for_clashing_options(monkeypatch):
    seen = _capture(monkeypatch, transferlab.api, "finetune")
    for strategy, words, options in [("lora", ["--alpha", "4"], {"alpha": 4.0}),
                                     ("l2-sp", ["--alpha", "0.5"], {"alpha": 0.5}),
                                     ("lora", ["--lora-alpha", "4"], {"alpha": 4.0}),
                                     ("l2-sp", ["--l2sp-alpha", "0.5", "--beta", "0.1"], {"alpha": 0.5, "beta": 0.1}),
                                     ("partial", ["--freeze", "2"], {"freeze": 2}),
                                     ("add-layers", ["--hidden", "32,16", "--freeze-backbone"],
                                      {"hidden": [32, 16], "freeze_backbone": True}),
                                     ("add-layers", ["--hidden", "16", "--activation", "tanh"],
                                      {"hidden": [16], "activation": "tanh"})]:
        _invoke(["finetune", "m", "--data", "d", "--strategy", strategy, *words])
        assert seen["strategy_options"] == options
    seen = _capture(monkeypatch, transferlab.api, "pretrain")
    for backbone, words, options in [("cnn", ["--hidden", "16", "--channels", "4,8"], {"hidden": 16, "channels": [4, 8]}),
                                     ("mlp", ["--hidden", "16", "--activation", "tanh"], {"hidden": [16], "activation": "tanh"}),
                                     ("hf:/some/folder", ["--max-length", "32"], {"path": "/some/folder", "max_length": 32})]:
        _invoke(["pretrain", "--data", "d", "--backbone", backbone, *words])
        assert seen["backbone_config"] == {k: v for k, v in options.items() if k != "path"}


def _fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())


def test_ambiguous_and_misplaced_flags_are_refused_with_the_fix():
    msg = _fails("compare", "m", "--data", "d", "--out", "o", "--strategies", "lora,l2-sp", "--alpha", "2")
    assert "--alpha is ambiguous: it is an option of strategys 'lora', 'l2-sp'" in msg.replace("strategies", "strategys")
    assert "say which: --lora-alpha or --l2sp-alpha" in msg
    msg = _fails("finetune", "m", "--data", "d", "--strategy", "l2-sp", "--lora-alpha", "2")
    assert "--lora-alpha is an option of strategy 'lora', which is not chosen here (l2-sp)" in msg
    msg = _fails("finetune", "m", "--data", "d", "--strategy", "full", "--freeze", "1")
    assert "strategy 'full' does not take option(s) ['freeze'] ('freeze' is an option of ['partial'])" in msg
    msg = _fails("finetune", "m", "--data", "d", "--strategy", "add-layers", "--hidden", "32,x")
    assert "--hidden of strategy 'add-layers' takes a comma-separated list of int values; got '32,x'" in msg
    msg = _fails("pretrain", "--data", "d", "--backbone", "cnn", "--hidden", "16,8")
    assert "--hidden of backbone 'cnn' takes int value; got '16,8'" in msg
    assert "Invalid value for '--rank'" in _fails("finetune", "m", "--data", "d", "--strategy", "lora", "--rank", "x")
    with pytest.raises(ConfigError, match=r"--freeze applies to no strategy in \['full', 'lora'\]"):
        assign_options("strategy", ["full", "lora"], {"freeze": 2}, {})


def test_help_groups_options_in_panels_with_real_types():
    out = runner.invoke(app, ["finetune", "--help"], env={"COLUMNS": "200"}).stdout
    for panel in ("Data", "Training", "Strategy options", "Output"):
        assert f"─ {panel} " in out
    for option in STRATEGY_OPTIONS:
        assert option.flag in out
    assert "--pair-batch-size" in out and "INT,..." in out
    out = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"}).stdout
    assert "─ Backbone options " in out and "--max-length" in out and "<relu|tanh|sigmoid|gelu>" in out


@pytest.mark.parametrize("command", ["pretrain", "finetune", "compare"])
def test_every_flag_of_a_long_command_sits_in_a_named_panel(command):
    """Only --help and the output switches stay in the generic panel: each other flag is in Data, Training, ... ."""
    import re

    out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    generic = out.split("─ Options ", 1)[1].split("╰", 1)[0] if "─ Options " in out else ""
    flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", generic))
    assert flags <= {"--help", "--json", "--quiet", "--threads", "--no-quiet"}, f"{command}: {sorted(flags)} in no panel"
