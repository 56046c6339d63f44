"""No command deletes or overwrites anything it did not write, and no saved model can be edited unnoticed.

The hostile-user cases of issue 13 that lost data: store names that are paths, removal of store entries
the store did not create, --out folders holding a user's files, an interrupted --overwrite, orphaned
compare workers, names too long for the file system. Each target has sentinel files next to it and
inside it; every refusal is one line on stderr with exit status 2, and the sentinels are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import transferlab
from transferlab.artifacts import add_model, load_model_folder, remove_model, save_model_folder
from transferlab.artifacts.model_folder import seal_config
from transferlab.artifacts.ownership import MANIFEST, STORE_MARKER
from transferlab.cli import app
from transferlab.errors import ArtifactError, ConfigError
from transferlab.models import wrap_module

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny dataset (3 classes of 8×8 bands), a pretrained mlp and a model fine-tuned from it."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.uniform(0, 0.3, size=(len(y), 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 2 * c : 2 * c + 3] += 0.5
    np.savez(root / "d.npz", x=x, y=y)
    train = transferlab.TrainConfig(epochs=1)
    transferlab.pretrain(str(root / "d.npz"), backbone="mlp", backbone_config={"hidden": [16]}, out=root / "src", train=train)
    transferlab.finetune(root / "src", str(root / "d.npz"), strategy="linear-probe", out=root / "tuned", train=train)
    return {"root": root, "data": root / "d.npz", "src": root / "src", "tuned": root / "tuned"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` (links not followed) with a hash of its bytes: what must not change."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


def one_line_error(result, *needles: str) -> str:
    """A refusal: exit status 2, one line on stderr, no traceback, naming each needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def cli(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


# ---- the store: names are names; only entries the store created are removed ---------------------------------


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../victim", "/tmp", "a\\b", ".hidden"])
def test_store_names_are_names_never_paths(world, tmp_path, monkeypatch, name):
    parent = tmp_path / "P"
    home = parent / "home"
    home.mkdir(parents=True)
    (parent / "config.json").write_text("{}")  # issue case 1: the store's parent holds a config.json
    (parent / "thesis.txt").write_text("years of work")
    (home / "config.json").write_text("{}")  # issue case 2: the store root itself holds one
    (parent / "victim").mkdir()
    (parent / "victim" / "config.json").write_text("{}")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    before = snapshot(tmp_path)
    one_line_error(cli("models", "remove", name), f"store name {name!r} is not allowed", "pass a name such as")
    one_line_error(cli("models", "add", world["src"], "--name", name), f"store name {name!r} is not allowed")
    with pytest.raises(ConfigError, match="is not allowed: a store name is a plain name"):
        remove_model(name)
    assert snapshot(tmp_path) == before


def test_remove_takes_only_entries_the_store_created(world, tmp_path, isolated_store):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    add_model(world["src"], "made-by-store")
    add_model(world["src"], "neighbour")
    (isolated_store / "notes.txt").write_text("next to the entries")
    assert (isolated_store / "made-by-store" / STORE_MARKER).is_file()

    shutil.copytree(world["src"], isolated_store / "copied-by-hand")  # a model folder the store did not create
    copied = snapshot(isolated_store / "copied-by-hand")
    line = one_line_error(cli("models", "remove", "copied-by-hand"), "was not created by the store",
                          f"rm -r {isolated_store / 'copied-by-hand'}")
    assert "it was not removed" in line and snapshot(isolated_store / "copied-by-hand") == copied
    one_line_error(cli("models", "add", world["src"], "--name", "copied-by-hand", "--overwrite"),
                   "was not created by the store")
    assert snapshot(isolated_store / "copied-by-hand") == copied

    (isolated_store / "made-by-store" / "my-notes.txt").write_text("a user's file inside an entry")
    one_line_error(cli("models", "remove", "made-by-store"), "holds files transferlab did not write (my-notes.txt)")
    assert (isolated_store / "made-by-store" / "my-notes.txt").read_text() == "a user's file inside an entry"
    (isolated_store / "made-by-store" / "my-notes.txt").unlink()

    shutil.copytree(isolated_store / "neighbour", outside / "model")  # marker and all
    (isolated_store / "linked").symlink_to(outside / "model")
    target = snapshot(outside)
    one_line_error(cli("models", "remove", "linked"), "store entry 'linked' is a symbolic link", "remove the link by hand")
    assert snapshot(outside) == target and (isolated_store / "linked").is_symlink()

    done = cli("models", "remove", "made-by-store")
    assert done.exit_code == 0, done.output
    assert not (isolated_store / "made-by-store").exists()
    assert (isolated_store / "neighbour" / "config.json").is_file() and (isolated_store / "notes.txt").is_file()
    assert snapshot(outside) == target


def test_models_add_copies_only_the_model_files(world, tmp_path, isolated_store):
    folder = tmp_path / "m"
    shutil.copytree(world["src"], folder)
    (folder / "checkpoint.pt").write_bytes(b"a stale training checkpoint")
    (folder / "notes.txt").write_text("not part of the model")
    dest = add_model(folder, "clean")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [STORE_MARKER, "README.md", "config.json", "model.safetensors", "source_head.safetensors"])
    load_model_folder(dest)


