"""The source head: the output layer a backbone was pretrained with, kept beside the pretrained model.

The pretrained model itself is the backbone without its output layer (seed §2.2.1): fine-tuning never
uses this head. It is stored as a second safetensors file, `source_head.safetensors`, so analyses that
need the source task's predictions can run: LEEP (transferability from source-label predictions) and
forgetting (source accuracy of a fine-tuned backbone). config.json records its file, sha256, head spec
and tensor shapes under `"source_head"`; loading verifies them like the weights. Folders written
before the source head was saved simply have no such key and no file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ArtifactError
from ..models.head import HeadSpec, build_head
from .files import fsync_path, read_verified_safetensors, sha256_file

SOURCE_HEAD = "source_head.safetensors"


def write_source_head(folder: Path, head: nn.Module, spec: HeadSpec) -> dict[str, Any]:
    """Save the pretraining head into `folder`; return its config.json record."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(tensors, str(folder / SOURCE_HEAD), metadata={"format": "transferlab.source_head"})
    fsync_path(folder / SOURCE_HEAD)
    return {
        "file": SOURCE_HEAD,
        "sha256": sha256_file(folder / SOURCE_HEAD),
        "spec": spec.to_dict(),
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
    }


def load_source_head(path: Path, config: dict[str, Any]) -> nn.Sequential | None:
    """The source head of a pretrained folder, checksum and shapes verified; None if the folder has none."""
    record = config.get("source_head")
    if not record:
        return None
    file = Path(path) / record.get("file", SOURCE_HEAD)
    if not file.is_file():
        raise ArtifactError(
            f"{path} is incomplete: config.json lists a source head but {file.name} is missing; restore the file "
            "from the original folder (or re-pretrain)"
        )
    tensors = read_verified_safetensors(file, record.get("sha256"))
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    if shapes != record.get("shapes"):
        raise ArtifactError(f"{file} holds tensors {shapes} but config.json records {record.get('shapes')}")
    try:  # built on the meta device first: an edited spec (10⁹ outputs) is refused before anything is allocated
        spec = HeadSpec(**record["spec"])
        with torch.device("meta"):
            expected = {k: list(v.shape) for k, v in build_head(config["architecture"]["feature_dim"], spec).state_dict().items()}
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ArtifactError(f"{path}/config.json: source_head spec {record.get('spec')!r} is not a valid head "
                            f"({type(err).__name__}: {err}); the folder is damaged — restore it from the original") from None
    if expected != shapes:
        raise ArtifactError(f"{file} holds tensors {shapes} but the head spec {record['spec']} in config.json needs "
                            f"{expected}; the folder is damaged — restore it from the original")
    head = build_head(config["architecture"]["feature_dim"], spec)
    try:
        head.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ArtifactError(f"{file} does not match its recorded head spec {record['spec']}: {err}") from err
    head.eval()
    return head

