"""Bad input is refused before the first training step: one table, driven through the command line.

Each row is a user mistake (a file with bad labels or values, a wrong shape, a damaged pretrained
folder, an option that does not exist). Through `transferlab pretrain|finetune` it must end in one line
on stderr naming the file and the row, column or array at fault — exit status 2, no traceback — and
the training loop must never have been entered, nor --out created.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.engine import TrainConfig
from transferlab.artifacts.model_folder import seal_config


def _npz(tmp: Path, name: str = "bad.npz", **arrays) -> str:
    np.savez(tmp / name, **arrays)
    return str(tmp / name)


def _good(n: int = 12, classes: int = 3, features: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), n)
    return rng.random((len(y), features)).astype(np.float32), y


def _text(tmp: Path, name: str, content: bytes) -> str:
    (tmp / name).write_bytes(content)
    return str(tmp / name)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A pretrained mlp for 4-feature vectors (the source of the finetune rows)."""
    root = tmp_path_factory.mktemp("src")
    x, y = _good(20)
    np.savez(root / "d.npz", x=x, y=y)
    transferlab.pretrain(str(root / "d.npz"), backbone="mlp", backbone_config={"hidden": [8]}, out=root / "m",
                         train=TrainConfig(epochs=1, threads=1))
    return root / "m"


def _damaged(tmp: Path, pretrained: Path, keep: Callable[[str], bool], rename: bool = False) -> str:
    """A copy of `pretrained` whose weights keep only some tensors (or rename all); its checksum is made to match."""
    from safetensors.torch import load_file, save_file

    folder = tmp / "damaged"
    shutil.copytree(pretrained, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors = {(f"backbone.other{i}" if rename else k): v for i, (k, v) in enumerate(tensors.items()) if keep(k)}
    save_file(tensors, str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    config["weights"]["sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(seal_config(config)))
    return str(folder)


def _image_folder(tmp: Path) -> str:
    from PIL import Image

    root = tmp / "images"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return str(root)


def _x_with(value: float, at: tuple[int, int]) -> np.ndarray:
    x, _ = _good()
    x[at] = value
    return x


# (id, how to build the command line, what the one-line error must contain). {out} is the --out folder.
Case = tuple[str, Callable[[Path, Path], list[str]], list[str]]
PRETRAIN = ["pretrain", "--backbone", "mlp", "--epochs", "1", "--quiet"]
CASES: list[Case] = [
    ("label-negative", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=np.r_[_good()[1][:-1], -1])],
     ["bad.npz", "y[35]", "-1"]),
    ("label-float", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=np.r_[0.5, _good()[1][1:]])],
     ["bad.npz", "y[0]", "0.5"]),
    ("label-out-of-range", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=np.r_[1e300, _good()[1][1:]])],
     ["bad.npz", "y[0]", "1e+300"]),
    ("label-missing-csv", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"a,b,label\n1,2,0\n3,4,\n5,6,1\n")],
     ["bad.csv", "line 3", "'label'", "empty"]),
    ("label-column-missing", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"a,b,kind\n1,2,0\n3,4,1\n")],
     ["bad.csv", "no label column 'label'", "a, b, kind"]),
    ("class-not-in-data", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=_good()[1]), "--classes", "0,7"],
     ["7"]),
    ("feature-nan", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_x_with(np.nan, (5, 2)), y=_good()[1])],
     ["bad.npz", "x[5, 2]", "nan"]),
    ("feature-inf-csv", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"a,b,label\n1,2,0\n3,inf,1\n")],
     ["bad.csv", "line 3", "'b'", "inf"]),
    ("feature-not-a-number", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"a,b,label\n1,2,0\n3,x7,1\n")],
     ["bad.csv", "line 3", "'b'", "x7"]),
    ("split-empty", lambda t, p: PRETRAIN + ["--data", _npz(t, x=np.zeros((0, 4), np.float32), y=np.zeros(0, int))],
     ["bad.npz", "'x'", "no examples"]),
    ("test-split-empty", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=_good()[1],
                                                                 x_test=np.zeros((0, 4)), y_test=np.zeros(0, int))],
     ["bad.npz", "'x_test'", "no examples"]),
    ("single-class", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=np.zeros(36, int))],
     ["bad", "1 class", "at least two classes"]),
    ("fewer-than-shots", lambda t, p: ["finetune", str(p), "--data", _npz(t, x=_good()[0], y=_good()[1]),
                                       "--shots", "50", "--quiet"],
     ["bad", "class '0'", "fewer than shots=50", "--shots"]),
    ("ragged", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=_good()[1][:-1])],
     ["bad.npz", "'x' has 36 rows", "'y' has 35"]),
    ("wrong-shape", lambda t, p: PRETRAIN + ["--data", _npz(t, x=np.zeros((36, 2, 2, 2, 2)), y=_good()[1])],
     ["bad.npz", "'x' has shape (36, 2, 2, 2, 2)"]),
    ("labels-2d", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0][:12], y=_good()[1].reshape(12, 3))],
     ["bad.npz", "'y' has shape (12, 3)"]),
    ("input-does-not-fit", lambda t, p: ["finetune", str(p), "--data", _npz(t, x=_good(features=5)[0], y=_good()[1]),
                                         "--quiet"],
     ["bad", "5-feature", "expects 4-feature", "/m'"]),
    ("pretrained-no-key-matches", lambda t, p: ["finetune", _damaged(t, p, lambda k: True, rename=True), "--data",
                                                _npz(t, x=_good()[0], y=_good()[1]), "--quiet"],
     ["damaged/model.safetensors", "holds tensor 'backbone.other0'", "that config.json does not record"]),
    ("pretrained-some-keys-missing", lambda t, p: ["finetune", _damaged(t, p, lambda k: "bias" not in k), "--data",
                                                   _npz(t, x=_good()[0], y=_good()[1]), "--quiet"],
     ["damaged/model.safetensors", "lacks tensor", "bias", "that config.json records"]),
    ("unknown-strategy", lambda t, p: ["finetune", str(p), "--data", _npz(t, x=_good()[0], y=_good()[1]),
                                       "--strategy", "nope"],
     ["unknown strategy 'nope'"]),
    ("option-not-taken", lambda t, p: ["finetune", str(p), "--data", _npz(t, x=_good()[0], y=_good()[1]),
                                       "--strategy", "full", "--freeze", "1"],
     ["strategy 'full' does not take option(s) ['freeze']"]),
    ("unknown-optimizer", lambda t, p: PRETRAIN + ["--data", _npz(t, x=_good()[0], y=_good()[1]), "--optimizer", "lbfgs"],
     ["--optimizer 'lbfgs'", "adam"]),
    ("text-empty-line", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"text,label\nhello,a\n   ,b\nhi,b\n")],
     ["bad.csv", "line 3", "'text'", "empty"]),
    ("text-jsonl-empty-text", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.jsonl",
                                                                      b'{"text": "a", "label": 1}\n{"text": "", "label": 2}\n')],
     ["bad.jsonl", "line 2", "'text'", "empty"]),
    ("text-bad-encoding", lambda t, p: PRETRAIN + ["--data", _text(t, "bad.csv", b"text,label\nhello,a\ncaf\xe9,b\n")],
     ["bad.csv", "not valid UTF-8", "line 3"]),
    ("image-does-not-decode", lambda t, p: PRETRAIN + ["--data", _image_folder(t)], ["broken.png"]),
]


