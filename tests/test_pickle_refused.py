"""A pickle that runs code, put wherever weights or a checkpoint are expected, is never unpickled.

Each fixture file holds an object whose unpickling runs `touch MARKER` (what a poisoned download does).
It is placed where a model's weights, a pretrained backbone or a training checkpoint is read, and loaded
through every public path — the CLI (finetune, evaluate, predict, models add, compare, pretrain/finetune
--resume, pretrain --backbone hf:) and the Python API (load, finetune, evaluate, predict, resume, compare)
— with and without TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (which makes torch.load unpickle anything when a
caller leaves `weights_only` unset). The marker must never appear, and each load must fail with a
transferlab error that names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import transferlab
from transferlab.artifacts import add_model
from transferlab.cli import app
from transferlab.engine import TrainConfig
from transferlab.errors import TransferlabError
from transferlab.artifacts.model_folder import seal_config
from transferlab.artifacts.ownership import record

FORCE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


class RunsCode:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def poisoned_torch_file(path: Path, marker: Path) -> Path:
    """A torch.save file (zip + pickle) whose state dict hides the code-running object."""
    torch.save({"weight": torch.zeros(2), "payload": RunsCode(marker)}, path)
    return path


@dataclass
class World:
    root: Path
    data: Path
    inputs: Path
    pretrained: Path
    finetuned: Path
    bert: Path
    text: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_bert_path) -> World:
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 4)).astype(np.float32) + y[:, None]
    np.savez(root / "d.npz", x=x, y=y)
    np.savez(root / "new.npz", x=x[:3])
    cfg = TrainConfig(epochs=1, seed=0, threads=1)
    transferlab.pretrain(str(root / "d.npz"), backbone="mlp", backbone_config={"hidden": [8]}, out=root / "src", train=cfg)
    transferlab.finetune(root / "src", str(root / "d.npz"), out=root / "tgt", train=cfg)
    words = ["red", "green", "blue"]
    (root / "t.csv").write_text("text,label\n" + "".join(f"a {words[i % 3]} thing {i},{words[i % 3]}\n" for i in range(30)))
    return World(root, root / "d.npz", root / "new.npz", root / "src", root / "tgt", Path(tiny_bert_path), root / "t.csv")


def _rewrite_config(folder: Path, change: Callable[[dict], None]) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(seal_config(config)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- where a poisoned file can be put: each returns (model reference, what the error must name) ----

def weights_replaced(tmp: Path, world: World, marker: Path) -> tuple[str, str]:
    """model.safetensors is a pickle, and config.json's sha256 was updated to match it (a forged folder)."""
    folder = tmp / "forged"
    shutil.copytree(world.finetuned, folder)
    poisoned_torch_file(folder / "model.safetensors", marker)
    _rewrite_config(folder, lambda c: c["weights"].update(sha256=_sha256(folder / "model.safetensors")))
    return str(folder), "model.safetensors"


def weights_renamed(tmp: Path, world: World, marker: Path) -> tuple[str, str]:
    """config.json names a pickled weights file (model.pt) instead of model.safetensors."""
    folder = tmp / "renamed"
    shutil.copytree(world.finetuned, folder)
    poisoned_torch_file(folder / "model.pt", marker)
    _rewrite_config(folder, lambda c: c["weights"].update(file="model.pt", sha256=_sha256(folder / "model.pt")))
    return str(folder), "model.pt"


def pickle_file(suffix: str) -> Callable[[Path, World, Path], tuple[str, str]]:
    def place(tmp: Path, world: World, marker: Path) -> tuple[str, str]:
        """A bare pickled weights file given where a model folder is expected."""
        path = poisoned_torch_file(tmp / f"weights{suffix}", marker)
        return str(path), path.name

    place.__name__ = f"file{suffix.replace('.', '_')}"
    return place


def _pickled_hf_folder(tmp: Path, world: World, marker: Path) -> Path:
    folder = tmp / "hf-pickled"
    shutil.copytree(world.bert, folder)
    (folder / "model.safetensors").unlink()
    poisoned_torch_file(folder / "pytorch_model.bin", marker)
    return folder


