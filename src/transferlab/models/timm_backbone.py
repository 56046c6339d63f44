"""`timm:NAME`: a timm image model as a backbone, where the user's environment has timm (optional, never required).

timm is not a dependency of transferlab (it imports torchvision, which does not load beside the CPU torch
this project pins). Where a user's environment has both, `--backbone timm:resnet18` (or
`transferlab finetune timm:resnet18 ...`) builds `timm.create_model("resnet18", pretrained=True,
num_classes=0)`: timm's pooled features, with timm's own preprocessing from the model's `pretrained_cfg`
(input size, `crop_pct`, mean, std, interpolation) run inside the first block, as for `efficientnet-lite0`.

Blocks: `features` (preprocessing + `forward_features`) and `pooling` (`forward_head(pre_logits=True)`) when
the model has both, else one block `encoder`. On first use the model is written into the store as
`timm-NAME` (safetensors); later uses read that folder and never ask timm for weights again.

Weights: timm reads pretrained weights from its own cache (the Hugging Face hub cache), offline: weights
missing from the cache are refused in one line, never downloaded, unless the user asks with `download=True`
(`--download`); `file` names a local weights file for timm to read instead (`pretrained_cfg_overlay`).
Without timm, `timm:NAME` is refused with one line saying how to get it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError, ShapeError
from .backbone import Backbone
from .hf_vision import ImageProcessing, Preprocess
from .registry import list_backbones, mark_unavailable, register_backbone

PREFIX = "timm:"
MISSING = ("timm:NAME needs the timm package, which is not installed (transferlab never requires it: timm imports "
           "torchvision, which does not load beside this torch); install timm and torchvision that match your torch, "
           "or use a built-in image backbone (efficientnet-lite0) or a local Hugging Face folder (hf:/path)")


@dataclass
class TimmConfig:
    """A timm model by name (`--backbone timm:NAME`)."""

    model: str | None = field(default=None, metadata={"help": "the timm model name, e.g. resnet18 (timm.list_models())"})
    pretrained: bool = field(default=True, metadata={"help": "load timm's pretrained weights (False: random init)"})
    download: bool = field(default=False, metadata={
        "help": "let timm fetch weights missing from its cache from the Hugging Face Hub (off: offline, never downloads)"})
    file: str | None = field(default=None, metadata={
        "help": "a local weights file timm reads instead of its cache (pretrained_cfg_overlay file=)"})


class _Features(nn.Module):
    """Preprocessing, then the timm model's `forward_features` (or its whole forward: pooled features)."""

    def __init__(self, preprocess: Preprocess, model: nn.Module, whole: bool) -> None:
        super().__init__()
        self.preprocess, self.model, self.whole = preprocess, model, whole

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x)
        return self.model(x).flatten(1) if self.whole else self.model.forward_features(x)


class _Pooling(nn.Module):
    """timm's own head without its classifier: `forward_head(h, pre_logits=True)` → (B, num_features)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        # Not a child module: all of the model's parameters (its final norm too) belong to the `features` block,
        # saved once; this block has none of its own.
        object.__setattr__(self, "_model", model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self._model.forward_head(h, pre_logits=True).flatten(1)


class TimmBackbone(Backbone):
    """A timm model with the transfer interface; it takes images of any size (1 or 3 channels)."""

    def __init__(self, blocks: dict[str, nn.Module], *, model: nn.Module, model_name: str, feature_dim: int,
                 side: tuple[int, int]) -> None:
        super().__init__(blocks, input_spec=InputSpec("image", (3, *side), any_size=True), feature_dim=feature_dim,
                         spec=None)
        object.__setattr__(self, "_timm_model", model)
        self.model_name = model_name

    def set_resolution(self, size: int) -> None:
        raise ConfigError(f"timm:{self.model_name} runs at the size of its pretrained_cfg "
                          f"({self.input_spec.shape[1]}×{self.input_spec.shape[2]}); drop --image-size")

    def check_input(self, x: torch.Tensor, *, what: str = "input") -> None:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            got = "×".join(str(s) for s in x.shape[1:])
            raise ShapeError(f"{what} has examples of shape {got} but timm:{self.model_name} takes images of 1 or 3 "
                             "channels (C×H×W, any size); give grayscale or RGB images")

    def reset_parameters(self) -> None:
        """Random initialisation with timm's own scheme (a fresh model of the same name, copied in)."""
        import timm

        fresh = timm.create_model(self.model_name, pretrained=False, num_classes=0)
        self._timm_model.load_state_dict(fresh.state_dict())


