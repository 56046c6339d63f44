"""Image pixels: scaling to [0, 1], resizing into a framed square, and channel conversion.

Scaling rule (one divisor for a whole dataset, train and test together, so they stay comparable):
- uint8 pixels are divided by 255;
- float pixels already in [0, 1] are kept;
- any other pixels (other integer types, floats above 1) are divided by the dataset's maximum,
  e.g. 8×8 digits with values 0..16 are divided by 16;
- negative pixels are an error: 0 must mean background.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from transferlab.errors import DataError
from transferlab.limits import check_limit


def scale_divisor(
    arrays: Sequence[np.ndarray], *, source: str, names: Sequence[str], known_divisor: float | None = None
) -> tuple[float, str]:
    """Return the divisor that brings these image arrays to [0, 1] and a description of the rule.

    `known_divisor` (a task's recorded divisor, at predict time) replaces the dataset maximum.
    """
    for x, name in zip(arrays, names):
        if x.dtype.kind not in "iufb":
            raise DataError(f"{source}: image array '{name}' must be numeric; found dtype {x.dtype}")
        if x.size and x.min() < 0:
            index = tuple(int(i) for i in np.argwhere(x < 0)[0])
            raise DataError(
                f"{source}: {name}[{', '.join(map(str, index))}] is {x[index]}; image pixels must be "
                f">= 0 (0 = background). Rescale the images to [0, 1] or 0..255 before loading"
            )
    if all(x.dtype == np.uint8 for x in arrays):
        return 255.0, "divided by 255 (uint8 pixels)"
    top = max(float(x.max()) if x.size else 0.0 for x in arrays)
    if all(x.dtype.kind in "fb" for x in arrays) and top <= 1.0:
        return 1.0, "kept (float pixels already in [0, 1])"
    if known_divisor is not None:
        return known_divisor, f"divided by {known_divisor:g} (the divisor recorded with the task)"
    if top == 0.0:
        return 1.0, "kept (all pixels are 0)"
    return top, f"divided by the dataset maximum {top:g}"


def to_unit(x: np.ndarray, divisor: float) -> np.ndarray:
    """Divide pixels by `divisor` and return float32 in [0, 1]."""
    out = x.astype(np.float32) / np.float32(divisor)
    return np.clip(out, 0.0, 1.0, out=out)


IMAGE_CENTERS = ("box", "mass")


def frame_image(image: np.ndarray, size: int, margin: int = 0, center: str = "box") -> np.ndarray:
    """Resize one (C, H, W) image in [0, 1], keeping its aspect ratio, into a size×size frame.

    The longer side becomes size − 2·margin; the rest is padded with 0 (background). `center="box"`
    centres the resized image's box in the frame; `center="mass"` then moves it by whole pixels so
    its centre of mass lands on the frame's centre pixel (size/2, size/2), as MNIST's digits were
    placed (LeCun et al.: fit in 20×20, centred by centre of mass in 28×28), see `center_by_mass`.

    Example:
        >>> float(frame_image(np.ones((1, 8, 8), np.float32), 28, 4)[0, 4:24, 4:24].min())
        1.0
    """
    from PIL import Image  # imported here so `import transferlab.data` stays light

    channels, h, w = image.shape
    box = size - 2 * margin
    if (h, w) == (size, size) and margin == 0:
        framed = image.astype(np.float32, copy=False)
        return center_by_mass(framed) if center == "mass" else framed
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros((channels, size, size), dtype=np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    for c in range(channels):
        plane = Image.fromarray(np.ascontiguousarray(image[c], dtype=np.float32))  # mode 'F'
        resized = np.asarray(plane.resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.float32)
        out[c, top : top + new_h, left : left + new_w] = resized
    np.clip(out, 0.0, 1.0, out=out)
    return center_by_mass(out) if center == "mass" else out


def center_by_mass(image: np.ndarray) -> np.ndarray:
    """Move a (C, H, W) image by whole pixels so its centre of mass (all channels' ink) lands on pixel (H/2, W/2).

    The move is limited so no non-zero pixel leaves the frame; an all-zero image stays as it is.
    This is how MNIST's digits sit in their 28×28 frame; digits scaled to fill their frame (USPS,
    UCI digits) framed by box centring sit up to a few pixels away from that point.

    Example:
        >>> x = np.zeros((1, 28, 28), np.float32); x[0, 2:6, 2:6] = 1.0   # ink in the top-left corner
        >>> [int(i) for i in np.argwhere(center_by_mass(x)[0] > 0).mean(0).round(1) + 0.5]
        [14, 14]
    """
    mass = image.sum(0)  # (H, W)
    total = float(mass.sum())
    if total <= 0:
        return image
    h, w = mass.shape
    rows, cols = np.nonzero(mass)
    cy = float((mass.sum(1) * np.arange(h)).sum()) / total
    cx = float((mass.sum(0) * np.arange(w)).sum()) / total
    dy = int(np.clip(round(h / 2 - cy), -rows.min(), h - 1 - rows.max()))
    dx = int(np.clip(round(w / 2 - cx), -cols.min(), w - 1 - cols.max()))
    if dy == 0 and dx == 0:
        return image
    out = np.zeros_like(image)
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        image[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def frame_images(images: np.ndarray | Sequence[np.ndarray], size: int, margin: int = 0,
                 center: str = "box") -> np.ndarray:
    """Frame every (C, H, W) image into size×size; returns (N, C, size, size) float32.

    The size (from an option or a model's config.json) is checked against the limits before anything
    is allocated, so an edited `image_size: 60000` is refused instead of asking for many GiB.
    """
    check_image_size(size, where="image_size")
    channels = max((int(im.shape[0]) for im in images), default=1)
    check_limit("input_bytes", len(images) * channels * size * size * 4,
                what=f"{len(images)} images framed to {channels}×{size}×{size} float32",
                fix="use a smaller --image-size or fewer images")
    if len(images) == 0:
        return np.zeros((0, 1, size, size), dtype=np.float32)
    return np.stack([frame_image(im, size, margin, center) for im in images])  # (N, C, size, size)


def check_framing(image_size: int | None, image_margin: int, image_center: str = "box") -> None:
    """Raise DataError for an image_size/image_margin/image_center that cannot frame an image."""
    if image_center not in IMAGE_CENTERS:
        raise DataError(
            f"image_center must be one of {list(IMAGE_CENTERS)}; got {image_center!r}. box: the resized image centred "
            f"in its frame; mass: moved so its centre of mass is the frame's centre (as MNIST), e.g. --image-center mass"
        )
    if image_size is None:
        if image_center != "box":
            raise DataError(
                f"image_center={image_center!r} needs image_size: it places images in an image_size×image_size "
                f"frame. Pass --image-size too (e.g. --image-size 28 --image-margin 4 --image-center mass)"
            )
        if image_margin:
            raise DataError(
                f"image_margin={image_margin} needs image_size: the margin is the border left inside an "
                f"image_size×image_size frame. Pass --image-size too (e.g. --image-size 28 --image-margin 4)"
            )
        return
    check_image_size(image_size, where="image_size")
    if isinstance(image_margin, bool) or not isinstance(image_margin, int) or image_margin < 0:
        raise DataError(f"image_margin must be a whole number of pixels >= 0; got {image_margin!r}")
    if image_size - 2 * image_margin < 1:
        raise DataError(
            f"image_margin={image_margin} leaves no room inside a {image_size}×{image_size} frame; "
            f"use a margin below {image_size / 2:g}"
        )


def check_image_size(size: object, *, where: str) -> None:
    """Refuse an image size that is not a positive whole number or is above the image-size limit."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"{where} must be a positive whole number of pixels; got {size!r}")
    check_limit("image_size", size, what=f"{where} {size}", fix="pick a size near your images' own (e.g. 28 or 224)")


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Convert (N, C, H, W) images between grayscale (1 channel) and RGB (3 channels)."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 3 and channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2 luma, as Pillow's 'L'
        return np.einsum("nchw,c->nhw", x, weights)[:, None].astype(np.float32)  # (N, 1, H, W)
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=1)  # (N, 3, H, W)
    raise DataError(f"cannot convert images with {have} channels to {channels} channels; give 1 (grayscale) or 3 (RGB)")


def preprocess_inputs(x: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Apply a task's recorded preprocessing (channels, image_size, image_margin, image_center) to inputs in [0, 1].

    Use it at evaluate/predict time so new inputs look like the ones a model was trained on.
    Pixels must already be in [0, 1]; (N, H, W) arrays count as grayscale images (N, 1, H, W).
    Vector inputs (N, D) are returned unchanged.

    Example:
        >>> x, names = load_inputs("my_digits/")  # doctest: +SKIP
        >>> x = preprocess_inputs(x, task.preprocessing)   # e.g. 8×8 → 28×28 framed like MNIST  # doctest: +SKIP
    """
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    if x.ndim != 4:
        return x
    channels = preprocessing.get("channels")
    if channels is not None:
        x = convert_channels(x, int(channels))
    size = preprocessing.get("image_size")
    if size is None:
        return x
    return frame_images(x, int(size), int(preprocessing.get("image_margin") or 0),
                        preprocessing.get("image_center") or "box")