def hf_pickled(tmp: Path, world: World, marker: Path) -> tuple[str, str]:
    """A Hugging Face encoder folder whose weights are a pickled pytorch_model.bin (`hf:/path`)."""
    return f"hf:{_pickled_hf_folder(tmp, world, marker)}", "pytorch_model.bin"


def config_to_hf_pickled(tmp: Path, world: World, marker: Path) -> tuple[str, str]:
    """A valid folder (checksum passes) whose config.json builds its backbone from a pickled HF folder."""
    evil = _pickled_hf_folder(tmp, world, marker)
    folder = tmp / "points-to-hf"
    shutil.copytree(world.finetuned, folder)

    def point(config: dict) -> None:
        config["architecture"]["backbone"] = {"name": "hf", "config": {"path": str(evil), "max_length": 32}}
        config["input_spec"] = {"kind": "text", "shape": []}

    _rewrite_config(folder, point)
    return str(folder), "pytorch_model.bin"


MODEL_PLACEMENTS = [weights_replaced, weights_renamed, pickle_file(".pt"), pickle_file(".pth"), pickle_file(".bin"),
                    config_to_hf_pickled]


def _model_commands(ref: str, world: World, tmp: Path) -> dict[str, list[str]]:
    return {
        "finetune": ["finetune", ref, "--data", str(world.data), "--epochs", "1", "--quiet"],
        "evaluate": ["evaluate", ref, "--data", str(world.data)],
        "predict": ["predict", ref, str(world.inputs), "--quiet"],
        "models-add": ["models", "add", ref, "--name", "poisoned"],
        "compare": ["compare", ref, "--data", str(world.data), "--strategies", "scratch", "--shots", "1", "--seeds", "1",
                    "--epochs", "1", "--out", str(tmp / "cmp"), "--quiet"],
    }


def _poisoned_run_folder(tmp: Path, marker: Path) -> Path:
    """--out `run`, whose unfinished run's checkpoint (kept beside it, in `.run.run/`) is poisoned."""
    run = tmp / "run"
    _checkpoint_of(run).parent.mkdir()
    poisoned_torch_file(_checkpoint_of(run), marker)
    return run


def _checkpoint_of(run: Path) -> Path:
    return run.parent / f".{run.name}.run" / "checkpoint.pt"


def _resume_commands(world: World, run: Path) -> dict[str, list[str]]:
    return {
        "finetune-resume": ["finetune", str(world.pretrained), "--data", str(world.data), "--epochs", "1", "--out",
                            str(run), "--resume", "--quiet"],
        "pretrain-resume": ["pretrain", "--data", str(world.data), "--backbone", "mlp", "--epochs", "1", "--out",
                            str(run), "--resume", "--quiet"],
    }


MODEL_COMMANDS = ("finetune", "evaluate", "predict", "models-add", "compare")
CLI_CASES = (
    [(place, command) for place in MODEL_PLACEMENTS for command in MODEL_COMMANDS]
    + [(hf_pickled, command) for command in ("finetune", "evaluate", "predict", "compare")]
    + [(None, command) for command in ("finetune-resume", "pretrain-resume", "pretrain-backbone-hf")]
)


def _cli_case(place, command: str, tmp: Path, world: World, marker: Path) -> tuple[list[str], str]:
    if command in ("finetune-resume", "pretrain-resume"):
        run = _poisoned_run_folder(tmp, marker)
        return _resume_commands(world, run)[command], str(_checkpoint_of(run))
    if command == "pretrain-backbone-hf":
        ref, names = hf_pickled(tmp, world, marker)
        return ["pretrain", "--data", str(world.text), "--backbone", ref, "--out", str(tmp / "out"), "--quiet"], names
    ref, names = place(tmp, world, marker)
    return _model_commands(ref, world, tmp)[command], names


def _check_refused(marker: Path, message: str, names: str) -> None:
    assert not marker.exists(), "the pickle ran: its marker file was created"
    assert names in message, f"the error does not name {names!r}: {message}"


def test_the_poisoned_file_really_runs_code_when_unpickled(tmp_path):
    """Guard: loaded unsafely, the fixture does create its marker — so the tests below can fail."""
    marker = tmp_path / "MARKER"
    path = poisoned_torch_file(tmp_path / "p.pt", marker)
    torch.load(path, weights_only=False)  # deliberately unsafe: what transferlab must never do
    assert marker.exists()


