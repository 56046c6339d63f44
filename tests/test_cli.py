"""End to end through the command line: pretrain → finetune → evaluate → predict, on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab.cli import app

runner = CliRunner()


def _images(n_per_class: int, classes: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images; class c lights band c of rows (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 60, size=(len(y), size, size)).astype(np.uint8)
    band = size // classes
    for i, c in enumerate(y):
        x[i, c * band : (c + 1) * band] = 220
    return x, y


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    x, y = _images(40, 4, 12, seed=0)
    np.savez(root / "source.npz", x=x, y=y)
    x, y = _images(30, 3, 8, seed=1)
    np.savez(root / "target.npz", x=x, y=np.array(["cat", "dog", "eel"])[y])
    xp, _ = _images(2, 3, 8, seed=2)
    np.savez(root / "new.npz", x=xp)
    return {"source": root / "source.npz", "target": root / "target.npz", "new": root / "new.npz"}


def invoke(*args: str) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def fails(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return " ".join(result.stderr.split())


def test_pretrain_finetune_evaluate_predict(tmp_path, datasets):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    pre = invoke("pretrain", "--data", datasets["source"], "--backbone", "cnn", "--channels", "4,8", "--hidden", "16",
                 "--epochs", "3", "--image-size", "16", "--out", src, "--json")
    assert set(pre) >= {"out", "val_accuracy", "train_seconds", "epochs"}
    assert pre["out"] == str(src) and pre["epochs"] == 3 and 0 <= pre["val_accuracy"] <= 1

    ft = invoke("finetune", src, "--data", datasets["target"], "--shots", "5", "--strategy", "partial", "--freeze", "1",
                "--image-size", "16", "--image-margin", "2", "--epochs", "20", "--lr", "0.01", "--out", tgt, "--json")
    assert set(ft) >= {"out", "strategy", "shots", "val_accuracy", "test_accuracy", "train_seconds",
                       "trainable_params", "total_params"}
    assert ft["strategy"] == "partial" and ft["shots"] == 5
    assert 0 < ft["trainable_params"] < ft["total_params"]
    assert ft["test_accuracy"] >= 0.9  # the bands are easy to tell apart

    ev = invoke("evaluate", tgt, "--data", datasets["target"], "--json")
    assert set(ev) == {"test_accuracy", "macro_f1", "n", "balanced_accuracy", "majority_rate", "warnings"}
    assert ev["warnings"] == [] and 0 < ev["majority_rate"] < ev["test_accuracy"] and 0 < ev["balanced_accuracy"] <= 1
    assert ev["test_accuracy"] == pytest.approx(ft["test_accuracy"])  # same fixed test split, same preprocessing
    assert ev["n"] == 18  # 20% of 30 per class, 3 classes

    pred = invoke("predict", tgt, datasets["new"], "--json")["predictions"]
    assert [p["label"] for p in pred] == ["cat", "cat", "dog", "dog", "eel", "eel"]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in pred)

    cfg = json.loads((tgt / "config.json").read_text())
    assert cfg["label_names"] == ["cat", "dog", "eel"]
    assert cfg["preprocessing"]["image_size"] == 16 and cfg["training"]["strategy"] == "partial"


def test_human_output_and_store(tmp_path, datasets):
    src = tmp_path / "src"
    result = runner.invoke(app, ["pretrain", "--data", str(datasets["source"]), "--backbone", "mlp", "--hidden", "16",
                                 "--epochs", "2", "--out", str(src), "--quiet"])
    assert result.exit_code == 0 and "pretrained mlp" in result.stdout and str(src) in result.stdout
    assert "added" in runner.invoke(app, ["models", "add", str(src), "--name", "tiny-src"]).stdout
    listed = invoke("models", "--json")
    assert [m["name"] for m in listed["models"] if not m.get("packaged")] == ["tiny-src"]
    # a store name works wherever a model path does
    ft = invoke("finetune", "tiny-src", "--data", datasets["source"], "--shots", "3", "--strategy", "linear-probe",
                "--epochs", "2", "--json")
    assert ft["out"] is None and ft["strategy"] == "linear-probe"
    assert "removed" in runner.invoke(app, ["models", "remove", "tiny-src"]).stdout
    listing = runner.invoke(app, ["models"]).stdout
    assert "tiny-src" not in listing and "minilm" in listing and "efficientnet-lite0" in listing and "packaged" in listing


def test_listings():
    names = [d["name"] for d in invoke("datasets", "--json")["datasets"]]
    assert {"mnist5k", "digits"} <= set(names)
    strategies = invoke("strategies", "--json")["strategies"]
    assert [s["name"] for s in strategies][:1] == ["scratch"]
    partial = next(s for s in strategies if s["name"] == "partial")
    assert partial["options"][0]["name"] == "freeze"
    assert {b["name"] for b in invoke("backbones", "--json")["backbones"]} == {"mlp", "cnn", "minilm", "hf", "efficientnet-lite0", "hf-vision"}


def test_user_errors_are_one_line_with_the_fix(tmp_path, datasets):
    src = tmp_path / "src"
    invoke("pretrain", "--data", datasets["source"], "--backbone", "mlp", "--hidden", "8", "--epochs", "1",
           "--out", src, "--json")
    # input shape that doesn't fit the backbone: 8×8 target, 12×12 source
    msg = fails("finetune", src, "--data", datasets["target"], "--json")
    assert "expects 1×12×12" in msg and "--image-size 12" in msg
    msg = fails("finetune", src, "--data", datasets["target"], "--strategy", "full", "--freeze", "1", "--image-size", "12")
    assert "strategy 'full' does not take option(s) ['freeze']" in msg
    msg = fails("finetune", src, "--data", datasets["target"], "--strategy", "nope", "--image-size", "12")
    assert "unknown strategy 'nope'" in msg
    msg = fails("finetune", src, "--data", datasets["target"], "--shots", "99", "--image-size", "12")
    assert "--shots" in msg and "99" in msg
    msg = fails("finetune", src, "--data", datasets["target"], "--shots", "zero", "--image-size", "12")
    assert "zero" in msg
    msg = fails("pretrain", "--data", tmp_path / "missing.npz", "--out", tmp_path / "x")
    assert "missing.npz" in msg and "no such file" in msg
    msg = fails("pretrain", "--data", datasets["source"], "--backbone", "mlp", "--epochs", "1", "--out", src)
    assert "already exists; pass --overwrite" in msg
    msg = fails("evaluate", src, "--data", datasets["source"])
    assert "pretrained backbone without an output layer" in msg and "transferlab finetune" in msg
    msg = fails("evaluate", tmp_path / "nowhere")
    assert "no model" in msg
    msg = fails("pretrain", "--data", datasets["source"], "--backbone", "mlp", "--optimizer", "lbfgs", "--out", tmp_path / "y")
    assert "--optimizer 'lbfgs' is not one of" in msg


def test_import_is_light_and_console_script_runs():
    code = "import sys, transferlab; heavy = [m for m in ('torch', 'mlxtend', 'sklearn', 'typer') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    out = subprocess.run([sys.executable, "-m", "transferlab", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("pretrain", "finetune", "evaluate", "predict", "models", "datasets", "demo"):
        assert command in out