def test_a_store_home_that_is_a_file_or_unwritable_is_one_line(world, tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    one_line_error(cli("models", "add", world["src"]), f"the model store {home} is a file, not a folder",
                   "set TRANSFERLAB_HOME to a writable folder")
    one_line_error(cli("finetune", "minilm", "--data", world["data"]), "is a file, not a folder")  # first minilm use
    assert home.read_text() == "not a folder"
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home / "models"))  # under a file: cannot be created
    one_line_error(cli("models", "add", world["src"]), "cannot create the folder", "Not a directory")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv("TRANSFERLAB_HOME", str(locked))
        one_line_error(cli("finetune", "minilm", "--data", world["data"]), "is not writable")


# ---- integrity: config.json and the weights are exactly as saved --------------------------------------------


def _copy(world, tmp_path, which="tuned") -> Path:
    folder = tmp_path / which
    shutil.copytree(world[which], folder)
    return folder


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize("edit", [
    lambda c: c.update(label_names=["2", "1", "0"]),
    lambda c: c["preprocessing"].update(image_size=60000),
    lambda c: c["architecture"]["head"].update(dropout=0.5),
    lambda c: c.pop("config_sha256"),
])
def test_an_edited_config_is_detected_at_load(world, tmp_path, edit):
    folder = _copy(world, tmp_path)
    config = _config(folder)
    edit(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    with pytest.raises(ArtifactError, match=r"config.json was edited after it was saved: its fields hash to sha256 "
                                             r"[0-9a-f]{64} but config_sha256 records .*restore the original config.json"):
        load_model_folder(folder)
    one_line_error(cli("predict", folder, world["data"]), "was edited after it was saved")


def _rewrite_weights(folder: Path, change) -> None:
    """Change the weights file and re-hash everything (a forger who knows the format): only the tensor record stops it."""
    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "transferlab.model"})
    config = _config(folder)
    config["weights"]["sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(seal_config(config)))


@pytest.mark.parametrize("change,message", [
    (lambda t: t.update(extra=torch.zeros(3)), r"holds tensor 'extra' \(float32 \[3\]\) that config.json does not record"),
    (lambda t: t.update({"head.evil": torch.zeros(2)}), r"holds tensor 'head.evil'"),
    (lambda t: t.pop("head.out.bias"), r"lacks tensor 'head.out.bias' that config.json records"),
    (lambda t: t.update({"head.out.bias": t["head.out.bias"].double()}),
     r"tensor 'head.out.bias' is float64 \[3\] but config.json records float32 \[3\]"),
])
def test_the_weights_hold_exactly_the_recorded_tensors(world, tmp_path, isolated_store, change, message):
    folder = _copy(world, tmp_path)
    _rewrite_weights(folder, change)
    with pytest.raises(ArtifactError, match=message):
        load_model_folder(folder)
    one_line_error(cli("models", "add", folder, "--name", "x"), "model.safetensors")
    assert not (isolated_store / "x").exists()


def test_models_add_verifies_a_wrapped_user_module_folder(tmp_path, isolated_store):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU())
    backbone = wrap_module(net, input_shape=(4,))
    save_model_folder(tmp_path / "user", backbone=backbone, head=None, head_spec=None,
                                  info={"label_names": [], "preprocessing": {}, "metrics": {}})
    assert _config(tmp_path / "user")["architecture"]["backbone"] is None
    add_model(tmp_path / "user", "fine")  # a good one is stored
    (tmp_path / "user" / "model.safetensors").write_bytes(b"garbage")  # issue case 7: stored with exit 0 before
    one_line_error(cli("models", "add", tmp_path / "user", "--name", "bad"), "fails its checksum")
    assert not (isolated_store / "bad").exists()


