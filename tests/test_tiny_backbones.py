"""The tiny instances the conformance suite runs (each registry entry's `tiny`): the same code path as the real
backbone, at a fraction of its size; efficientnet-lite0's width multiplier, which its tiny instance uses."""

from __future__ import annotations

import pytest
import torch

from transferlab.data.task import InputSpec
from transferlab.errors import ConfigError
from transferlab.models import backbone_entry, create_backbone, list_backbones

IMAGE = InputSpec("image", (1, 8, 8))


def _params(backbone) -> int:
    return sum(p.numel() for p in backbone.parameters())


def test_every_backbone_declares_a_tiny_instance():
    for name in list_backbones():
        assert backbone_entry(name).tiny is not None, f"backbone {name!r} has no tiny options for the conformance suite"


def test_efficientnet_width_narrows_the_stages_and_keeps_the_interface():
    full = create_backbone("efficientnet-lite0", IMAGE, image_size=32)
    narrow = create_backbone("efficientnet-lite0", IMAGE, image_size=32, width=0.25)
    assert full.block_names == narrow.block_names  # the same blocks (what --freeze counts over)
    assert narrow.feature_dim == full.feature_dim == 1280  # Lite keeps its 1280-wide head whatever the width
    assert _params(narrow) < _params(full) / 5
    channels = [m.out_channels for m in narrow.blocks["stage7"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert channels[-1] == 80  # 320 × 0.25, a multiple of 8
    for x in (torch.rand(2, 1, 20, 24), torch.rand(2, 3, 40, 40)):  # any size, grayscale or RGB
        assert narrow.features(x).shape == (2, 1280)


@pytest.mark.parametrize("width", [0.05, 3, "wide", True])
def test_efficientnet_width_out_of_range_is_refused(width):
    with pytest.raises(ConfigError, match=rf"efficientnet-lite0 width must be a number in \[0.1, 2\]; got {width!r}"):
        create_backbone("efficientnet-lite0", IMAGE, width=width)
