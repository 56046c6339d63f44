"""Image files read with Pillow: a folder with one sub-folder per class, a flat folder, one file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferlab.data.images import frame_images
from transferlab.data.rawdata import RawData
from transferlab.errors import DataError
from transferlab.limits import check_limit, limit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def is_image_file(path: Path) -> bool:
    """True for a visible file whose suffix is an image type Pillow reads."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def read_images(paths: list[Path], image_size: int | None, image_margin: int) -> np.ndarray:
    """Read image files into (N, C, H, W) float32 in [0, 1], grayscale if all are, else RGB.

    Without image_size every image must have the same size; with it each image is framed.
    """
    from PIL import UnidentifiedImageError

    opened = []
    for path in paths:
        try:
            opened.append(_open_bounded(path))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise DataError(
                f"cannot read image file {path}: {exc}. Replace or remove the file "
                f"(images must be PNG/JPEG/BMP/GIF/TIFF/WebP)"
            ) from exc
    mode = "L" if all(im.mode in _GRAY_MODES for im in opened) else "RGB"
    if image_size is None:
        first = opened[0]
        for path, im in zip(paths, opened):
            if im.size != first.size:
                raise DataError(
                    f"images differ in size: {paths[0]} is {_size(first)} but {path} is {_size(im)}; "
                    f"pass image_size (--image-size N) to resize all images to N×N"
                )
    check_limit("input_bytes", sum(im.size[0] * im.size[1] for im in opened) * (1 if mode == "L" else 3) * 4,
                what=f"{len(opened)} image files as float32 pixels", fix="read fewer or smaller images")
    arrays = []
    for im in opened:
        pixels = np.asarray(im.convert(mode), dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
        arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))  # (C, H, W)
    if image_size is None:
        return np.stack(arrays)  # (N, C, H, W)
    return frame_images(arrays, image_size, image_margin)


def _open_bounded(path: Path):
    """Open one image file and decode it only if its header's width × height is within the pixel limit.

    The header is read with Pillow's own decompression-bomb guard off, so the refusal names the size;
    the guard is then set to the same limit while decoding (formats whose frames are sized only then),
    and its warning counts as an error: a 20000×20000 PNG of a few KB is never decoded.
    """
    import warnings

    from PIL import Image

    bound = limit("image_pixels")
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            check_limit("image_pixels", im.size[0] * im.size[1], what=f"image file {path} of {im.size[0]}×{im.size[1]} pixels",
                        fix="shrink the image before loading")
            Image.MAX_IMAGE_PIXELS = bound
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                try:
                    im.load()
                except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                    raise DataError(
                        f"image file {path} is above the limit of {bound:,} pixels per image ({exc}); shrink the "
                        f"image before loading, or raise the limit with the environment setting "
                        f"TRANSFERLAB_MAX_IMAGE_PIXELS=N if this is intended"
                    ) from None
            return im.copy()
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _size(im) -> str:
    return f"{im.size[0]}×{im.size[1]} (width×height)"


def read_image_folder(folder: Path, image_size: int | None, image_margin: int) -> RawData:
    """Read a folder holding one sub-folder of images per class; class names are sub-folder names."""
    class_dirs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not class_dirs:
        loose = len(image_files(folder))
        found = f" (found {loose} images directly in it)" if loose else ""
        raise DataError(
            f"{folder}: image folder has no class sub-folders{found}; put the images of each class "
            f"in their own sub-folder, e.g. {folder}/cat/1.png, {folder}/dog/2.png"
        )
    paths: list[Path] = []
    labels: list[str] = []
    for class_dir in class_dirs:
        files = image_files(class_dir)
        if not files:
            raise DataError(
                f"{class_dir}: class sub-folder holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                f"add images or remove the folder"
            )
        paths += files
        labels += [class_dir.name] * len(files)
    x = read_images(paths, image_size, image_margin)
    return RawData(
        x=x, y=np.asarray(labels, dtype=str), kind="image", source=str(folder),
        scale="divided by 255 (8-bit image files)", scale_divisor=255.0, framed=image_size is not None,
    )