@pytest.mark.parametrize("force", [False, True], ids=["default", FORCE])
@pytest.mark.parametrize("place,command", CLI_CASES,
                         ids=[f"{p.__name__ if p else 'checkpoint'}-{c}" for p, c in CLI_CASES])
def test_cli_never_unpickles(place, command, force, tmp_path, world, monkeypatch):
    if force:
        monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    argv, names = _cli_case(place, command, tmp_path, world, marker)
    result = CliRunner().invoke(app, argv)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)  # one line, not a traceback
    assert message.startswith("error: ") and "Traceback" not in result.output
    _check_refused(marker, message, names)


# The CLI cases whose file reaches torch.load (checkpoints) also run as real processes, with the variable set in
# the child's environment (the others never reach an unpickler: safetensors only, pickled HF weights refused first).
SUBPROCESS_CASES = [(None, "finetune-resume"), (None, "pretrain-resume")]


@pytest.mark.parametrize("place,command", SUBPROCESS_CASES,
                         ids=[f"{p.__name__ if p else 'checkpoint'}-{c}" for p, c in SUBPROCESS_CASES])
def test_cli_process_with_force_variable_never_unpickles(place, command, tmp_path, world):
    marker = tmp_path / "MARKER"
    argv, names = _cli_case(place, command, tmp_path, world, marker)
    env = dict(os.environ, **{FORCE: "1"})
    done = subprocess.run([sys.executable, "-m", "transferlab", *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    _check_refused(marker, " ".join(done.stderr.split()), names)


def test_compare_refuses_a_poisoned_cell_checkpoint(tmp_path, world, monkeypatch):
    """compare resumes cells from OUT/checkpoints/*.pt: a poisoned one fails that cell, naming the file."""
    monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    out = tmp_path / "cmp"
    (out / "checkpoints").mkdir(parents=True)
    cell = poisoned_torch_file(out / "checkpoints" / "scratch-1shot-seed0.pt", marker)
    record(out, {"checkpoints", "checkpoints/scratch-1shot-seed0.pt"})  # a comparison folder compare wrote
    result = CliRunner().invoke(app, ["compare", str(world.pretrained), "--data", str(world.data), "--strategies",
                                      "scratch", "--shots", "1", "--seeds", "1", "--epochs", "1", "--out", str(out),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == 1
    from transferlab.compare.run_store import RunStore

    with RunStore(out / "runs.sqlite") as store:
        failed = store.runs(status="failed")
    assert len(failed) == 1 and failed[0]["error"].startswith("ConfigError: ")
    _check_refused(marker, failed[0]["error"], str(cell))
    assert "could run code" in failed[0]["error"]


# ---- the Python API ----

def _api_calls(world: World, tmp: Path) -> dict[str, Callable[[str], object]]:
    return {
        "load": lambda ref: transferlab.load(ref),
        "finetune": lambda ref: transferlab.finetune(ref, str(world.data), train=TrainConfig(epochs=1)),
        "evaluate": lambda ref: transferlab.evaluate(ref, str(world.data)),
        "predict": lambda ref: transferlab.predict(ref, str(world.inputs)),
        "add_model": lambda ref: add_model(ref, "poisoned"),
    }


API_CASES = [(place, call) for place in [*MODEL_PLACEMENTS, hf_pickled]
             for call in ("load", "finetune", "evaluate", "predict", "add_model")
             if not (place is hf_pickled and call == "add_model")]


@pytest.mark.parametrize("force", [False, True], ids=["default", FORCE])
@pytest.mark.parametrize("place,call", API_CASES, ids=[f"{p.__name__}-{c}" for p, c in API_CASES])
def test_api_never_unpickles(place, call, force, tmp_path, world, monkeypatch):
    if force:
        monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    ref, names = place(tmp_path, world, marker)
    with pytest.raises(TransferlabError) as caught:
        _api_calls(world, tmp_path)[call](ref)
    _check_refused(marker, str(caught.value), names)


@pytest.mark.parametrize("force", [False, True], ids=["default", FORCE])
@pytest.mark.parametrize("call", ["pretrain", "finetune"])
def test_api_resume_never_unpickles(call, force, tmp_path, world, monkeypatch):
    if force:
        monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    run = _poisoned_run_folder(tmp_path, marker)
    cfg = TrainConfig(epochs=1)
    with pytest.raises(TransferlabError, match="could run code") as caught:
        if call == "pretrain":
            transferlab.pretrain(str(world.data), backbone="mlp", out=run, resume=True, train=cfg)
        else:
            transferlab.finetune(world.pretrained, str(world.data), out=run, resume=True, train=cfg)
    _check_refused(marker, str(caught.value), str(_checkpoint_of(run)))


def test_hf_folder_with_both_formats_reads_only_safetensors(tmp_path, world, monkeypatch):
    """A folder with model.safetensors and a poisoned pytorch_model.bin loads from the safetensors, never the pickle."""
    monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    folder = tmp_path / "both"
    shutil.copytree(world.bert, folder)
    poisoned_torch_file(folder / "pytorch_model.bin", marker)
    from transferlab.data.task import InputSpec
    from transferlab.models import create_backbone

    backbone = create_backbone("hf", InputSpec("text", ()), path=str(folder))
    assert backbone.feature_dim == 32 and not marker.exists()


def test_poisoned_data_files_are_refused(tmp_path, world):
    """Inputs are never unpickled either: an .npz holding a pickled object array, a .pkl given as data."""
    marker = tmp_path / "MARKER"
    np.savez(tmp_path / "evil.npz", x=np.array([RunsCode(marker)] * 6, dtype=object), y=np.arange(6))
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(RunsCode(marker), f)
    for argv, names in [
        (["pretrain", "--data", str(tmp_path / "evil.npz"), "--out", str(tmp_path / "o")], "evil.npz"),
        (["predict", str(world.finetuned), str(tmp_path / "evil.npz")], "evil.npz"),
        (["pretrain", "--data", str(tmp_path / "evil.pkl"), "--out", str(tmp_path / "o")], "evil.pkl"),
    ]:
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, result.output
        _check_refused(marker, " ".join(result.stderr.split()), names)


def test_torch_honours_explicit_weights_only_under_the_force_variable(tmp_path, monkeypatch):
    """What the checkpoint loader relies on: with the variable set, weights_only=True still refuses code."""
    monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    path = poisoned_torch_file(tmp_path / "c.pt", marker)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not marker.exists()


def test_error_messages_say_what_to_do(tmp_path, world, monkeypatch):
    """The new refusals read well: a bare weights file, an HF folder whose safetensors is a pickle, a damaged checkpoint."""
    monkeypatch.setenv(FORCE, "1")
    marker = tmp_path / "MARKER"
    path = poisoned_torch_file(tmp_path / "model.pt", marker)
    with pytest.raises(TransferlabError, match=r"model\.pt is a file, not a transferlab model folder.*never unpickles"):
        transferlab.load(path)

    folder = tmp_path / "hf-fake-safetensors"
    shutil.copytree(world.bert, folder)
    poisoned_torch_file(folder / "model.safetensors", marker)
    from transferlab.data.task import InputSpec
    from transferlab.models import create_backbone

    with pytest.raises(TransferlabError, match=r"hf-fake-safetensors could not be loaded as a Hugging Face encoder folder"):
        create_backbone("hf", InputSpec("text", ()), path=str(folder))

    from transferlab.engine.checkpoint import LoopState, load_checkpoint

    torch.save({"format": "transferlab.checkpoint", "config": {"a": 1}, "model": torch.zeros(3)}, tmp_path / "c.pt")
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TransferlabError, match=r"c\.pt is a damaged transferlab checkpoint \(.*\); delete it"):
        load_checkpoint(tmp_path / "c.pt", config={"a": 1}, state=LoopState(), model=model,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None, order=torch.Generator())
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(TransferlabError, match=r"empty\.pt is not a readable transferlab checkpoint"):
        load_checkpoint(tmp_path / "empty.pt", config={"a": 1}, state=LoopState(), model=model,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None, order=torch.Generator())
    assert not marker.exists()