def timm_processing(model: nn.Module) -> ImageProcessing:
    """timm's eval transform from the model's `pretrained_cfg`: shorter side to size / crop_pct, centre crop, normalise."""
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {})
    _, h, w = tuple(int(s) for s in cfg.get("input_size", (3, 224, 224)))
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    mean = tuple(float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(s) for s in cfg.get("std", (0.229, 0.224, 0.225)))
    mode = cfg.get("interpolation", "bilinear")
    return ImageProcessing(size=None, shortest_edge=int(math.floor(min(h, w) / crop_pct)), crop=(h, w), mean=mean,
                           std=std, mode=mode if mode in ("bilinear", "bicubic", "nearest") else "bilinear")


@contextlib.contextmanager
def _offline(on: bool) -> Iterator[None]:
    """The Hugging Face hub offline while timm builds a model: cached weights only, nothing fetched."""
    if not on:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE",)}
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")  # read at call time by huggingface_hub
    before = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if constants is not None:
            constants.HF_HUB_OFFLINE = before


def build_timm(cfg: TimmConfig) -> TimmBackbone:
    if not cfg.model:
        raise ConfigError("the timm backbone needs a model name: --backbone timm:NAME (e.g. timm:resnet18)")
    try:
        import timm
    except ImportError:
        raise ConfigError(MISSING) from None
    kwargs: dict[str, Any] = {"pretrained": bool(cfg.pretrained or cfg.file), "num_classes": 0}
    if cfg.file:
        kwargs["pretrained_cfg_overlay"] = {"file": str(cfg.file)}
    try:
        with _offline(not cfg.download):
            model = timm.create_model(cfg.model, **kwargs)
    except Exception as err:  # noqa: BLE001 — an unknown name or unreachable weights: the same one-line refusal
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"timm could not build {cfg.model!r} ({type(err).__name__}: {first}); check the name "
                          "(timm.list_models()) and that its weights are in timm's cache (transferlab does not "
                          "download them unless asked: download=True), or pass file=PATH") from None
    processing = timm_processing(model)
    preprocess = Preprocess(processing)
    split = callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))
    blocks: dict[str, nn.Module] = ({"features": _Features(preprocess, model, whole=False), "pooling": _Pooling(model)}
                                    if split else {"encoder": _Features(preprocess, model, whole=True)})
    side = processing.output_side
    probe = Backbone(blocks, input_spec=InputSpec("image", (3, *side)), feature_dim=1, spec=None).eval()
    with torch.no_grad():
        dim = int(probe.features(torch.zeros(1, 3, *side)).shape[1])
    return TimmBackbone(blocks, model=model, model_name=cfg.model, feature_dim=dim, side=side)


def timm_importable() -> bool:
    try:
        return importlib.util.find_spec("timm") is not None
    except (ValueError, ImportError):  # a module in sys.modules without a spec
        return "timm" in __import__("sys").modules


def _register() -> bool:
    """Register the `timm` entry when timm can be imported; True when it is registered."""
    if "timm" in list_backbones():
        return True
    if not timm_importable():
        return False

    @register_backbone("timm", TimmConfig, "a timm image model by name (--backbone timm:NAME), where timm is installed",
                       folder_based=True, ref_prefix=PREFIX, ref_option="model", inputs=("image",),
                       tiny=lambda scratch: {"model": "resnet10t", "pretrained": False},
                       ref_writer="transferlab.artifacts.store:write_timm_model")  # timm's smallest ResNet, no weights
    def timm_backbone(cfg: TimmConfig, input_spec: InputSpec) -> Backbone:
        if input_spec.kind != "image":
            raise ConfigError(f"timm:{cfg.model} takes images; the data gives {input_spec.describe()}s")
        return build_timm(cfg)

    return True


if not _register():
    mark_unavailable("timm", PREFIX, MISSING, _register)
