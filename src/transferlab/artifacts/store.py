"""The local model store: model folders under one root ($TRANSFERLAB_HOME, default ~/.transferlab/models)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model_folder import LoadedModel

from ..errors import ArtifactError
from .files import atomic_folder, fsync_path
from .model_folder import CONFIG, load_model_folder, read_config


def store_root() -> Path:
    """The store folder: $TRANSFERLAB_HOME if set, else ~/.transferlab/models."""
    env = os.environ.get("TRANSFERLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".transferlab" / "models"


def _home_hint() -> str:
    return ("set TRANSFERLAB_HOME to a writable folder" if os.environ.get("TRANSFERLAB_HOME")
            else "make ~/.transferlab writable, or set TRANSFERLAB_HOME to a writable folder")


def writable_store() -> Path:
    """The store folder, created if missing; a one-line error if it is a file or cannot be written."""
    from .ownership import os_error_message

    root = store_root()
    if root.exists() and not root.is_dir():
        raise ArtifactError(f"the model store {root} is a file, not a folder; {_home_hint()}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(f"the model store: {os_error_message(err, root, 'create the folder')} ({_home_hint()})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ArtifactError(f"the model store {root} is not writable; {_home_hint()}")
    return root


def check_store_name(name: str) -> str:
    """A store name is a plain name, never a path: no separators, not '.', '..', empty or hidden."""
    from ..errors import ConfigError
    from .ownership import check_name_length

    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith(".")
           or (os.sep in name) or (os.altsep is not None and os.altsep in name) or name != name.strip())
    if bad:
        raise ConfigError(f"store name {name!r} is not allowed: a store name is a plain name (letters, digits, '-', "
                          "'_', '.'; not empty, not '.' or '..', no '/' or '\\', not starting with '.'); pass a name "
                          "such as my-model")
    check_name_length(store_root() / name, "store")
    return name


def _mark_store_entry(folder: Path, name: str) -> None:
    """The marker that says the store created this entry: only such entries are ever removed by the store."""
    from datetime import datetime, timezone

    from .files import write_bytes_synced
    from .ownership import STORE_MARKER

    body = {"format": "transferlab.store-entry", "name": name,
            "added": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_bytes_synced(folder / STORE_MARKER, (json.dumps(body) + "\n").encode())


def packaged_models() -> dict[str, str]:
    """Pretrained models whose weights ship inside installed packages (name → where they come from), as their
    registry entries declare them; each is written into the store on first use."""
    from ..models.registry import packaged_backbones

    return packaged_backbones()


def _current_copy(dest: Path, name: str, origin: str) -> bool:
    """True when `dest` holds the store's copy of a packaged model or Hugging Face folder in this format.

    False when there is none, or there was one an older transferlab wrote (another format version):
    that copy is removed, to be written again from its source, which is still at hand. Only a copy the
    store made is removed: one with the store's marker, or (written before markers existed) one whose
    config records `origin` as its source and which holds nothing but a model folder's files.
    """
    from .model_folder import FORMAT_VERSION
    from .ownership import STORE_MARKER, foreign_entries

    config = dest / CONFIG
    if not config.is_file():
        return False
    try:
        if config.stat().st_size > 1 << 20:
            return True  # not a copy the store wrote; loading it says what is wrong
        recorded = json.loads(config.read_text())
        version = recorded.get("format_version")
    except (OSError, ValueError, RecursionError, AttributeError):
        return True  # loading it says what is wrong
    if version == FORMAT_VERSION:
        return True
    unmarked = not (dest / STORE_MARKER).exists() and not dest.is_symlink()
    if unmarked and str(recorded.get("origin", "")).startswith(origin) and not foreign_entries(dest):
        _mark_store_entry(dest, name)  # the store's own copy from before markers existed
    _check_removable(dest, name)  # anything else is never removed
    shutil.rmtree(dest)
    return False


def _writer(spec: str) -> Callable[..., Path]:
    """A registry entry's "module:function" (how the store writes a model), imported when used."""
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def materialize(ref: str) -> Path:
    """Write a packaged model (`minilm`, `efficientnet-lite0`) or what a reference names (`hf:/path`,
    `timm:NAME`) into the store, as the backbone's registry entry says.

    Afterwards it is a pretrained model like any other: a folder with config.json, safetensors
    weights and a model card saying where it came from. A copy written by an older transferlab
    (another model-folder format) is written again.
    """
    from ..models import resolve_backbone_ref
    from ..models.registry import backbone_entry

    kind, options = resolve_backbone_ref(ref)
    entry = backbone_entry(kind)
    if kind != ref:  # a reference such as hf:/path or timm:NAME
        if entry.ref_writer is None:
            raise ArtifactError(f"{ref!r} names a {kind} backbone, which the store cannot hold as a pretrained model; "
                                f"pretrain it first (transferlab pretrain --backbone {ref} --out DIR)")
        return _writer(entry.ref_writer)(str(options[entry.ref_option]), writable_store())
    if entry.packaged is None:
        raise ArtifactError(f"backbone {ref!r} ships no pretrained weights (packaged: {sorted(packaged_models())}); "
                            f"pretrain it first: transferlab pretrain --backbone {ref} --out DIR")
    if entry.packaged_writer is not None:
        _current_copy(store_root() / ref, ref, entry.packaged)
        dest = writable_store() / ref
        return _once(dest, ref, entry.packaged,
                     lambda: _writer(entry.packaged_writer)(dest, also_write=lambda folder: _mark_store_entry(folder, ref)))
    if _current_copy(store_root() / ref, ref, entry.packaged):
        return store_root() / ref  # written on an earlier use
    return _write_text_encoder(kind, ref, entry.packaged, {}, writable_store())


