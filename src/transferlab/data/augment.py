"""Random image transforms applied to each training batch (`--augment`).

With ten labelled examples per class, a network sees the same hundred images hundreds of times;
small random shifts, rotations and rescalings make each pass a slightly different image, the
standard remedy for few-shot overfitting on digits and natural images alike (Simard et al. 2003,
"Best practices for convolutional neural networks applied to visual document analysis").

The transforms are one batched affine warp (`F.affine_grid` + `F.grid_sample`), drawn from the
run's own data-order generator, so a resumed run draws the very same transforms, and the same
seed gives the same weights. Validation and test images are never transformed.

Photos get the standard ImageNet-style choices (Szegedy et al. 2015; torchvision's defaults), as
batched tensor operations drawn from the same generator: "crop" (random resized crop: 35–100% of the
area, aspect 3/4–4/3, back to the batch's size), "flip" (horizontal, p = 0.5), "color" (brightness,
contrast and saturation, each ×0.7–1.3), and "photo" (all three). They run on the images as stored; a
backbone that resizes its own inputs (efficientnet-lite0) then brings them to its resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError

AUGMENTS = ("none", "shift", "affine", "crop", "flip", "color", "photo")
PHOTO_AUGMENTS = {"crop": ("crop",), "flip": ("flip",), "color": ("color",), "photo": ("crop", "flip", "color")}
CROP_AREA = (0.35, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
JITTER = 0.3
# Ranges, as fractions of the image side: "shift" moves up to 10% of the side (±2.8 px at 28×28);
# "affine" adds a rotation of up to ±12° and a rescaling by 0.85–1.15.
MAX_SHIFT = 0.10
MAX_DEGREES = 12.0
SCALE_RANGE = (0.85, 1.15)


def check_augment(augment: str, input_kind: str) -> None:
    """Refuse `--augment` where it has no meaning, before any training step."""
    if augment not in AUGMENTS:
        raise ConfigError(f"--augment {augment!r} is not one of {list(AUGMENTS)}")
    if augment != "none" and input_kind != "image":
        raise ConfigError(
            f"--augment {augment} transforms images; this task's inputs are {input_kind}s — "
            "drop --augment (or use --augment none)"
        )


def augment_batch(x: torch.Tensor, augment: str, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) images -> the same images, each moved (and for "affine" rotated and rescaled) at random."""
    if augment == "none":
        return x
    if augment in PHOTO_AUGMENTS:
        return photo_augment(x, PHOTO_AUGMENTS[augment], generator)
    b = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    # affine_grid maps output coordinates in [-1, 1] to input coordinates: a shift of t moves by t/2 of the side.
    tx, ty = uniform(-2 * MAX_SHIFT, 2 * MAX_SHIFT), uniform(-2 * MAX_SHIFT, 2 * MAX_SHIFT)
    if augment == "affine":
        angle = uniform(-MAX_DEGREES, MAX_DEGREES) * (math.pi / 180)
        scale = uniform(*SCALE_RANGE)
    else:
        angle, scale = torch.zeros(b), torch.ones(b)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def photo_augment(x: torch.Tensor, steps: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> random resized crop / horizontal flip / colour jitter, in that order."""
    b = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    if "crop" in steps:
        area = uniform(*CROP_AREA)
        aspect = torch.exp(uniform(math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])))
        sw, sh = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)  # crop side / image side
        tx, ty = (1 - sw) * uniform(-1.0, 1.0), (1 - sh) * uniform(-1.0, 1.0)  # the crop's centre, inside the image
        zero = torch.zeros(b)
        theta = torch.stack([torch.stack([sw, zero, tx], 1), torch.stack([zero, sh, ty], 1)], 1)  # (B, 2, 3)
        grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if "flip" in steps:
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device).view(b, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
    if "color" in steps:
        def factor() -> torch.Tensor:
            return uniform(1 - JITTER, 1 + JITTER).to(device=x.device, dtype=x.dtype).view(b, 1, 1, 1)

        brightness, contrast, saturation = factor(), factor(), factor()
        x = (x * brightness).clamp(0, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean).clamp(0, 1)
        if x.shape[1] == 3:
            gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x = ((x - gray) * saturation + gray).clamp(0, 1)
    return x
