"""The cnn trains on channels-last activations and weights (faster on the CPU); the cache, saved models and
results stay what a user checks: cached = uncached bit for bit, contiguous saved weights, same predictions."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
from torch import nn

from transferlab.data import load_task, split_task
from transferlab.engine import FeatureCache, TrainConfig
from transferlab.engine.run import train_run
from transferlab.models import create_backbone
from transferlab.models.backbone import Backbone
from transferlab.models.cnn import ConvBlock
from transferlab.strategies import create_strategy


@pytest.fixture(scope="module")
def digits_split():
    # the demo's data at 16 px: real images, small enough to train in a second
    return split_task(load_task("digits", image_size=16), shots=5, seed=0)


def _pretrained(task):
    torch.manual_seed(123)
    return create_backbone("cnn", task.input_spec, channels=[4, 8], hidden=16)


CFG = dict(epochs=4, batch_size=16, lr=1e-2, threads=1, seed=0)


@pytest.mark.parametrize("name,options", [("partial", {"freeze": 1}), ("partial", {"freeze": 2})])
def test_a_cached_frozen_conv_prefix_gives_the_uncached_bits(digits_split, name, options):
    pretrained = _pretrained(digits_split.task)
    cached, run_c, m_c = train_run(copy.deepcopy(pretrained), digits_split, create_strategy(name, **options),
                                   TrainConfig(**CFG), cache=FeatureCache(), cache_key="cnn")
    uncached, run_u, m_u = train_run(copy.deepcopy(pretrained), digits_split, create_strategy(name, **options),
                                     TrainConfig(**CFG), cache=False)
    assert run_c.cached_blocks > 0 and run_u.cached_blocks == 0
    for key, value in uncached.state_dict().items():
        assert torch.equal(value, cached.state_dict()[key]), f"{name} {options}: cached ≠ uncached at {key}"
    assert run_c.test_predictions == run_u.test_predictions and m_c == m_u
    assert run_c.history == [r | {"elapsed_seconds": c["elapsed_seconds"]}
                             for r, c in zip(run_u.history, run_c.history)]


def test_a_cached_whole_backbone_gives_the_uncached_result(digits_split):
    # linear-probe caches the dense block too: its matrix product over 1024 rows and over one batch may round the
    # last bit differently (so it did before channels-last); the convolutions' outputs are the same bits
    pretrained = _pretrained(digits_split.task)
    cached, run_c, m_c = train_run(copy.deepcopy(pretrained), digits_split, create_strategy("linear-probe"),
                                   TrainConfig(**CFG), cache=FeatureCache(), cache_key="cnn")
    uncached, run_u, m_u = train_run(copy.deepcopy(pretrained), digits_split, create_strategy("linear-probe"),
                                     TrainConfig(**CFG), cache=False)
    assert run_c.cached_blocks == 3 and run_u.cached_blocks == 0
    for key, value in uncached.state_dict().items():
        assert torch.allclose(value, cached.state_dict()[key], atol=1e-6), key
    assert run_c.test_predictions == run_u.test_predictions and m_c == m_u


def test_the_cnn_trains_channels_last_and_hands_back_contiguous_weights(digits_split, tmp_path):
    from transferlab.artifacts import load_model_folder, save_model_folder

    model_box = {}
    layouts = []

    def seen(record):
        conv = model_box["backbone"].blocks["conv2"][0].weight  # conv1 has one input channel: both layouts at once
        layouts.append(conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous())

    backbone = copy.deepcopy(_pretrained(digits_split.task))
    model_box["backbone"] = backbone
    model, run, metrics = train_run(backbone, digits_split, create_strategy("full"), TrainConfig(**CFG),
                                    on_epoch_end=seen)
    assert layouts and all(layouts)  # conv weights channels-last while training
    assert all(t.is_contiguous() for t in model.state_dict().values())  # and contiguous once handed back
    save_model_folder(tmp_path / "m", backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                      info={"label_names": digits_split.task.class_names})
    loaded = load_model_folder(tmp_path / "m")
    x = torch.from_numpy(digits_split.x_test)
    with torch.inference_mode():
        assert torch.equal(loaded.model.eval()(x).argmax(1), model.eval()(x).argmax(1))
        assert torch.equal(torch.tensor(run.test_predictions), model(x).argmax(1))


@contextlib.contextmanager
def _nchw():
    """The cnn as before channels-last: NCHW activations and weights."""
    forward = ConvBlock.forward
    ConvBlock.forward = nn.Sequential.forward
    Backbone.channels_last = property(lambda self: False, lambda self, value: None)
    try:
        yield
    finally:
        ConvBlock.forward = forward
        del Backbone.channels_last


@pytest.mark.parametrize("name", ["full", "scratch"])
def test_channels_last_changes_only_the_rounding(digits_split, name):
    pretrained = _pretrained(digits_split.task)
    model, run, metrics = train_run(copy.deepcopy(pretrained), digits_split, create_strategy(name), TrainConfig(**CFG))
    with _nchw():
        before = copy.deepcopy(pretrained)
        assert not before.channels_last
        old, run_old, metrics_old = train_run(before, digits_split, create_strategy(name), TrainConfig(**CFG))
    for key, value in old.state_dict().items():
        # Adam normalises its steps, so last-bit differences of near-zero gradients move weights by ~1e-4
        assert torch.allclose(value.float(), model.state_dict()[key].float(), atol=1e-3), key
    assert run.test_predictions == run_old.test_predictions
    assert metrics["accuracy"] == metrics_old["accuracy"]
