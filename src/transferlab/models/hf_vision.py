"""Local Hugging Face vision encoders as backbones (`hf:/path` on a folder of a vision model).

Any folder that `transformers.AutoModel` loads and whose model takes `pixel_values` (ViT, DeiT, BEiT,
DINOv2, ConvNeXt, ResNet, Swin, MobileNetV2, …) becomes a backbone. Its own modules are reused, not
reimplemented; weights are read from safetensors only, offline. Blocks, input side first:
- transformers with `embeddings` + `encoder.layer` (ViT, DeiT, BEiT, DINOv2): `embeddings`, `layer0` …,
  `pooling` (the final layer norm, then the model's own pooler, or the [CLS] token where it has none);
- CNNs with an embedder + `encoder.stages` (ResNet, ConvNeXt): `embeddings`, `stage0` …, `pooling`;
- anything else: one block, `encoder`, whose output is the model's own pooled output.

Preprocessing comes from the folder's `preprocessor_config.json` and runs inside the first block, on
batches of [0, 1] pixels of any size (grayscale repeated to RGB): resize (to `size`: height × width, or
the shortest edge), centre crop (`crop_size`, if `do_center_crop`), normalise (`image_mean`/`image_std`).
It is written with torch operations (no torchvision), so it exports to ONNX with the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError, ShapeError
from .backbone import Backbone
from .registry import register_backbone

PREPROCESSOR = "preprocessor_config.json"
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL's resample codes, as image processors store them


def is_vision_folder(path: Path) -> bool:
    """A Hugging Face folder with an image processor config (vision models), as opposed to a tokenizer."""
    try:
        prep = json.loads((Path(path) / PREPROCESSOR).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(prep, dict) and ("image_mean" in prep or "image_processor_type" in prep)


@dataclass
class ImageProcessing:
    """What `preprocessor_config.json` asks for, in [0, 1] pixel units."""

    size: tuple[int, int] | None  # (height, width), or None with `shortest_edge`
    shortest_edge: int | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    mode: str

    @classmethod
    def from_folder(cls, path: Path) -> "ImageProcessing":
        file = Path(path) / PREPROCESSOR
        try:
            prep = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{file} could not be read ({err}); a vision model folder needs its image processor "
                              "config (save it with AutoImageProcessor.save_pretrained)") from None

        def side(value: Any) -> tuple[tuple[int, int] | None, int | None]:
            if isinstance(value, int):
                return (value, value), None
            if isinstance(value, dict) and "height" in value and "width" in value:
                return (int(value["height"]), int(value["width"])), None
            if isinstance(value, dict) and "shortest_edge" in value:
                return None, int(value["shortest_edge"])
            return None, None

        size, shortest = side(prep.get("size")) if prep.get("do_resize", True) else (None, None)
        crop = side(prep.get("crop_size"))[0] if prep.get("do_center_crop") else None
        if size is None and shortest is None and crop is None:
            raise ConfigError(f"{file} gives no image size (size or crop_size); add \"size\": "
                              "{\"height\": H, \"width\": W}")
        normalize = prep.get("do_normalize", True)
        mean = tuple(float(m) for m in prep.get("image_mean", [0.5] * 3)) if normalize else (0.0, 0.0, 0.0)
        std = tuple(float(s) for s in prep.get("image_std", [0.5] * 3)) if normalize else (1.0, 1.0, 1.0)
        return cls(size=size, shortest_edge=shortest, crop=crop, mean=mean, std=std,
                   mode=_RESAMPLE.get(prep.get("resample", 2), "bilinear"))

    @property
    def output_side(self) -> tuple[int, int]:
        if self.crop is not None:
            return self.crop
        if self.size is not None:
            return self.size
        return (self.shortest_edge, self.shortest_edge)


class Preprocess(nn.Module):
    """(B, 1 or 3, H, W) in [0, 1] → resized, centre-cropped, normalised (B, 3, h, w) as the folder says."""

    def __init__(self, processing: ImageProcessing) -> None:
        super().__init__()
        self.processing = processing
        self.register_buffer("mean", torch.tensor(processing.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(processing.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            got = "×".join(str(s) for s in x.shape[1:])
            raise ShapeError(f"this vision encoder takes grayscale or RGB images (1 or 3 channels); got examples of "
                             f"shape {got}: convert the images to RGB")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        p = self.processing
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if p.size is not None:
            target = p.size
        elif p.shortest_edge is not None:
            scale = p.shortest_edge / min(h, w)
            target = (max(1, round(h * scale)), max(1, round(w * scale)))
        else:
            target = (h, w)
        if target != (h, w):
            x = F.interpolate(x, size=target, mode=p.mode, align_corners=False if p.mode != "nearest" else None)
        if p.crop is not None:
            (ch, cw), (h, w) = p.crop, target
            if ch > h or cw > w:  # a crop larger than the image: resize up to it instead
                x = F.interpolate(x, size=(ch, cw), mode=p.mode, align_corners=False if p.mode != "nearest" else None)
            else:
                top, left = (h - ch) // 2, (w - cw) // 2
                x = x[..., top : top + ch, left : left + cw]
        return (x - self.mean) / self.std  # (B, 3, h, w)


class _Embeddings(nn.Module):
    def __init__(self, preprocess: Preprocess, embeddings: nn.Module) -> None:
        super().__init__()
        self.preprocess, self.embeddings = preprocess, embeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.embeddings(self.preprocess(x))
        return out[0] if isinstance(out, tuple) else out


class _Layer(nn.Module):
    """One transformer layer or CNN stage: one tensor in, one out."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.layer(h)
        if isinstance(out, tuple):
            return out[0]
        return getattr(out, "last_hidden_state", out)


