"""Conformance: every registered strategy on every registered backbone (tiny sizes)."""

import copy

import pytest
import torch

from transferlab.api import train_run
from transferlab.engine import TrainConfig
from transferlab.errors import ConfigError
from transferlab.models import TransferModel, create_backbone, list_backbones
from transferlab.strategies import create_strategy, list_strategies, strategy_options

CFG = dict(epochs=3, batch_size=16, lr=1e-2, restore_best=False)  # check what trained, not which epoch won
TINY = {"setfit": {"iterations": 2}}  # options that keep a strategy's extra work tiny in tests


def _pretrained(name: str, task, **config):
    torch.manual_seed(123)
    return create_backbone(name, task.input_spec, **config)


@pytest.fixture(scope="module")
def text_split():
    from conftest import make_split, make_text_task

    return make_split(make_text_task())


@pytest.mark.parametrize("backbone_name", list_backbones())
@pytest.mark.parametrize("strategy_name", list_strategies())
def test_strategy_trains_exactly_what_it_says(backbone_name, strategy_name, tiny_split, text_split, tiny_bert_path,
                                              tiny_vit_path):
    text = {"hf": {"path": str(tiny_bert_path)}, "minilm": {"max_length": 16}}
    if backbone_name in text:
        tiny_split = text_split
    small = {"efficientnet-lite0": {"image_size": 32},  # an ImageNet network at its smallest resolution
             "hf-vision": {"path": str(tiny_vit_path)}}
    pretrained = _pretrained(backbone_name, tiny_split.task, **text.get(backbone_name, small.get(backbone_name, {})))
    before = copy.deepcopy(pretrained.state_dict())
    strategy = create_strategy(strategy_name, **TINY.get(strategy_name, {}))
    model, run, metrics = train_run(copy.deepcopy(pretrained), tiny_split, strategy, TrainConfig(**CFG))

    # a first phase (SetFit's contrastive tuning) trains the blocks that are frozen afterwards
    frozen = set() if strategy.tunes_backbone_before_fit else set(strategy.frozen_blocks(model.backbone))
    after = model.backbone.state_dict()
    for block in model.backbone.block_names:
        keys = [k for k in before if k.startswith(f"blocks.{block}.")]
        if not keys:
            continue  # a parameter-free block (text pooling)
        changed = any(not torch.equal(before[k], after[k]) for k in keys)
        if block in frozen:
            # weights *and* BatchNorm running statistics are untouched
            assert not changed, f"{strategy_name} changed frozen block {block}"
        if block in strategy.frozen_blocks(model.backbone):
            assert all(not p.requires_grad for p in model.backbone.blocks[block].parameters())
        if block not in frozen:
            assert changed, f"{strategy_name} did not train block {block}"
    assert model.head_spec.num_outputs == tiny_split.task.num_classes
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == len(tiny_split.y_test)
    assert run.epochs == 3 and len(run.history) == 3


@pytest.mark.parametrize("strategy_name", list_strategies())
def test_same_seed_same_weights(strategy_name, tiny_split):
    pretrained = _pretrained("cnn", tiny_split.task)
    runs = [
        train_run(copy.deepcopy(pretrained), tiny_split, create_strategy(strategy_name, **TINY.get(strategy_name, {})),
                  TrainConfig(seed=7, **CFG))[0]
        for _ in range(2)
    ]
    for (k, a), b in zip(runs[0].state_dict().items(), runs[1].state_dict().values()):
        assert torch.equal(a, b), k
    other = train_run(copy.deepcopy(pretrained), tiny_split, create_strategy(strategy_name, **TINY.get(strategy_name, {})),
                      TrainConfig(seed=8, **CFG))[0]
    assert not torch.equal(other.head.out.weight, runs[0].head.out.weight)