def _once(dest: Path, name: str, origin: str, write: Callable[[], Path]) -> Path:
    """`write()` the store's copy at `dest`; if another process wrote it meanwhile, theirs.

    Two first uses at once (two `--jobs`, two benchmark processes, a test run in several workers) each
    convert the packaged model; the first to finish puts its folder in place and the second's move then
    finds `dest` taken. Both wrote the same folder from the same source, so the second uses the first's.
    """
    try:
        return write()
    except (OSError, ArtifactError):
        if _current_copy(dest, name, origin):
            return dest
        raise


def _write_text_encoder(kind: str, name: str, origin: str, settings: dict[str, Any], root: Path) -> Path:
    """A text encoder (packaged, or a local Hugging Face folder) as a pretrained model in the store."""
    from ..data.task import InputSpec
    from ..models import create_backbone
    from .model_folder import save_model_folder

    dest = root / check_store_name(name)
    if _current_copy(dest, name, origin):
        return dest
    backbone = create_backbone(kind, InputSpec("text", ()), **settings)
    info = {
        "source_task": {"data": origin, "label_names": [], "n_train": "n/a"},
        "label_names": [],
        "preprocessing": {"text_column": "text", "label_column": "label", "classes": None},
        "metrics": {},
        "origin": origin,
    }
    return _once(dest, name, origin, lambda: save_model_folder(
        dest, backbone=backbone, head=None, head_spec=None, info=info, also_write=lambda folder: _mark_store_entry(folder, name)))


def write_hf_folder(value: str, root: Path) -> Path:
    """`hf:/path`: a local Hugging Face folder, a vision encoder or a BERT-style text encoder, into the store."""
    from ..models.hf_vision import is_vision_folder

    folder = Path(value).expanduser().resolve()
    if is_vision_folder(folder):
        return _materialize_hf_vision(folder, root)
    return _write_text_encoder("hf", f"hf-{folder.name}", f"the local Hugging Face folder {folder}",
                               {"path": str(folder)}, root)


