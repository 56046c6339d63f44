"""Backbones (the transfer interface), their registry, heads."""

from . import cnn, mlp, text  # noqa: F401  (register the built-in backbones; text imports its libraries lazily)
from . import efficientnet_lite, hf_vision  # noqa: F401  (ImageNet EfficientNet-Lite0; Hugging Face vision folders)
from .backbone import Backbone, wrap_module
from .head import HeadSpec, TransferModel, build_head
from .registry import backbone_summary, create_backbone, list_backbones, register_backbone

__all__ = [
    "Backbone",
    "HeadSpec",
    "TransferModel",
    "backbone_summary",
    "build_head",
    "create_backbone",
    "list_backbones",
    "register_backbone",
    "wrap_module",
]