@pytest.mark.parametrize("case_id,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_refused_before_the_first_training_step(case_id, argv, expected, tmp_path, pretrained, monkeypatch):
    import transferlab.engine.run as run

    entered = []

    def no_training(*args, **kwargs):
        entered.append(case_id)
        raise AssertionError("the training loop was entered")

    monkeypatch.setattr(run, "fit", no_training)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [*argv(tmp_path, pretrained), "--out", str(out)])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1  # one line, no traceback
    missing = [e for e in expected if e not in message]
    assert not missing, f"the error does not name {missing}: {message}"
    assert entered == [] and not out.exists()


def test_the_table_is_large_enough_and_its_guard_works(tmp_path, pretrained, monkeypatch):
    """≥ 15 rows; and a valid command does reach the (patched) training loop, so the guard can fail."""
    import transferlab.engine.run as run

    assert len(CASES) >= 15
    entered = []
    monkeypatch.setattr(run, "fit", lambda *a, **k: entered.append(1) or (_ for _ in ()).throw(KeyboardInterrupt))
    x, y = _good()
    result = CliRunner().invoke(app, PRETRAIN + ["--data", _npz(tmp_path, "ok.npz", x=x, y=y), "--out",
                                                 str(tmp_path / "out")])
    assert entered == [1] and result.exit_code == 130