def load_model(ref: str | Path, *, module: Any = None) -> "LoadedModel":
    """A model given by path, store name or packaged name, loaded and checksum-verified (`transferlab.load`)."""
    from .model_folder import load_model_folder

    return load_model_folder(resolve_model(ref), module=module)


def _is_backbone_ref(ref: str) -> bool:
    """`hf:/path` and the like: a reference a registry entry resolves (models imported only when one could be)."""
    if ":" not in ref:
        return False
    from ..models import resolve_backbone_ref

    return resolve_backbone_ref(ref)[0] != ref


def _materialize_hf_vision(folder: Path, root: Path) -> Path:
    """A local Hugging Face vision model folder as a pretrained model in the store (`hf-<folder name>`)."""
    from ..data.task import InputSpec
    from ..models import create_backbone
    from ..models.hf_vision import PREPROCESSOR

    name = f"hf-{folder.name}"
    origin = f"the local Hugging Face folder {folder}"
    dest = root / check_store_name(name)
    if _current_copy(dest, name, origin):
        return dest
    backbone = create_backbone("hf-vision", InputSpec("image", (3, 1, 1)), path=str(folder))
    return _save_image_encoder(dest, name, backbone, origin, f"{folder / PREPROCESSOR}")


def _save_image_encoder(dest: Path, name: str, backbone: Any, origin: str, processing_from: str) -> Path:
    """An image encoder whose first block preprocesses (resize, crop, normalise) saved as a store entry."""
    from .model_folder import save_model_folder

    processing = backbone.blocks[backbone.block_names[0]].preprocess.processing
    info = {
        "source_task": {"data": origin, "label_names": [], "n_train": "n/a"},
        "label_names": [],
        "preprocessing": {"from": processing_from, "size": processing.size,
                          "shortest_edge": processing.shortest_edge, "crop": processing.crop,
                          "mean": list(processing.mean), "std": list(processing.std), "resample": processing.mode,
                          "image_size": None, "image_margin": None, "classes": None, "channels": 3},
        "metrics": {},
        "origin": origin,
    }
    save_model_folder(dest, backbone=backbone, head=None, head_spec=None, info=info,
                      also_write=lambda folder: _mark_store_entry(folder, name))
    return dest


def write_timm_model(model_name: str, root: Path) -> Path:
    """`timm:NAME` as a pretrained model in the store (`timm-NAME`); later uses read the folder, not timm's cache."""
    import importlib.metadata

    from ..data.task import InputSpec
    from ..models import create_backbone

    try:
        version = importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    built_by = f"timm.create_model({model_name!r}, pretrained=True)"
    name = f"timm-{model_name}"
    dest = root / check_store_name(name)
    if _current_copy(dest, name, built_by):
        return dest
    backbone = create_backbone("timm", InputSpec("image", (3, 1, 1)), model=model_name)
    # Rebuilt from this folder, the model is created without timm's weights: the folder's safetensors hold them.
    backbone.spec = {**backbone.spec, "config": {**backbone.spec["config"], "pretrained": False, "file": None}}
    return _save_image_encoder(dest, name, backbone, f"{built_by} (timm {version})", "timm pretrained_cfg")



def resolve_model(ref: str | Path) -> Path:
    """A model given by path, by its name in the store, or a packaged encoder (`minilm`, `hf:/path`).

    Example:
        >>> resolve_model("models/src")  # a folder path  # doctest: +SKIP
    """
    path = Path(ref).expanduser()
    if (path / CONFIG).is_file():
        return path
    if str(ref) in packaged_models():  # written into the store on first use (again, after an upgrade of the format)
        return materialize(str(ref))
    in_store = store_root() / str(ref)
    if _is_plain_name(str(ref)) and (in_store / CONFIG).is_file():
        return in_store
    if _is_backbone_ref(str(ref)):
        return materialize(str(ref))
    if path.is_file():
        raise ArtifactError(
            f"{path} is a file, not a transferlab model folder; models are folders with {CONFIG} and "
            "model.safetensors, and transferlab never unpickles .pt/.pth/.bin files (loading them can run code). "
            "Pass a model folder written by `transferlab pretrain/finetune --out`"
        )
    if path.exists():
        raise ArtifactError(f"{path} is not a transferlab model folder: {CONFIG} is missing")
    names = [m["name"] for m in list_models() if not m.get("packaged")] + list(packaged_models())
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
        for name, origin in packaged_models().items()
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


