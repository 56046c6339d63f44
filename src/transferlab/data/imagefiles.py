"""Image files read with Pillow: a folder with one sub-folder per class, a flat folder, one file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferlab.data.images import check_image_size, frame_images
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


def read_images(paths: list[Path], image_size: int | None, image_margin: int, image_center: str = "box") -> np.ndarray:
    """Read image files into (N, C, H, W) float32 in [0, 1], grayscale if all are, else RGB.

    Without image_size every image must have the same size; with it each image is framed.
    """
    return np.asarray(open_images(paths, image_size, image_margin, lazy=False, image_center=image_center))


def open_images(paths: list[Path], image_size: int | None, image_margin: int, *,
                lazy: bool | None = None, image_center: str = "box") -> np.ndarray | LazyImages:
    """Image files as (N, C, H, W) float32 in [0, 1]: decoded now, or per batch (`LazyImages`).

    Every file's header is read first (size, mode, the pixel limit), so a bad file or a size mismatch is
    refused before anything is decoded. `lazy=None` decodes now when the decoded pixels would take at most
    `PRELOAD_BYTES` (and the input-bytes limit), else keeps only the paths and decodes the rows a batch asks for.
    """
    headers = [_header(path) for path in paths]  # (width, height, mode) of each file
    mode = "L" if all(m in _GRAY_MODES for _, _, m in headers) else "RGB"
    if image_size is None:
        (w0, h0, _) = headers[0]
        for path, (w, h, _) in zip(paths, headers):
            if (w, h) != (w0, h0):
                raise DataError(
                    f"images differ in size: {paths[0]} is {w0}×{h0} (width×height) but {path} is {w}×{h} "
                    f"(width×height); pass image_size (--image-size N) to resize all images to N×N"
                )
        side = (h0, w0)
    else:
        check_image_size(image_size, where="image_size")
        side = (image_size, image_size)
    channels = 1 if mode == "L" else 3
    lazy_images = LazyImages([Path(p) for p in paths], mode, channels, side, image_size, image_margin, image_center)
    decoded = len(paths) * channels * side[0] * side[1] * 4
    if lazy is None:  # above the input-bytes limit too: decoded per batch, that memory is never asked for
        lazy = decoded > min(PRELOAD_BYTES, limit("input_bytes"))
    if lazy:
        return lazy_images
    check_limit("input_bytes", decoded, what=f"{len(paths)} image files as float32 pixels",
                fix="read fewer or smaller images")
    return lazy_images.decode()


# Folders of image files whose decoded pixels (float32, at --image-size) take more than this are decoded per
# batch instead of once at load (Fashion-MNIST's 70,000 images at 224×224×3 would be 42 GB).
PRELOAD_BYTES = 256 << 20


class LazyImages:
    """Image files decoded per batch: (N, C, H, W) float32 in [0, 1], like the array they would make.

    Indexing with a slice, integer array or boolean mask gives another LazyImages over those files
    (nothing is decoded); an integer gives one decoded (C, H, W) image; `np.asarray(x)` (or `decode()`)
    decodes them all. Decoding is deterministic: the same file gives the same pixels every time.
    Consumers that stream (the frozen-feature cache, evaluation, training steps) take rows a batch at a time.
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, paths: list[Path], mode: str, channels: int, side: tuple[int, int],
                 image_size: int | None, image_margin: int, image_center: str = "box") -> None:
        self.paths, self.mode, self.channels, self.side = paths, mode, channels, side
        self.image_size, self.image_margin, self.image_center = image_size, image_margin, image_center

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.channels, *self.side)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} files, decoded per batch as {'×'.join(map(str, self.shape[1:]))} float32)"

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._subset([self.paths[key]]).decode()[0]
        if isinstance(key, slice):
            return self._subset(self.paths[key])
        if isinstance(key, tuple):
            raise IndexError("LazyImages are indexed by rows only (an int, slice, index array or mask); decode the rows "
                             "first (np.asarray(x[rows])) to index pixels")
        index = np.asarray(key.cpu() if hasattr(key, "cpu") else key)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(f"boolean index of shape {index.shape} for {len(self)} images")
            index = np.flatnonzero(index)
        return self._subset([self.paths[int(i)] for i in index.reshape(-1)])

    def _subset(self, paths: list[Path]) -> LazyImages:
        return LazyImages(paths, self.mode, self.channels, self.side, self.image_size, self.image_margin,
                          self.image_center)

    def decode(self) -> np.ndarray:
        """All the images, decoded: (N, C, H, W) float32."""
        from PIL import UnidentifiedImageError

        arrays = []
        for path in self.paths:
            try:
                image = _open_bounded(path)
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:  # changed or truncated since it was listed
                raise DataError(f"cannot read image file {path}: {exc}. Replace or remove the file "
                                "(images must be PNG/JPEG/BMP/GIF/TIFF/WebP)") from exc
            pixels = np.asarray(image.convert(self.mode), dtype=np.float32) / 255.0  # (H, W[, 3])
            arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))  # (C, H, W)
        if not arrays:
            return np.zeros((0, *self.shape[1:]), dtype=np.float32)
        if self.image_size is not None:
            return frame_images(arrays, self.image_size, self.image_margin, self.image_center)
        return np.stack(arrays)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = self.decode()
        return x if dtype is None else x.astype(dtype, copy=False)


def decoded_rows(x, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of an array or a LazyImages, as an array (decoded if lazy)."""
    rows = x[start:stop]
    return rows.decode() if isinstance(rows, LazyImages) else rows


def _header(path: Path) -> tuple[int, int, str]:
    """(width, height, mode) from an image file's header, refusing unreadable files and ones above the pixel limit."""
    from PIL import Image, UnidentifiedImageError

    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            check_limit("image_pixels", im.size[0] * im.size[1], what=f"image file {path} of {im.size[0]}×{im.size[1]} "
                        "pixels", fix="shrink the image before loading")
            return im.size[0], im.size[1], im.mode
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(
            f"cannot read image file {path}: {exc}. Replace or remove the file "
            f"(images must be PNG/JPEG/BMP/GIF/TIFF/WebP)"
        ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved


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


def read_image_folder(folder: Path, image_size: int | None, image_margin: int, image_center: str = "box") -> RawData:
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
    x = open_images(paths, image_size, image_margin, image_center=image_center)
    return RawData(
        x=x, y=np.asarray(labels, dtype=str), kind="image", source=str(folder),
        scale="divided by 255 (8-bit image files)", scale_divisor=255.0, framed=image_size is not None,
    )