class _TokenPooling(nn.Module):
    """Final layer norm, then the model's own pooler (ViT: dense + tanh on [CLS]) or the [CLS] token."""

    def __init__(self, norm: nn.Module | None, pooler: nn.Module | None) -> None:
        super().__init__()
        self.norm, self.pooler = norm, pooler

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            h = self.norm(h)  # (B, L, H)
        if self.pooler is not None:
            return self.pooler(h)  # (B, H)
        return h[:, 0]


class _MapPooling(nn.Module):
    """The model's own pooler on a feature map (ResNet: average pool; ConvNeXt: mean, then layer norm)."""

    def __init__(self, pooler: nn.Module | None, norm: nn.Module | None) -> None:
        super().__init__()
        self.pooler, self.norm = pooler, norm

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        pooled = self.pooler(h).flatten(1) if self.pooler is not None else h.mean(dim=(-2, -1))  # (B, C)
        return self.norm(pooled) if self.norm is not None else pooled


class _Whole(nn.Module):
    """Any other encoder: preprocessing and the whole model, its pooled output as features."""

    def __init__(self, preprocess: Preprocess, model: nn.Module) -> None:
        super().__init__()
        self.preprocess, self.model = preprocess, model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=self.preprocess(x))
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            hidden = out.last_hidden_state
            pooled = hidden.mean(dim=(-2, -1)) if hidden.dim() == 4 else hidden[:, 0]
        return pooled.flatten(1)


class HFVisionBackbone(Backbone):
    """A Hugging Face vision encoder with the transfer interface; it takes images of any size."""

    def __init__(self, blocks: dict[str, nn.Module], *, hf_model: nn.Module, feature_dim: int,
                 side: tuple[int, int]) -> None:
        super().__init__(blocks, input_spec=InputSpec("image", (3, *side), any_size=True), feature_dim=feature_dim,
                         spec=None)
        object.__setattr__(self, "_hf_model", hf_model)  # for its own init scheme; not a second copy of weights

    def set_resolution(self, size: int) -> None:
        raise ConfigError(f"a Hugging Face vision encoder runs at the size its {PREPROCESSOR} gives "
                          f"({self.input_spec.shape[1]}×{self.input_spec.shape[2]}); drop --image-size, or change "
                          "the size in that file")

    def check_input(self, x: torch.Tensor, *, what: str = "input") -> None:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            got = "×".join(str(s) for s in x.shape[1:])
            raise ShapeError(f"{what} has examples of shape {got} but this vision encoder takes images of 1 or 3 "
                             "channels (C×H×W, any size); give grayscale or RGB images")

    def reset_parameters(self) -> None:
        """Random initialisation with the model's own scheme (a fresh model of the same config, copied in)."""
        fresh = type(self._hf_model)(self._hf_model.config)
        self._hf_model.load_state_dict(fresh.state_dict())


def _child(model: nn.Module, *paths: str) -> nn.Module | None:
    """The first sub-module found at one of the dotted paths (transformers versions name them differently)."""
    for path in paths:
        module: Any = model
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.Module):
            return module
    return None


