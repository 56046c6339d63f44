"""Numeric targets (seed §2.1.4: MSE for numbers): data, training, evaluate, predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data import load_task, split_task
from transferlab.errors import DataError

runner = CliRunner()


def _csv(path, n: int, seed: int, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + shift
    lines = ["a,b,c,d,price"] + [",".join(f"{v:.5f}" for v in row) + f",{t:.5f}" for row, t in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")


def test_numeric_task_from_csv_and_npz(tmp_path):
    _csv(tmp_path / "r.csv", 50, 0)
    task = load_task(str(tmp_path / "r.csv"), label_column="price", target="numeric")
    assert task.is_numeric and task.num_outputs == 1 and task.class_names == []
    assert task.y_pool.dtype == np.float32 and len(task.y_test) == 10
    again = load_task(str(tmp_path / "r.csv"), label_column="price", target="numeric")
    assert np.array_equal(task.y_test, again.y_test)  # fixed test split
    split = split_task(task, shots=None, seed=3)
    assert len(split.y_val) == 4 and len(split.y_train) == 36
    np.savez(tmp_path / "r.npz", x=np.random.rand(20, 3), y=np.linspace(0, 1, 20))
    assert load_task(str(tmp_path / "r.npz"), target="numeric").is_numeric


def test_numeric_target_errors(tmp_path):
    (tmp_path / "bad.csv").write_text("a,price\n1,2.5\n2,cheap\n3,4\n")
    with pytest.raises(DataError, match=r"bad.csv: numeric targets must be finite numbers; line 3, column 'price' is 'cheap'"):
        load_task(str(tmp_path / "bad.csv"), label_column="price", target="numeric")
    np.savez(tmp_path / "nan.npz", x=np.random.rand(5, 2), y=np.array([1, 2, np.nan, 4, 5]))
    with pytest.raises(DataError, match=r"nan.npz: numeric targets must be finite numbers; y\[2\] is nan"):
        load_task(str(tmp_path / "nan.npz"), target="numeric")
    with pytest.raises(DataError, match="numeric targets .* are read from an .npz .* or a CSV"):
        load_task("digits", target="numeric")
    _csv(tmp_path / "r.csv", 30, 0)
    with pytest.raises(DataError, match="--classes selects classes, but --target numeric has none"):
        load_task(str(tmp_path / "r.csv"), label_column="price", target="numeric", classes="0-1")
    task = load_task(str(tmp_path / "r.csv"), label_column="price", target="numeric")
    with pytest.raises(DataError, match="--shots 5 draws examples per class, but a numeric target has no classes; use --shots all"):
        split_task(task, shots=5, seed=0)
    with pytest.raises(DataError, match="--target must be 'class' or 'numeric'; got 'ordinal'"):
        load_task(str(tmp_path / "r.csv"), target="ordinal")


def test_regression_end_to_end(tmp_path):
    _csv(tmp_path / "source.csv", 400, 0)
    _csv(tmp_path / "target.csv", 120, 1, shift=3.0)
    common = ["--label-column", "price", "--target", "numeric", "--json"]
    res = runner.invoke(app, ["pretrain", "--data", str(tmp_path / "source.csv"), "--backbone", "mlp", "--hidden", "32",
                              "--dropout", "0", "--epochs", "30", "--lr", "0.01", "--out", str(tmp_path / "src"), *common])
    assert res.exit_code == 0, res.output
    pre = json.loads(res.stdout)
    assert pre["val_accuracy"] is None and pre["test_mse"] < 0.5  # the target variance is ~5.25
    res = runner.invoke(app, ["finetune", str(tmp_path / "src"), "--data", str(tmp_path / "target.csv"), "--strategy",
                              "full", "--epochs", "60", "--lr", "0.01", "--out", str(tmp_path / "tgt"), *common])
    assert res.exit_code == 0, res.output
    ft = json.loads(res.stdout)
    assert ft["test_r2"] > 0.9 and ft["test_accuracy"] is None and ft["shots"] == "all"
    res = runner.invoke(app, ["evaluate", str(tmp_path / "tgt"), "--data", str(tmp_path / "target.csv"),
                              "--label-column", "price", "--json"])
    ev = json.loads(res.stdout)
    assert ev["test_mse"] == pytest.approx(ft["test_mse"], rel=1e-5) and ev["n"] == 24
    res = runner.invoke(app, ["predict", str(tmp_path / "tgt"), str(tmp_path / "target.csv"), "--json"])
    values = [p["value"] for p in json.loads(res.stdout)["predictions"]]
    assert len(values) == 120 and all(isinstance(v, float) for v in values)


def test_cross_entropy_is_refused_for_numbers(tmp_path):
    _csv(tmp_path / "r.csv", 40, 0)
    res = runner.invoke(app, ["pretrain", "--data", str(tmp_path / "r.csv"), "--label-column", "price", "--target",
                              "numeric", "--backbone", "mlp", "--loss", "cross-entropy", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "--loss cross-entropy needs class labels; numeric targets train with --loss mse" in res.stderr
    assert not (tmp_path / "m").exists()
