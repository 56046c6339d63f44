"""`--image-size` for backbones that resize their own inputs (ImageNet models): the side they run at.

For `mlp`/`cnn`, `--image-size N` frames the data to N×N when it is loaded. A backbone whose input spec
is `any_size` crops and resizes every batch itself, so the data stay at their own size in memory (60,000
Fashion-MNIST images are 188 MB at 28×28, 42 GB at 224×224 as float32) and `--image-size` sets the
side the network runs at instead. Only a folder of image files of mixed sizes still needs a common size
when it is read; for it the same N is used.
"""

from __future__ import annotations

from pathlib import Path

from .backbone import Backbone


def apply_image_size(backbone: Backbone, data: str, image_size: int | None) -> int | None:
    """Set a resizing backbone's resolution from `image_size`; return the image_size the data loader gets.

    Example:
        >>> load_task(data, image_size=apply_image_size(source.backbone, data, 96))  # doctest: +SKIP
    """
    if image_size is None or not backbone.input_spec.any_size:
        return image_size
    backbone.set_resolution(int(image_size))
    return image_size if _is_photo_folder(data) else None


def _is_photo_folder(data: str) -> bool:
    """A folder with one sub-folder of image files per class (its images may differ in size)."""
    path = Path(str(data)).expanduser()
    return path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
