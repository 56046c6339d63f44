"""Messages a user meets (Ctrl-C, a wrong column, finetune without --out) and progress on every long step."""

from __future__ import annotations

import csv
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab import api
from transferlab.cli import app
from transferlab.engine import TrainConfig
from transferlab.engine.progress import ProgressEvent, _bar, progress_steps, resolve_progress, short
from transferlab.errors import ConfigError, DataError

runner = CliRunner()


def _images(n_per_class: int, classes: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 60, size=(len(y), size, size)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, c * 3 : (c + 1) * 3] = 220
    return x, y


@pytest.fixture(scope="module")
def image_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("msg")
    x, y = _images(20, 3, 9, seed=0)
    np.savez(root / "data.npz", x=x, y=y)
    api.pretrain(str(root / "data.npz"), backbone="mlp", backbone_config={"hidden": [16]}, out=root / "src",
                 train=TrainConfig(epochs=2), progress=False)
    api.finetune(root / "src", str(root / "data.npz"), strategy="linear-probe", out=root / "tgt",
                 train=TrainConfig(epochs=2), progress=False)
    return root


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_ctrl_c_names_the_exact_resume_command(monkeypatch, tmp_path, command):
    monkeypatch.setattr(api, command, _interrupt)
    out = tmp_path / "run"
    args = ["pretrain", "--data", "digits", "--epochs", "3", "--out", str(out)] if command == "pretrain" else \
        ["finetune", "models/src", "--data", "digits", "--shots", "5", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 130
    said = res.stderr.strip()
    assert f"the last checkpoint is in {out}" in said
    resume = shlex.split(said.split("Continue with: ", 1)[1])
    pairs = lambda argv: sorted(zip(argv[2::2], argv[3::2])) if command == "pretrain" else sorted(zip(argv[3::2], argv[4::2]))  # noqa: E731
    assert resume[:2] == ["transferlab", command] and resume[-1] == "--resume"
    assert resume[1 : 2 if command == "pretrain" else 3] == args[: 1 if command == "pretrain" else 2]
    assert pairs(resume[:-1]) == pairs(["transferlab", *args])  # the same options (in the command's order)


def test_ctrl_c_without_out_and_in_compare(monkeypatch, tmp_path):
    monkeypatch.setattr(api, "finetune", _interrupt)
    res = runner.invoke(app, ["finetune", "models/src", "--data", "digits"])
    assert res.exit_code == 130 and "nothing was saved" in res.stderr and "--out DIR" in res.stderr
    import transferlab.cli_compare as support

    monkeypatch.setattr(support, "compare_from_cli", _interrupt)
    args = ["compare", "models/src", "--data", "digits", "--out", str(tmp_path / "cmp"), "--seeds", "2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 130
    again = shlex.split(res.stderr.split("Continue with the same command: ", 1)[1])
    assert again[:3] == ["transferlab", "compare", "models/src"] and sorted(again[3:]) == sorted(args[2:])


def test_finetune_without_out_says_nothing_was_saved(image_models):
    res = runner.invoke(app, ["finetune", str(image_models / "src"), "--data", str(image_models / "data.npz"),
                              "--strategy", "linear-probe", "--epochs", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "nothing was saved: pass --out DIR to save the fine-tuned model" in res.stderr
    saved = runner.invoke(app, ["finetune", str(image_models / "src"), "--data", str(image_models / "data.npz"),
                                "--strategy", "linear-probe", "--epochs", "1", "--quiet",
                                "--out", str(image_models / "saved")])
    assert saved.exit_code == 0 and "nothing was saved" not in saved.stderr


def test_wrong_text_column_lists_the_columns(tmp_path):
    from transferlab.data import load_task

    path = tmp_path / "sms.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["message", "label"], ["free entry now", "spam"], ["see you soon", "ham"]])
    with pytest.raises(DataError, match=r"no text column 'text_body' \(--text-column\); columns found: 'message', "
                                        r"'label'.*--text-column NAME"):
        load_task(str(path), text_column="text_body")
    # the default column is absent: the file is read as numeric features, and the error lists the columns
    with pytest.raises(DataError, match=r"column 'message' is 'free entry now', not a number.*columns found: "
                                        r"message, label.*--text-column message"):
        load_task(str(path))
    from transferlab.data import load_inputs

    with pytest.raises(DataError, match=r"columns found: 'message', 'label'"):
        load_inputs(path, text_column="text_body")
    res = runner.invoke(app, ["finetune", "minilm", "--data", str(path), "--text-column", "body"])
    assert res.exit_code == 2 and "columns found: 'message', 'label'" in " ".join(res.stderr.split())


def test_progress_values_and_the_80_column_bar():
    assert resolve_progress(None, quiet=True) is False and resolve_progress(None, quiet=False) is True
    assert resolve_progress(False, quiet=False) is False
    with pytest.raises(ConfigError, match="progress must be True, False, None or a callable.*got 'yes'"):
        resolve_progress("yes")
    events: list[ProgressEvent] = []
    with progress_steps("work", total=3, progress=events.append) as advance:
        advance(2)
        advance()
    assert [(e.done, e.total) for e in events] == [(0, 3), (2, 3), (3, 3)] and events[-1].what == "work"
    for with_status in (True, False):
        bar = _bar(with_status=with_status)
        task = bar.add_task(short("setfit(iterations=20, max_pairs=1280, pair_lr=2e-05, pair_batch_size=16)"),
                            total=2000, status="loss 0.0018 val 0.9123")
        bar.update(task, completed=1234)
        with bar.console.capture() as captured:
            bar.console.print(bar.get_renderable())
        lines = captured.get().rstrip("\n").splitlines()
        assert lines and all(len(line) <= 80 for line in lines)
        assert "setfit(iterations=20" in lines[0] and "1234/2000" in lines[0]
        assert ("val 0.9123" in lines[0]) == with_status


def test_evaluate_and_predict_report_progress(image_models):
    events: list[ProgressEvent] = []
    result = api.evaluate(image_models / "tgt", progress=events.append)
    assert events[-1].done == events[-1].total == result.n and "evaluate" in events[-1].what
    events.clear()
    x, _ = _images(3, 3, 9, seed=5)
    np.savez(image_models / "new.npz", x=x)
    rows = api.predict(image_models / "tgt", image_models / "new.npz", progress=events.append)
    assert events[-1].done == events[-1].total == len(rows) == 9


def test_text_caching_and_setfit_pairs_report_progress(tiny_bert_path):
    from conftest import make_text_task
    from transferlab.data import split_task
    from transferlab.engine.run import train_run
    from transferlab.models import create_backbone
    from transferlab.strategies import create_strategy
    from transferlab.data.task import InputSpec

    split = split_task(make_text_task(), shots=4, seed=0)
    for strategy, step in (("linear-probe", "embed texts"), ("setfit", "setfit pairs")):
        events: list[ProgressEvent] = []
        backbone = create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path))
        options = {"iterations": 2} if strategy == "setfit" else {}
        train_run(backbone, split, create_strategy(strategy, **options), TrainConfig(epochs=2), progress=strategy,
                  progress_to=events.append)
        mine = [e for e in events if e.what.startswith(step)]
        assert mine and mine[-1].done == mine[-1].total > 0, [e.what for e in events]
        epochs = [e for e in events if e.what == strategy]
        assert epochs[-1].done == epochs[-1].total == 2 and epochs[-1].status.startswith("loss ")