def test_a_folder_of_the_previous_format_is_refused_with_the_fix(world, tmp_path):
    folder = _copy(world, tmp_path)
    config = _config(folder)
    config["format_version"] = 1
    config.pop("config_sha256")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"older transferlab \(format_version 1\).*save the model again"):
        load_model_folder(folder)


def _as_previous_format(folder) -> None:
    config = _config(folder)
    config["format_version"] = 1
    config.pop("config_sha256")
    (folder / "config.json").write_text(json.dumps(config))


def test_a_store_copy_of_a_packaged_or_hf_model_in_the_previous_format_is_written_again(tiny_bert_path, isolated_store):
    from transferlab.artifacts.store import resolve_model

    ref = f"hf:{tiny_bert_path}"
    first = resolve_model(ref)
    assert first.parent == isolated_store
    _as_previous_format(first)  # as an older transferlab left it in the store it created
    again = resolve_model(ref)
    assert again == first and _config(again)["format_version"] == 2
    assert load_model_folder(again).backbone is not None  # loads: the user had nothing to delete


def test_a_previous_format_store_copy_from_before_store_markers_is_written_again(tiny_bert_path, isolated_store):
    from transferlab.artifacts.ownership import STORE_MARKER
    from transferlab.artifacts.store import resolve_model

    ref = f"hf:{tiny_bert_path}"
    folder = resolve_model(ref)
    _as_previous_format(folder)
    (folder / STORE_MARKER).unlink()  # format 1 copies predate the marker: recognised by their recorded origin
    assert _config(resolve_model(ref))["format_version"] == 2 and (folder / STORE_MARKER).is_file()


def test_a_previous_format_store_folder_the_store_did_not_create_is_never_removed(tiny_bert_path, isolated_store):
    from transferlab.artifacts.ownership import STORE_MARKER
    from transferlab.artifacts.store import resolve_model

    ref = f"hf:{tiny_bert_path}"
    folder = resolve_model(ref)
    _as_previous_format(folder)
    (folder / STORE_MARKER).unlink()  # a folder someone put there by hand, with a file of their own
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"was not created by the store.*it was not removed"):
        resolve_model(ref)
    assert (folder / "notes.txt").read_text() == "mine" and _config(folder)["format_version"] == 1


# ---- --out folders: only what transferlab wrote is replaced; foreign content is refused ----------------------


def _compare_args(world, pretrained, out) -> list:
    return ["compare", pretrained, "--data", world["data"], "--strategies", "scratch,linear-probe", "--shots", "1",
            "--seeds", "1", "--epochs", "1", "--out", out, "--quiet"]


def _user_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text("my: settings\n")
    (folder / "results.csv").write_text("my,results\n1,2\n")
    (folder / "report.html").write_text("<p>my report</p>")


@pytest.mark.parametrize("force", [False, True])
def test_compare_never_replaces_a_users_files_in_out(world, tmp_path, monkeypatch, force):
    """Issue case 3: `compare ... --out .` in a folder holding the user's config.yaml, results.csv, report.html."""
    work = tmp_path / "work"
    _user_files(work)
    (tmp_path / "beside.txt").write_text("next to --out")
    before = snapshot(tmp_path)
    monkeypatch.chdir(work)
    result = cli(*_compare_args(world, world["src"], "."), *(["--force"] if force else []))
    one_line_error(result, "holds files transferlab did not write (config.yaml, report.html, results.csv)",
                   "choose a new or empty folder for --out")
    assert snapshot(tmp_path) == before


