"""Random image transforms applied to each training batch (`--augment`).

With ten labelled examples per class, a network sees the same hundred images hundreds of times;
small random shifts, rotations and rescalings make each pass a slightly different image, the
standard remedy for few-shot overfitting on digits and natural images alike (Simard et al. 2003,
"Best practices for convolutional neural networks applied to visual document analysis").

The transforms are one batched affine warp (`F.affine_grid` + `F.grid_sample`), drawn from the
run's own data-order generator, so a resumed run draws the very same transforms, and the same
seed gives the same weights. Validation and test images are never transformed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError

AUGMENTS = ("none", "shift", "affine")
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
