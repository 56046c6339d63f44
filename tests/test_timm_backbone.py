"""`timm:NAME` as an optional backbone: refused in one line without timm; wired through the registry, the
store, finetune and predict with a fake `timm` module (a tiny nn.Module factory) injected into sys.modules."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.errors import ConfigError
from transferlab.models import list_backbones, registry, resolve_backbone_ref


class TinyNet(nn.Module):
    """A timm-like model: pretrained_cfg, num_features, forward_features, forward_head(pre_logits=...)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, num_classes) if num_classes else nn.Identity()
        self.num_features = 8
        self.pretrained_cfg = {"input_size": (3, 16, 16), "crop_pct": 1.0, "mean": (0.5, 0.5, 0.5),
                               "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}

    def forward_features(self, x):
        return F.relu(self.norm(self.conv(x)))

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


@pytest.fixture
def fake_timm(monkeypatch):
    """A `timm` module whose create_model builds TinyNet ("pretrained": fixed non-random weights) and records calls."""
    calls, offline = [], []

    def create_model(name, pretrained=False, num_classes=1000, **kwargs):
        calls.append({"name": name, "pretrained": pretrained, "num_classes": num_classes, **kwargs})
        offline.append(os.environ.get("HF_HUB_OFFLINE"))
        if name != "tinynet":
            raise RuntimeError(f"Unknown model ({name})")
        model = TinyNet(num_classes)
        if pretrained:
            gen = torch.Generator().manual_seed(7)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        return model

    module = types.ModuleType("timm")
    module.__spec__ = importlib.machinery.ModuleSpec("timm", None)
    module.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", module)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    module.offline_seen = offline
    was = dict(registry._UNAVAILABLE)
    yield calls
    registry.unregister_backbone("timm")
    registry._UNAVAILABLE.clear()
    registry._UNAVAILABLE.update(was)


def test_timm_names_are_refused_in_one_line_without_timm(monkeypatch):
    if "timm" in list_backbones():
        pytest.skip("timm is installed here")
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` fails, as where it is not installed
    with pytest.raises(ConfigError, match=r"^timm:NAME needs the timm package, which is not installed .*install timm"):
        resolve_backbone_ref("timm:resnet18")
    from transferlab.api import finetune

    with pytest.raises(ConfigError, match=r"timm:NAME needs the timm package"):
        finetune("timm:resnet18", "digits", strategy="linear-probe", shots=2)


def test_timm_model_finetunes_and_predicts_through_the_store(fake_timm, tmp_path):
    import numpy as np

    from transferlab.api import finetune, load, predict
    from transferlab.engine import TrainConfig

    assert resolve_backbone_ref("timm:tinynet") == ("timm", {"model": "tinynet"})
    assert "timm" in list_backbones()
    result = finetune("timm:tinynet", "digits", classes="0-2", strategy="linear-probe", shots=5, out=tmp_path / "m",
                      train=TrainConfig(epochs=3, threads=1))
    assert fake_timm[0] == {"name": "tinynet", "pretrained": True, "num_classes": 0}
    assert 0.0 <= result.test_accuracy <= 1.0
    stored = load("timm-tinynet")  # the store folder holds timm's weights; rebuilt without asking timm for them
    assert [c["pretrained"] for c in fake_timm[1:]] and not any(c["pretrained"] for c in fake_timm[1:])
    pretrained = TinyNet(0)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in pretrained.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    assert torch.equal(stored.backbone.blocks["features"].model.conv.weight, pretrained.conv.weight)
    assert stored.backbone.block_names == ["features", "pooling"] and stored.backbone.feature_dim == 8
    processing = stored.backbone.blocks["features"].preprocess.processing
    assert processing.crop == (16, 16) and processing.mean == (0.5, 0.5, 0.5)
    model = load(tmp_path / "m")
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)  # grayscale 8×8: repeated, resized to 16
    rows = predict(tmp_path / "m", x)
    assert len(rows) == 4 and {r["label"] for r in rows} <= {"0", "1", "2"}
    assert model.backbone.input_spec.any_size


def test_an_unknown_timm_name_is_refused_naming_it(fake_timm):
    from transferlab.models import create_backbone
    from transferlab.data.task import InputSpec

    with pytest.raises(ConfigError, match=r"timm could not build 'nonet' \(RuntimeError: Unknown model \(nonet\)\); "
                                          r"check the name"):
        create_backbone(*resolve_backbone_ref("timm:nonet")[:1], InputSpec("image", (3, 8, 8)), model="nonet")


def test_timm_weights_are_read_offline_unless_the_user_asks_to_download(fake_timm):
    from transferlab.models import create_backbone
    from transferlab.data.task import InputSpec

    seen = sys.modules["timm"].offline_seen
    create_backbone("timm", InputSpec("image", (3, 16, 16)), model="tinynet")
    assert seen[-1] == "1" and "HF_HUB_OFFLINE" not in os.environ  # offline while timm builds, restored after
    create_backbone("timm", InputSpec("image", (3, 16, 16)), model="tinynet", download=True)
    assert seen[-1] is None  # asked for: the hub is left as the user's environment has it


def test_the_cli_refuses_timm_names_without_timm(monkeypatch, tmp_path):
    if "timm" in list_backbones():
        pytest.skip("timm is installed here")
    from typer.testing import CliRunner

    from transferlab.cli import app

    monkeypatch.setitem(sys.modules, "timm", None)
    result = CliRunner().invoke(app, ["finetune", "timm:resnet18", "--data", "digits", "--shots", "2",
                                      "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "timm:NAME needs the timm package, which is not installed" in result.output
    assert not (tmp_path / "m").exists()
