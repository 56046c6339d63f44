"""Repeatability: the same seed and thread count give bit-identical weights and metrics, and every run
record (--json, a model folder's config.json, a comparison's runs.sqlite rows) holds what the numbers
depend on: seed, threads, torch version and platform."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.engine import TrainConfig

ENVIRONMENT_KEYS = {"threads", "torch", "numpy", "python", "platform", "machine", "cpu"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """12×12 images of 3 classes (each lights a band of rows), as an .npz."""
    root = tmp_path_factory.mktemp("det")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.integers(0, 60, size=(len(y), 12, 12)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 4 * c : 4 * c + 4] = 200
    np.savez(root / "d.npz", x=x, y=y)
    return root / "d.npz"


@pytest.mark.parametrize("backbone,config,threads", [("mlp", {"hidden": [32], "dropout": 0.2}, 1),
                                                     ("cnn", {"channels": [4, 8], "hidden": 16}, 1),
                                                     ("cnn", {"channels": [4, 8], "hidden": 16}, 2)])
def test_same_seed_and_threads_give_bit_identical_weights_and_metrics(backbone, config, threads, images, tmp_path):
    cfg = TrainConfig(epochs=3, seed=7, threads=threads, batch_size=16)
    transferlab.pretrain(str(images), backbone=backbone, backbone_config=config, out=tmp_path / "src", train=cfg)
    results, weights = [], []
    for run in ("a", "b"):
        out = tmp_path / f"ft-{run}"
        results.append(transferlab.finetune(tmp_path / "src", str(images), strategy="full", shots=10, out=out,
                                            train=TrainConfig(epochs=8, seed=3, threads=threads, batch_size=8)))
        weights.append(load_file(str(out / "model.safetensors")))
    a, b = weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [[{k: v for k, v in h.items() if k != "elapsed_seconds"} for h in r.history] for r in results]
    assert strip[0] == strip[1] and len(strip[0]) == 8
    assert (results[0].test_accuracy, results[0].val_accuracy, results[0].macro_f1) == \
           (results[1].test_accuracy, results[1].val_accuracy, results[1].macro_f1)
    # a different seed does change the weights: the comparison above can fail
    other = transferlab.finetune(tmp_path / "src", str(images), strategy="full", shots=10, out=tmp_path / "ft-c",
                                 train=TrainConfig(epochs=8, seed=4, threads=threads, batch_size=8))
    c = load_file(str(tmp_path / "ft-c" / "model.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert [{k: v for k, v in h.items() if k != "elapsed_seconds"} for h in other.history] != strip[0]


def _check_environment(env: dict, threads: int) -> None:
    assert set(env) >= ENVIRONMENT_KEYS
    assert env["threads"] == threads and env["torch"] == torch.__version__
    assert env["platform"] == platform.platform() and env["python"] == platform.python_version() and env["cpu"]


def test_every_run_record_holds_seed_threads_versions_and_platform(images, tmp_path):
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    pre = run("pretrain", "--data", images, "--backbone", "mlp", "--hidden", "8", "--epochs", "1", "--seed", "5",
              "--threads", "2", "--out", tmp_path / "src", "--json")
    assert pre["seed"] == 5 and pre["threads"] == 2
    _check_environment(pre["environment"], 2)
    ft = run("finetune", tmp_path / "src", "--data", images, "--epochs", "1", "--seed", "6", "--threads", "1",
             "--out", tmp_path / "tgt", "--json")
    assert ft["seed"] == 6 and ft["threads"] == 1
    _check_environment(ft["environment"], 1)
    for folder, seed, threads in ((tmp_path / "src", 5, 2), (tmp_path / "tgt", 6, 1)):
        training = json.loads((folder / "config.json").read_text())["training"]
        assert training["train"]["seed"] == seed and training["train"]["threads"] == threads
        _check_environment(training["environment"], threads)
    run("compare", tmp_path / "src", "--data", images, "--strategies", "linear-probe", "--shots", "2", "--seeds", "2",
        "--epochs", "1", "--threads", "1", "--out", tmp_path / "cmp", "--json")
    from transferlab.compare.run_store import RunStore

    with RunStore(tmp_path / "cmp" / "runs.sqlite") as store:
        rows = store.runs()
    assert sorted((r["strategy"], r["seed"]) for r in rows) == [("linear-probe", 0), ("linear-probe", 1),
                                                                ("scratch", 0), ("scratch", 1)]
    for row in rows:
        assert row["threads"] == 1
        _check_environment(row["environment"], 1)