def test_compare_of_a_model_inside_out_deletes_nothing(world, tmp_path, monkeypatch):
    """Issue case 4: the pretrained model to compare lives in --out (models/src); it used to end with an empty folder."""
    work = tmp_path / "work"
    _user_files(work)
    shutil.copytree(world["src"], work / "models" / "src")
    before = snapshot(work)
    monkeypatch.chdir(work)
    for extra in ([], ["--force"]):
        one_line_error(cli(*_compare_args(world, "models/src", "."), *extra), "(config.yaml, models, report.html, results.csv)")
        assert snapshot(work) == before


def test_compare_out_that_is_a_file(world, tmp_path):
    (tmp_path / "results").write_text("a file")
    one_line_error(cli(*_compare_args(world, world["src"], tmp_path / "results")), "is a file", "folder path")
    assert (tmp_path / "results").read_text() == "a file"


def test_compare_force_removes_only_what_compare_wrote(world, tmp_path):
    out = tmp_path / "cmp"
    (tmp_path / "beside.txt").write_text("next to --out")
    done = cli(*_compare_args(world, world["src"], out), "--save-models")
    assert done.exit_code == 0, done.output
    assert {"runs.sqlite", "report.html", MANIFEST, "models"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("the user's notes")
    (out / "models" / "scratch-1shot" / "plot.png").write_bytes(b"the user's plot")
    before = snapshot(tmp_path)
    one_line_error(cli(*_compare_args(world, world["src"], out), "--force"), "notes.txt",
                   "models/scratch-1shot/plot.png")
    one_line_error(cli("report", out), "notes.txt")  # rebuilding rewrites the report: same rule
    assert snapshot(tmp_path) == before
    (out / "notes.txt").unlink()
    (out / "models" / "scratch-1shot" / "plot.png").unlink()
    done = cli(*_compare_args(world, world["src"], out), "--force", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["ran"] == 2 and (tmp_path / "beside.txt").read_text() == "next to --out"


def test_a_comparison_written_before_manifests_is_resumed(world, tmp_path):
    out = tmp_path / "cmp"
    assert cli(*_compare_args(world, world["src"], out)).exit_code == 0
    (out / MANIFEST).unlink()  # as an older transferlab left it: recognised by its runs.sqlite
    done = cli(*_compare_args(world, world["src"], out), "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["skipped"] == 2 and (out / MANIFEST).is_file()


def test_overwrite_of_a_model_folder_holding_a_users_file_is_refused(world, tmp_path):
    out = _copy(world, tmp_path)
    (out / "my-notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    one_line_error(cli("finetune", world["src"], "--data", world["data"], "--epochs", "1", "--out", out, "--overwrite",
                       "-q"), "holds files transferlab did not write (my-notes.txt)")
    assert snapshot(tmp_path) == before


def test_explain_out_holding_a_users_file_is_refused(world, tmp_path):
    out = tmp_path / "explained"
    out.mkdir()
    (out / "explain.html").write_text("<p>my own page</p>")
    one_line_error(cli("explain", world["tuned"], "--out", out), "holds files transferlab did not write (explain.html)")
    assert (out / "explain.html").read_text() == "<p>my own page</p>"


# ---- an interrupted --overwrite leaves the old folder exactly as it was -------------------------------------


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "transferlab", *map(str, args)]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed; make it longer"
    assert ready(), "no checkpoint appeared in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("linked", [False, True])
def test_sigkill_during_overwrite_keeps_the_old_model_and_resume_works(world, tmp_path, isolated_store, linked):
    real = _copy(world, tmp_path)
    out = real
    if linked:  # a symlinked --out stands for its target
        out = tmp_path / "link"
        out.symlink_to(real)
    (tmp_path / "beside.txt").write_text("next to --out")
    before = snapshot(real)
    env = dict(os.environ, TRANSFERLAB_THREADS="1")
    args = ["finetune", world["src"], "--data", world["data"], "--strategy", "full", "--epochs", "60",
            "--batch-size", "4", "--checkpoint-every", "5", "--out", out, "--overwrite", "-q"]
    checkpoint = tmp_path / f".{real.name}.run" / "checkpoint.pt"  # run-private, beside --out
    proc = subprocess.Popen(_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, checkpoint.is_file)
    assert snapshot(real) == before  # exactly as it was: no checkpoint.pt inside, nothing changed
    assert (tmp_path / "beside.txt").read_text() == "next to --out"
    assert out.is_symlink() == linked
    one_line_error(cli(*args[:-2]), "has an unfinished run", "pass --resume to continue it")  # neither flag
    resumed = subprocess.run(_cmd(*args, "--resume"), env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert not checkpoint.parent.exists() and "checkpoint.pt" not in os.listdir(real)
    assert _config(real)["training"]["strategy"] == "full" and out.is_symlink() == linked
    stored = add_model(out, "resumed")
    assert "checkpoint.pt" not in os.listdir(stored)


# ---- compare --jobs: workers die with their parent -----------------------------------------------------------


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`: --jobs workers are forked from a fork server, the comparison's child."""
    found, todo = set(), [pid]
    while todo:
        below = _children(todo.pop()) - found
        found |= below
        todo += below
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's bookkeeping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_compare_workers_die_when_the_parent_is_killed(world, tmp_path):
    """Issue case 9: kill -9 of `compare --jobs 2` left ~550 MB workers training on for minutes."""
    args = ["compare", world["src"], "--data", world["data"], "--strategies", "full,linear-probe", "--shots", "all",
            "--seeds", "4", "--epochs", "3000", "--jobs", "2", "--threads", "1", "--out", tmp_path / "cmp", "--quiet"]
    proc = subprocess.Popen(_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        below = _descendants(proc.pid)  # the fork server, its workers (grandchildren), the resource tracker
        workers = below - _children(proc.pid)
        if len(workers) >= 2 and any((tmp_path / "cmp").glob("runs.sqlite")):
            break
        time.sleep(0.1)
    assert proc.poll() is None and len(workers) >= 2, "the workers did not start in time"
    time.sleep(1.0)  # inside their initializer by now, or training
    workers = _descendants(proc.pid)  # every process the comparison started must end with it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    survivors = [p for p in workers if _alive(p)]
    for p in survivors:  # don't leave them to slow down the rest of the suite
        os.kill(p, signal.SIGKILL)
    assert survivors == []


# ---- names too long for the file system are refused before any work -----------------------------------------


@pytest.mark.parametrize("length", [300, 245])
def test_a_too_long_out_name_is_refused_before_any_work(world, tmp_path, length):
    """A 245-byte name is valid for the system, but not with the temporary names a save needs: refused at once."""
    name = "n" * length
    for args in (["pretrain", "--data", world["data"], "--backbone", "mlp", "--epochs", "1", "--out", tmp_path / name],
                 ["finetune", world["src"], "--data", world["data"], "--epochs", "1", "--out", tmp_path / name],
                 _compare_args(world, world["src"], tmp_path / name)):
        one_line_error(cli(*args), f"--out name '{name[:37]}…' is {length} bytes long; at most 231 are allowed",
                       "choose a shorter name")
    assert os.listdir(tmp_path) == []  # no checkpoint-only folder, no run folder


def test_the_longest_allowed_name_trains_and_saves(world, tmp_path):
    out = tmp_path / ("n" * 231)
    done = cli("pretrain", "--data", world["data"], "--backbone", "mlp", "--epochs", "2", "--out", out, "-q")
    assert done.exit_code == 0, done.output
    done = cli("pretrain", "--data", world["data"], "--backbone", "mlp", "--epochs", "2", "--out", out, "-q", "--overwrite")
    assert done.exit_code == 0, done.output
    assert sorted(os.listdir(tmp_path)) == [out.name] and load_model_folder(out).kind == "pretrained"
