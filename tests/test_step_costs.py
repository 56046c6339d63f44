"""What makes a cnn training step cheaper must not change what it computes: freed memory kept by the allocator
(no page faults per step) and the conv block's max-pool before its ReLU (the same values and gradients)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from transferlab.engine import runtime
from transferlab.errors import ConfigError
from transferlab.models.cnn import ConvBlock

# 60 steps of a demo-sized cnn (28×28, conv 16/32, dense 128, batch 32) in a fresh process; prints the minor
# page faults of the last 50 steps and a checksum of the trained weights
_STEPS = textwrap.dedent("""
    import json, resource, torch, torch.nn as nn, torch.nn.functional as F
    from transferlab.engine.runtime import set_threads
    from transferlab.models.cnn import ConvBlock
    set_threads(1)
    torch.manual_seed(0)
    def block(cin, cout):
        return ConvBlock(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))
    model = nn.Sequential(block(1, 16), block(16, 32), nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))
    model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    faults = 0
    for step in range(60):
        if step == 10:
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        idx = torch.arange(step * 32, step * 32 + 32) % 256
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({"faults_per_step": faults / 50, "checksum": sum(float(p.double().sum()) for p in model.parameters())}))
""")


def _train_steps(allocator: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | {
        "TRANSFERLAB_ALLOCATOR": allocator, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _STEPS], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the malloc settings are glibc's (Linux)")
def test_training_steps_reuse_freed_memory_and_train_the_same_weights():
    kept, system = _train_steps("keep"), _train_steps("system")
    # glibc's own settings hand a step's activations back and fault them in again: hundreds of pages a step
    assert system["faults_per_step"] > 200, system
    assert kept["faults_per_step"] < system["faults_per_step"] / 10, (kept, system)  # ~10 while warming up, then 0
    assert kept["checksum"] == system["checksum"]  # where memory comes from changes no value


def test_an_unknown_allocator_setting_is_refused(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_ALLOCATOR", "jemalloc")
    monkeypatch.setattr(runtime, "_allocator_kept", None)
    with pytest.raises(ConfigError, match=r"TRANSFERLAB_ALLOCATOR='jemalloc' is not one of 'keep' .* or 'system'"):
        runtime.keep_freed_memory()


def test_the_users_own_malloc_settings_are_left_alone(monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_ALLOCATOR", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    monkeypatch.setattr(runtime, "_allocator_kept", None)
    assert runtime.keep_freed_memory() is False


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
