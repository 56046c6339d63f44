"""--track mlflow|tensorboard: params, per-epoch metrics, final metrics and the model folder, read back from each store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab import TrainConfig, finetune, pretrain
from transferlab.cli import app
from transferlab.errors import ConfigError

pytest.importorskip("mlflow")
runner = CliRunner()


def _images(n_per_class: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 60, size=(len(y), 8, 8)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, c * 2 : c * 2 + 2] = 220
    return x, y


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("track-data")
    x, y = _images(20, 4, 0)
    np.savez(root / "source.npz", x=x, y=y)
    x, y = _images(20, 3, 1)
    np.savez(root / "target.npz", x=x, y=np.array(["a", "b", "c"])[y])
    return root


@pytest.fixture(scope="module")
def source(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "src"
    pretrain(str(data / "source.npz"), backbone="mlp", backbone_config={"hidden": [16]}, out=out,
             train=TrainConfig(epochs=2))
    return out


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_mlflow_sqlite_store_records_params_epochs_metrics_and_the_model_folder(tmp_path, data, source):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = finetune(source, str(data / "target.npz"), strategy="partial", strategy_options={"freeze": 1},
                      out=tmp_path / "tgt", train=TrainConfig(epochs=4, lr=0.01), track="mlflow", tracking_uri=uri)
    client = _client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "finetune-partial-tgt"
    params = run.data.params
    assert params["strategy"] == "partial" and params["strategy_options.freeze"] == "1"
    assert params["train.lr"] == "0.01" and params["device"] == "cpu" and params["processes"] == "1"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([h["val_accuracy"] for h in result.history])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3, 4]
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert run.data.metrics["test_macro_f1"] == pytest.approx(result.macro_f1)
    assert run.data.metrics["resolved_lr"] == 0.01 and run.data.metrics["resolved_backbone_lr"] == 0.01  # mlp: --lr
    files = sorted(f.path for f in client.list_artifacts(run.info.run_id, "model"))
    assert files == ["model/README.md", "model/config.json", "model/model.safetensors"]  # safetensors, no pickle
    local = client.download_artifacts(run.info.run_id, "model/config.json", str(tmp_path))
    assert json.loads(open(local).read())["weights"]["sha256"] == json.loads((tmp_path / "tgt" / "config.json").read_text())["weights"]["sha256"]
    assert (tmp_path / "artifacts").is_dir()  # the SQLite store keeps artifacts beside the database


def test_mlflow_default_store_is_local_sqlite_in_mlruns(tmp_path, data, source, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["finetune", str(source), "--data", str(data / "target.npz"), "--epochs", "2",
                              "--track", "mlflow", "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    client = _client(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])
    assert run.info.status == "FINISHED" and len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
    assert client.list_artifacts(run.info.run_id) == []  # no --out: no model folder to log


def test_a_failing_run_is_marked_failed(tmp_path, data, source, monkeypatch):
    import transferlab.api as api

    def broken(*args, **kwargs):
        kwargs["on_epoch_end"]({"epoch": 1, "train_loss": 0.5, "val_accuracy": 0.25, "elapsed_seconds": 0.1})
        raise RuntimeError("disk full")

    monkeypatch.setattr(api, "train_run", broken)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(RuntimeError, match="disk full"):
        finetune(source, str(data / "target.npz"), train=TrainConfig(epochs=2), track="mlflow", tracking_uri=uri)
    client = _client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])
    assert run.info.status == "FAILED" and run.data.metrics["val_accuracy"] == 0.25


def test_tensorboard_event_files_hold_epochs_params_and_the_model(tmp_path, data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = runner.invoke(app, ["pretrain", "--data", str(data / "source.npz"), "--backbone", "mlp", "--hidden", "16",
                              "--epochs", "3", "--out", str(tmp_path / "src"), "--track", "tensorboard",
                              "--tracking-uri", str(tmp_path / "tb"), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout.strip().splitlines()[-1])
    folder = tmp_path / "tb" / "pretrain-src"
    events = EventAccumulator(str(folder)).Reload()
    assert {"train/loss", "val/accuracy", "test/accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val/accuracy")] == [1, 2, 3]
    assert events.Scalars("val/accuracy")[-1].value == pytest.approx(result["val_accuracy"])
    assert events.Scalars("test/accuracy")[-1].value == pytest.approx(result["test_accuracy"])
    text = events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| train.epochs | 3 |" in text and "| backbone | mlp |" in text
    params = json.loads((folder / "params.json").read_text())
    assert params["backbone"] == "mlp" and params["train.epochs"] == "3" and params["command"] == "pretrain"
    assert sorted(p.name for p in (folder / "model").iterdir()) == sorted(p.name for p in (tmp_path / "src").iterdir())
    # a second run never mixes its curves into the first one's folder
    res = runner.invoke(app, ["pretrain", "--data", str(data / "source.npz"), "--backbone", "mlp", "--epochs", "1",
                              "--out", str(tmp_path / "src"), "--overwrite", "--track", "tensorboard",
                              "--tracking-uri", str(tmp_path / "tb"), "--json"])
    assert res.exit_code == 0 and (tmp_path / "tb" / "pretrain-src-2").is_dir()


def test_tracking_errors(tmp_path, data, source, monkeypatch):
    import sys

    target = str(data / "target.npz")
    with pytest.raises(ConfigError, match=r"--track 'wandb' is not one of \['mlflow', 'tensorboard'\]"):
        finetune(source, target, track="wandb")
    with pytest.raises(ConfigError, match="--tracking-uri 'runs' needs --track; pass --track mlflow or --track tensorboard"):
        finetune(source, target, tracking_uri="runs")
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(ConfigError, match=r"--track mlflow needs the track extra \(sqlalchemy is missing\): "
                                          r"pip install 'transferlab\[track\]'"):
        finetune(source, target, track="mlflow")
    res = runner.invoke(app, ["finetune", str(source), "--data", target, "--track", "comet"])
    assert res.exit_code == 2 and "--track 'comet' is not one of ['mlflow', 'tensorboard']" in res.stderr