def _is_plain_name(ref: str) -> bool:
    return bool(ref) and ref not in (".", "..") and not any(c in ref for c in "/\\\0") and not ref.startswith(".")


def add_model(path: str | Path, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Copy a model folder into the store after verifying its checksums, config hash and tensors.

    Only the model's own files are copied (config.json, model.safetensors, README.md, the source head):
    never a checkpoint or anything else that happens to be in the folder.

    Example:
        >>> add_model("models/src", "mnist-cnn")  # doctest: +SKIP
    """
    from .files import read_verified_safetensors
    from .model_folder import WEIGHTS, check_tensors
    from .ownership import model_files
    from .source_head import load_source_head

    src = Path(path)
    name = check_store_name(name if name is not None else src.resolve().name)
    config = read_config(src)  # refuses an edited config.json (its config_sha256)
    if config["architecture"]["backbone"] is not None:
        load_model_folder(src)  # verifies the checksums, the tensors and the architecture
    else:  # a wrapped user module: its code is not stored, but its files are verified all the same
        tensors = read_verified_safetensors(src / WEIGHTS, config["weights"]["sha256"])
        check_tensors(src / WEIGHTS, tensors, config["weights"]["tensors"])
        if config.get("source_head"):
            load_source_head(src, config)
    root = writable_store()
    dest = root / name
    if dest.is_symlink() or (dest.exists() and not overwrite):
        raise ArtifactError(f"the store already has a model {name!r}; pass --overwrite or --name ANOTHER")
    if dest.exists():
        _check_removable(dest, name)
    with atomic_folder(dest, replace=overwrite) as tmp:
        for file in sorted(model_files(src) or ()):
            if (src / file).is_file():
                shutil.copy2(src / file, tmp / file)
                fsync_path(tmp / file)
        _mark_store_entry(tmp, name)
    return dest


def _check_removable(dest: Path, name: str) -> None:
    """A store entry may be removed or replaced only if the store created it and it holds only its files."""
    from .ownership import STORE_MARKER, foreign_entries, refuse_foreign

    root = store_root().resolve()
    if dest.is_symlink():
        raise ArtifactError(f"store entry {name!r} is a symbolic link to {os.readlink(dest)}; the store removes only "
                            f"folders it created — remove the link by hand if you mean to: rm {dest}")
    real = dest.resolve()
    if real.parent != root or not real.is_dir():
        raise ArtifactError(f"store entry {name!r} resolves to {real}, outside the store {root}; it was not removed")
    if not (real / STORE_MARKER).is_file() or (real / STORE_MARKER).is_symlink():
        raise ArtifactError(f"{real} was not created by the store (it has no {STORE_MARKER}); it was not removed — "
                            f"if it is yours to delete, remove it by hand: rm -r {real}")
    refuse_foreign(real, foreign_entries(real, extra=(STORE_MARKER,)), "store entry",
                   f"move them out first, or remove the folder by hand: rm -r {real}")


def remove_model(name: str) -> Path:
    """Delete a model folder the store created (never a path, a link, or anything outside the store root).

    Example:
        >>> remove_model("mnist-cnn")  # doctest: +SKIP
    """
    check_store_name(name)
    dest = store_root() / name
    if not dest.is_symlink() and not (dest / CONFIG).is_file():
        names = [m["name"] for m in list_models() if not m.get("packaged")]
        raise ArtifactError(f"the store has no model {name!r} (store has: {names or 'nothing'})")
    _check_removable(dest, name)
    shutil.rmtree(dest)
    return dest
