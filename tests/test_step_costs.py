"""What makes a cnn training step cheaper must not change what it computes: the conv block's max-pool before its
ReLU gives the values and gradients of ReLU before max-pool."""

from __future__ import annotations

import copy

import torch
from torch import nn

from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig
from transferlab.engine.run import train_run
from transferlab.models import create_backbone
from transferlab.models.cnn import ConvBlock
from transferlab.strategies import create_strategy


def test_max_pool_before_relu_gives_the_same_values_and_gradients():
    torch.manual_seed(0)
    block = ConvBlock(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    block.to(memory_format=torch.channels_last)
    x = torch.rand(16, 1, 28, 28)
    x[:, :, :4] = 0  # a blank frame like the framed digits: equal values, ties in the pool
    x[:, :, :, -4:] = 0
    upstream = torch.randn(16, 8, 14, 14)
    results = []
    for forward in (ConvBlock.forward, nn.Sequential.forward):  # pool then ReLU; ReLU then pool (the modules' order)
        block.zero_grad(set_to_none=True)
        out = forward(block, x.contiguous(memory_format=torch.channels_last))
        (out * upstream).sum().backward()
        results.append((out.detach().clone(), [p.grad.clone() for p in block.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert (out_a == 0).any() and (out_a > 0).any()  # both sides of the ReLU were exercised


def test_a_cnn_run_trains_the_same_weights_as_with_relu_before_max_pool(monkeypatch):
    split = split_task(load_task("digits", image_size=16), shots=5, seed=0)
    torch.manual_seed(123)
    pretrained = create_backbone("cnn", split.task.input_spec, channels=[4, 8], hidden=16)
    cfg = dict(epochs=4, batch_size=16, lr=1e-2, threads=1, seed=0)
    model, run, metrics = train_run(copy.deepcopy(pretrained), split, create_strategy("full"), TrainConfig(**cfg))
    with monkeypatch.context() as patch:
        patch.setattr(ConvBlock, "forward", lambda self, x: nn.Sequential.forward(
            self, x.contiguous(memory_format=torch.channels_last)))
        before, run_before, metrics_before = train_run(copy.deepcopy(pretrained), split, create_strategy("full"),
                                                       TrainConfig(**cfg))
    for key, value in before.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    assert run.test_predictions == run_before.test_predictions and metrics == metrics_before