def test_scratch_discards_pretrained_weights_and_full_keeps_them(tiny_split):
    pretrained = _pretrained("mlp", tiny_split.task)
    key = "blocks.fc1.1.weight"
    scratch = create_strategy("scratch")
    full = create_strategy("full")
    from transferlab.models import TransferModel

    m1 = TransferModel(copy.deepcopy(pretrained), scratch.head_spec(3))
    scratch.prepare(m1)
    m2 = TransferModel(copy.deepcopy(pretrained), full.head_spec(3))
    full.prepare(m2)
    assert not torch.equal(m1.backbone.state_dict()[key], pretrained.state_dict()[key])
    assert torch.equal(m2.backbone.state_dict()[key], pretrained.state_dict()[key])


def test_frozen_batchnorm_stays_in_eval_mode(tiny_split):
    pretrained = _pretrained("cnn", tiny_split.task)
    strategy = create_strategy("partial", freeze=1)
    from transferlab.models import TransferModel

    model = TransferModel(pretrained, strategy.head_spec(3))
    strategy.prepare(model)
    strategy.train_mode(model)
    assert not model.backbone.blocks["conv1"].training
    assert model.backbone.blocks["conv2"].training and model.head.training


def test_add_layers_builds_new_hidden_layers(tiny_split):
    model, _, _ = train_run(
        _pretrained("cnn", tiny_split.task), tiny_split,
        create_strategy("add-layers", hidden=[32, 16], freeze_backbone=True), TrainConfig(**CFG),
    )
    assert [m.out_features for m in model.head.modules() if isinstance(m, torch.nn.Linear)] == [32, 16, 3]
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_strategy_option_errors():
    with pytest.raises(ConfigError, match=r"unknown strategy 'dora'; registered strategies are \['scratch'"):
        create_strategy("dora")
    with pytest.raises(ConfigError, match=r"strategy 'linear-probe' does not take option\(s\) \['freeze'\] \('freeze' is an option of \['partial'\]\)"):
        create_strategy("linear-probe", freeze=2)
    with pytest.raises(ConfigError, match="--freeze must be a whole number ≥ 1; got 0"):
        create_strategy("partial", freeze=0)
    with pytest.raises(ConfigError, match="--hidden must be comma-separated positive integers like 128,64; got"):
        create_strategy("add-layers", hidden=[0])


def test_freeze_more_blocks_than_the_backbone_has(tiny_split):
    strategy = create_strategy("partial", freeze=4)
    with pytest.raises(ConfigError, match=r"--freeze 4 exceeds the backbone's 3 blocks \['conv1', 'conv2', 'fc'\]; pass --freeze 1..3"):
        train_run(_pretrained("cnn", tiny_split.task), tiny_split, strategy, TrainConfig(**CFG))


def test_every_strategy_documents_itself():
    for name in list_strategies():
        from transferlab.strategies import strategy_class

        cls = strategy_class(name)
        assert cls.summary and cls.__doc__
        for f in strategy_options(name):
            assert f.metadata.get("help"), f"{name}.{f.name} has no help"


@pytest.mark.parametrize("strategy_name, options", [("linear-probe", {}), ("partial", {"freeze": 2}),
                                                    ("add-layers", {"hidden": [16], "freeze_backbone": True})])
