"""The Python API mirrors the CLI; a user's own module goes through the whole pipeline."""

import numpy as np
import pytest
import torch
from torch import nn

import transferlab
from transferlab.errors import ShapeError


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.uniform(0, 0.3, size=(90, 6, 6)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 2 * c : 2 * c + 2] += 0.6
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return str(tmp_path / "d.npz")


def _net():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())


def test_user_module_pretrain_finetune_evaluate(tmp_path, npz):
    torch.manual_seed(0)
    backbone = transferlab.wrap_module(_net(), input_shape=(1, 6, 6))
    pre = transferlab.pretrain(npz, backbone=backbone, out=tmp_path / "src", train=transferlab.TrainConfig(epochs=3))
    assert pre.out == str(tmp_path / "src")
    ft = transferlab.finetune(tmp_path / "src", npz, strategy="partial", strategy_options={"freeze": 1}, shots=5,
                              out=tmp_path / "tgt", module=_net(), train=transferlab.TrainConfig(epochs=30, lr=0.01))
    assert ft.trainable_params == 16 * 8 + 8 + 8 * 3 + 3  # Linear(16, 8) of block "3", and the head
    ev = transferlab.evaluate(tmp_path / "tgt", npz, module=_net())
    assert ev.test_accuracy == pytest.approx(ft.test_accuracy)
    loaded = transferlab.load(tmp_path / "tgt", module=_net())
    assert loaded.model(torch.zeros(2, 1, 6, 6)).shape == (2, 3)


def test_user_module_that_does_not_fit_the_data(tmp_path, npz):
    backbone = transferlab.wrap_module(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), input_shape=(1, 8, 8))
    with pytest.raises(ShapeError, match="expects 1×8×8"):
        transferlab.pretrain(npz, backbone=backbone, out=tmp_path / "src")
    assert not (tmp_path / "src").exists()


def test_public_names_resolve():
    for name in transferlab.__all__:
        assert getattr(transferlab, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        transferlab.nope  # noqa: B018
