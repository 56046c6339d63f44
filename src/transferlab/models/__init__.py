"""Backbones (the transfer interface), their registry, heads.

Every module in this folder is imported once (plugins.import_modules) and registers its backbones
with `@register_backbone`: adding a backbone is adding a file. Backbones of other installed packages
come from the `transferlab.backbones` entry-point group.
"""

from ..plugins import BACKBONE_GROUP, import_modules, load_entry_points
from .backbone import Backbone, wrap_module
from .head import HeadSpec, TransferModel, build_head
from .registry import (
    backbone_entry,
    backbone_summary,
    create_backbone,
    list_backbones,
    register_backbone,
    resolve_backbone_ref,
)

import_modules(__name__, __path__)  # text.py imports its libraries lazily
load_entry_points(BACKBONE_GROUP)

__all__ = [
    "Backbone",
    "HeadSpec",
    "TransferModel",
    "backbone_entry",
    "backbone_summary",
    "build_head",
    "create_backbone",
    "list_backbones",
    "register_backbone",
    "resolve_backbone_ref",
    "wrap_module",
]