def test_frozen_feature_cache_gives_the_uncached_result(strategy_name, options, tiny_split):
    pretrained = _pretrained("cnn", tiny_split.task)
    results = {}
    for cache in (False, True):
        strategy = create_strategy(strategy_name, **options)
        results[cache] = train_run(copy.deepcopy(pretrained), tiny_split, strategy, TrainConfig(seed=3, **CFG), cache=cache)
    (m0, r0, met0), (m1, r1, met1) = results[False], results[True]
    assert r0.cached_blocks == 0 and r1.cached_blocks == len(create_strategy(strategy_name, **options).frozen_blocks(m1.backbone))
    assert met0["accuracy"] == met1["accuracy"]
    for (k, a), b in zip(m0.state_dict().items(), m1.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    assert [h["val_accuracy"] for h in r0.history] == [h["val_accuracy"] for h in r1.history]


def test_a_shared_cache_is_computed_once_per_prefix(tiny_task):
    from transferlab.data import split_task
    from transferlab.engine import FeatureCache

    pretrained = _pretrained("cnn", tiny_task)
    cache = FeatureCache()
    for seed in range(3):
        for name, options in (("linear-probe", {}), ("partial", {"freeze": 2})):
            split = split_task(tiny_task, shots=5, seed=seed)
            train_run(copy.deepcopy(pretrained), split, create_strategy(name, **options), TrainConfig(seed=seed, **CFG),
                      cache=cache, cache_key="tiny-cnn")
    assert len(cache) == 4  # (pool, test) × (3 blocks, 2 blocks), not 6 runs × 2


def test_lora_trains_adapters_only_and_merges_into_plain_weights(tiny_split, tmp_path):
    from transferlab.artifacts import load_model_folder, save_model_folder

    pretrained = _pretrained("mlp", tiny_split.task, hidden=[32, 16], dropout=0.0)
    strategy = create_strategy("lora", rank=2, alpha=4.0)
    model, run, metrics = train_run(copy.deepcopy(pretrained), tiny_split, strategy, TrainConfig(**CFG))
    # adapters: fc1 64→32 and fc2 32→16 at rank 2, plus the 16→3 head
    assert run.trainable_params == 2 * (64 + 32) + 2 * (32 + 16) + 16 * 3 + 3
    assert set(model.backbone.state_dict()) == set(pretrained.state_dict())  # merged: no adapter tensors left
    for key, before in pretrained.state_dict().items():
        assert not torch.equal(before, model.backbone.state_dict()[key]) or key.endswith("bias"), key
    save_model_folder(tmp_path / "m", backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                      info={"label_names": ["a", "b", "c"]})
    loaded = load_model_folder(tmp_path / "m")
    x = torch.from_numpy(tiny_split.x_test)
    model.eval()
    assert torch.allclose(loaded.model(x), model(x), atol=1e-6)


def test_lora_adapters_train_at_their_own_rate(tiny_task):
    pretrained = _pretrained("mlp", tiny_task, hidden=[32, 16], dropout=0.0)
    strategy = create_strategy("lora", rank=2, adapter_lr=3e-4)
    model = TransferModel(copy.deepcopy(pretrained), strategy.head_spec(3))
    strategy.prepare(model)
    groups = {g["name"]: g for g in strategy.param_groups(model, 1e-2, 2e-5)}
    assert groups["adapters"]["lr"] == 3e-4 and groups["head"]["lr"] == 1e-2 and groups["backbone"]["lr"] == 2e-5
    assert all(p.requires_grad for p in groups["adapters"]["params"]) and len(groups["adapters"]["params"]) == 4
    assert not any(p.requires_grad for p in groups["backbone"]["params"])  # pretrained weights stay fixed


def test_lora_option_errors():
    with pytest.raises(ConfigError, match="--adapter-lr must be a positive number; got 0"):
        create_strategy("lora", adapter_lr=0)
    with pytest.raises(ConfigError, match="--rank must be a whole number ≥ 1; got 0"):
        create_strategy("lora", rank=0)
    strategy = create_strategy("lora", targets=["nope"])
    with pytest.raises(ConfigError, match=r"--targets \['nope'\] match no Linear/Conv2d layer"):
        strategy.frozen_blocks(create_backbone("mlp", (4,)))


def test_setfit_pairs_are_balanced_and_capped():
    import numpy as np

    from transferlab.strategies.setfit import contrastive_pairs

    y = np.array([0, 0, 1, 1, 2, 2])
    pairs = contrastive_pairs(y, iterations=3, max_pairs=1000, rng=np.random.default_rng(0))
    assert len(pairs) == 3 * 6 * 2 and pairs[:, 2].sum() == 18  # one positive and one negative per example
    assert all((y[i] == y[j]) == bool(s) for i, j, s in pairs) and all(i != j for i, j, _ in pairs)
    assert len(contrastive_pairs(y, iterations=3, max_pairs=10, rng=np.random.default_rng(0))) == 10
    with pytest.raises(ConfigError, match="--max-pairs must be a whole number ≥ 1; got 0"):
        create_strategy("setfit", max_pairs=0)
