"""add-layers' `dropout`, `feature_blocks` and `feature_grid`: new hidden layers on chosen blocks' pooled outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import squares_npz
from transferlab.errors import ConfigError


@pytest.fixture
def cnn_source(tmp_path):
    from transferlab.api import pretrain
    from transferlab.engine import TrainConfig

    path, x, y = squares_npz(tmp_path)
    pre = tmp_path / "pre"
    pretrain(str(path), backbone="cnn", out=pre, train=TrainConfig(epochs=1))
    return pre, path, x


def test_a_frozen_backbone_with_hidden_layers_on_grid_features_is_saved_reloaded_and_exported(tmp_path, cnn_source):
    from transferlab.api import evaluate, finetune, load, predict
    from transferlab.engine import TrainConfig
    from transferlab.export import export as export_model

    pre, path, x = cnn_source
    out = tmp_path / "m"
    result = finetune(str(pre), str(path), strategy="add-layers",
                      strategy_options={"hidden": [16], "dropout": 0.5, "freeze_backbone": True,
                                        "feature_blocks": ["conv1", "conv2"], "feature_grid": 2},
                      out=out, train=TrainConfig(epochs=3, batch_size=8))
    config = json.loads((out / "config.json").read_text())
    arch = config["architecture"]
    assert arch["backbone"]["feature_blocks"] == ["conv1", "conv2"] and arch["backbone"]["feature_grid"] == 2
    assert arch["feature_dim"] == (16 + 32) * 4  # conv1 and conv2 maps, 2×2 cells each
    assert arch["head"]["hidden"] == [16] and arch["head"]["dropout"] == 0.5
    model = load(out)
    assert model.backbone.feature_dim == 192 and model.model.head.hidden1[-1].p == 0.5
    assert result.test_accuracy == evaluate(out, str(path)).test_accuracy  # dropout is off when evaluating
    assert len(predict(out, x[:2].astype(np.float32) / 255)) == 2
    assert export_model(out, tmp_path / "m.onnx", format="onnx").parity_max_abs_diff <= 1e-4


def test_the_frozen_grid_features_are_cached_and_give_the_same_head_as_uncached(tmp_path, cnn_source):
    from transferlab.api import load
    from transferlab.data import load_task, split_task
    from transferlab.engine import FeatureCache, TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    pre, path, _ = cnn_source
    split = split_task(load_task(str(path)), shots=None, seed=0)
    options = {"hidden": [8], "freeze_backbone": True, "feature_blocks": ["conv2"], "feature_grid": 2}
    heads = []
    for cache in (FeatureCache(), False):
        model, _, _ = train_run(load(pre).backbone, split, create_strategy("add-layers", **options),
                                TrainConfig(epochs=2, batch_size=8, seed=0), cache=cache)
        heads.append(model.head.state_dict())
        if cache is not False:
            assert len(cache) > 0  # the frozen backbone's grid features were computed once and kept
    for name, tensor in heads[0].items():
        torch.testing.assert_close(tensor, heads[1][name], atol=1e-5, rtol=1e-5)


def test_without_the_new_options_add_layers_is_described_as_before():
    from transferlab.strategies import create_strategy

    assert create_strategy("add-layers", hidden=[32]).describe() == \
        "add-layers(hidden=[32], freeze_backbone=False, activation=relu)"
    assert create_strategy("add-layers", hidden=[32], dropout=0.2, feature_blocks="stage5, stage6",
                           feature_grid=4).options() == \
        {"hidden": [32], "freeze_backbone": False, "activation": "relu", "dropout": 0.2,
         "feature_blocks": ["stage5", "stage6"], "feature_grid": 4}


@pytest.mark.parametrize("dropout", [1.0, -0.1, "x", True])
def test_dropout_out_of_range_is_refused_naming_the_value(dropout):
    from transferlab.strategies import create_strategy

    with pytest.raises(ConfigError, match=r"--dropout must be a number in \[0, 1\), the share of hidden units dropped "
                                          rf"while training; got {dropout!r} \(e.g. --dropout 0.5\)"):
        create_strategy("add-layers", hidden=[8], dropout=dropout)


def test_feature_options_are_checked_as_linear_probes_are(cnn_source):
    from transferlab.api import load
    from transferlab.strategies import create_strategy

    pre, _, _ = cnn_source
    with pytest.raises(ConfigError, match=r"--feature-grid must be a whole number from 1 to 8; got 9"):
        create_strategy("add-layers", feature_blocks=["conv2"], feature_grid=9)
    with pytest.raises(ConfigError, match=r"--feature-blocks must be backbone block names, comma-separated"):
        create_strategy("add-layers", feature_blocks=[3])
    with pytest.raises(ConfigError, match=r"--feature-grid 2 pools the outputs of --feature-blocks, but none are given"):
        create_strategy("add-layers", feature_grid=2).configure_backbone(load(pre).backbone)
    with pytest.raises(ConfigError, match=r"feature_blocks \['stage9'\] are not blocks of this backbone"):
        create_strategy("add-layers", feature_blocks=["stage9"]).configure_backbone(load(pre).backbone)


def test_a_head_spec_with_dropout_out_of_range_is_refused():
    from transferlab.models.head import HeadSpec

    assert HeadSpec(num_outputs=2, hidden=[4], dropout=0).dropout == 0.0
    with pytest.raises(ConfigError, match=r"head dropout must be a number in \[0, 1\); got 3"):
        HeadSpec(num_outputs=2, hidden=[4], dropout=3)


def test_cli_flags_and_their_errors(tmp_path, cnn_source):
    from transferlab.cli import app

    pre, path, _ = cnn_source
    runner = CliRunner()
    ok = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "add-layers", "--hidden", "8",
                             "--dropout", "0.25", "--freeze-backbone", "--feature-blocks", "conv2", "--feature-grid", "2",
                             "--epochs", "1", "--out", str(tmp_path / "m"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"]["backbone"]["feature_grid"] == 2 and config["architecture"]["feature_dim"] == 32 * 4
    assert config["architecture"]["head"]["dropout"] == 0.25
    bad = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "add-layers", "--dropout", "1.5",
                              "--epochs", "1", "--out", str(tmp_path / "m2"), "--quiet"])
    assert bad.exit_code != 0
    assert "--dropout must be a number in [0, 1)" in " ".join(bad.output.split()) and "got 1.5" in bad.output
    assert not (tmp_path / "m2").exists()
    # both linear-probe and add-layers take --feature-blocks: in a comparison of both, the qualified flags say which
    both = runner.invoke(app, ["compare", str(pre), "--data", str(path), "--strategies", "linear-probe,add-layers",
                               "--feature-blocks", "conv2", "--out", str(tmp_path / "c")])
    assert both.exit_code == 2
    assert "--linearprobe-feature-blocks or --addlayers-feature-blocks" in " ".join(both.output.split())