@dataclass
class HFVisionConfig:
    """A local Hugging Face vision model folder (`--backbone hf:/path`)."""

    path: str | None = field(default=None, metadata={
        "help": "a local Hugging Face vision model folder (config.json, weights, preprocessor_config.json)"})


def build_hf_vision(path: Path) -> HFVisionBackbone:
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ConfigError("Hugging Face vision encoders need transformers: pip install 'transferlab[text]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from .text import _check_safetensors_only

    hf_logging.disable_progress_bar()
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a Hugging Face model folder (config.json is missing)")
    _check_safetensors_only(path)
    processing = ImageProcessing.from_folder(path)
    try:
        model = AutoModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
    except Exception as err:  # noqa: BLE001 — any failure to read a user's folder is the same user-facing problem
        raise ConfigError(f"{path} could not be loaded as a Hugging Face vision model ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if getattr(model, "main_input_name", None) != "pixel_values":
        raise ConfigError(f"{path} holds a {type(model).__name__}, which takes {getattr(model, 'main_input_name', '?')}, "
                          "not pixel_values: it is not a vision encoder")
    preprocess = Preprocess(processing)
    embeddings = _child(model, "embeddings", "embedder")
    layers = _child(model, "encoder.layer", "encoder.layers", "layers", "layer")
    stages = _child(model, "encoder.stages", "stages")
    blocks: dict[str, nn.Module]
    if embeddings is not None and isinstance(layers, nn.ModuleList) and \
            type(model).__name__.startswith(("ViT", "DeiT", "Dinov2", "Beit", "Data2VecVision")):
        blocks = {"embeddings": _Embeddings(preprocess, embeddings)}
        blocks |= {f"layer{i}": _Layer(layer) for i, layer in enumerate(layers)}
        blocks["pooling"] = _TokenPooling(getattr(model, "layernorm", None), getattr(model, "pooler", None))
    elif embeddings is not None and isinstance(stages, nn.ModuleList):
        blocks = {"embeddings": _Embeddings(preprocess, embeddings)}
        blocks |= {f"stage{i}": _Layer(stage) for i, stage in enumerate(stages)}
        norm = getattr(model, "layernorm", None) if type(model).__name__.startswith("ConvNext") else None
        blocks["pooling"] = _MapPooling(getattr(model, "pooler", None), norm)
    else:
        blocks = {"encoder": _Whole(preprocess, model)}
    side = processing.output_side
    probe = Backbone(blocks, input_spec=InputSpec("image", (3, *side)), feature_dim=1, spec=None).eval()
    with torch.no_grad():
        dim = int(probe.features(torch.zeros(1, 3, *side)).shape[1])
    backbone = HFVisionBackbone(blocks, hf_model=model, feature_dim=dim, side=side)
    # A transformer wants small steps (ViT fine-tuning uses ~1e-4 with Adam and less); the new head larger ones.
    backbone.default_lr, backbone.default_backbone_lr = 1e-3, 1e-4
    return backbone


def tiny_vision_folder(scratch: Path) -> Path:
    """A 2-layer, 16-wide ViT with random weights and its image processor config, written once under `scratch`.

    The tiny instance of `hf-vision` (conformance tests, examples): the same code path at a sliver of the compute.
    """
    folder = Path(scratch) / "tiny-vit"
    if (folder / PREPROCESSOR).is_file():
        return folder
    import torch
    from transformers import ViTConfig, ViTModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32)).save_pretrained(folder)
    prep = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 16, "width": 16},
            "resample": 2, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (folder / PREPROCESSOR).write_text(json.dumps(prep))
    return folder


@register_backbone("hf-vision", HFVisionConfig,
                   "a local Hugging Face vision encoder folder: ViT, DeiT, DINOv2, ConvNeXt, ResNet, … (--backbone hf:/path)",
                   folder_based=True, inputs=("image",), tiny=lambda scratch: {"path": str(tiny_vision_folder(scratch))})
def hf_vision(cfg: HFVisionConfig, input_spec: InputSpec) -> Backbone:
    if not cfg.path:
        raise ConfigError("the hf-vision backbone needs a folder: --backbone hf:/path/to/model")
    if input_spec.kind != "image":
        raise ConfigError(f"a vision encoder takes images; the data gives {input_spec.describe()}s")
    return build_hf_vision(Path(cfg.path).expanduser())
