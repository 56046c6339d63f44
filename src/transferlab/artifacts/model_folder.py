"""The model folder format: `config.json`, `model.safetensors`, `README.md` (model card). No pickles.

A pretrained folder holds the backbone only (tensors `backbone.*`, no output layer, seed §2.2.1);
a fine-tuned folder adds the head (`head.*`). `config.json` records everything needed to rebuild and
trust the model: architecture, input spec, preprocessing, tasks and label names, metrics, versions,
the sha256 of the weights, and the ordered blocks with their tensor names.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ArtifactError, ConfigError
from ..models.backbone import Backbone
from ..models.head import HeadSpec, TransferModel
from .card import model_card
from .files import atomic_folder, sha256_file, write_bytes_synced

FORMAT = "transferlab.model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"  # a training checkpoint: the folder holds a run in progress


@dataclass
class LoadedModel:
    """A loaded folder: the network (a Backbone for pretrained folders, a TransferModel for fine-tuned) and its config."""

    path: Path
    config: dict[str, Any]
    backbone: Backbone
    model: TransferModel | None

    @property
    def kind(self) -> Literal["pretrained", "finetuned"]:
        return self.config["kind"]

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec.from_dict(self.config["input_spec"])

    @property
    def label_names(self) -> list[str]:
        return list(self.config["label_names"])


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"transferlab": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_model_folder(
    out: str | Path,
    *,
    backbone: Backbone,
    head: nn.Module | None,
    head_spec: HeadSpec | None,
    info: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a model folder atomically. `head=None` writes a pretrained folder (backbone only).

    `info` holds the task/metrics/training records (keys `source_task`, `target_task`,
    `label_names`, `preprocessing`, `metrics`, `training`, ...), copied into config.json.
    """
    from safetensors.torch import save_file

    out = Path(out)
    check_writable(out, overwrite=overwrite)
    tensors = {f"backbone.{k}": v.detach().contiguous().cpu() for k, v in backbone.state_dict().items()}
    if head is not None:
        tensors |= {f"head.{k}": v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": out.name,
        "kind": "pretrained" if head is None else "finetuned",
        "architecture": {
            "backbone": backbone.spec,
            "head": head_spec.to_dict() if head_spec is not None else None,
            "feature_dim": backbone.feature_dim,
        },
        "input_spec": backbone.input_spec.to_dict(),
        **info,
        "blocks": backbone.block_param_names(),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    def write(folder: Path) -> None:
        save_file(tensors, str(folder / WEIGHTS), metadata={"format": FORMAT})
        config["weights"] = {"file": WEIGHTS, "sha256": sha256_file(folder / WEIGHTS)}
        write_bytes_synced(folder / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
        write_bytes_synced(folder / "README.md", model_card(config).encode())

    if is_run_folder(out):
        _finish_run_folder(out, write)
        return out
    with atomic_folder(out, replace=overwrite) as tmp:
        write(tmp)
    return out


def is_run_folder(out: Path) -> bool:
    """A folder holding an unfinished run: a training checkpoint and no model yet."""
    return (out / CHECKPOINT).is_file() and not (out / CONFIG).is_file()


def _finish_run_folder(out: Path, write) -> None:
    """Turn a run folder into a model folder without a moment in which neither exists.

    The files are built beside it, then renamed in one by one — config.json last, so the folder is a
    model only when it is complete — and only then is the checkpoint removed. Killed at any point,
    the run either resumes from its checkpoint or is finished.
    """
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        for name in (WEIGHTS, "README.md", CONFIG):
            os.replace(tmp / name, out / name)
        (out / CHECKPOINT).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_writable(out: Path, *, overwrite: bool) -> None:
    """Refuse to clobber: an existing --out needs --overwrite, and only a model folder may be replaced."""
    if not out.exists() or is_run_folder(out):
        return
    if not overwrite:
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    if not (out / CONFIG).is_file() or read_config(out).get("format") != FORMAT:
        raise ArtifactError(
            f"{out} exists and is not a transferlab model folder; refusing to replace it even with --overwrite "
            "(choose another --out)"
        )


def read_config(path: Path) -> dict[str, Any]:
    cfg_path = Path(path) / CONFIG
    if not cfg_path.is_file():
        raise ArtifactError(f"{path} is not a transferlab model folder: {CONFIG} is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{cfg_path} is not valid JSON ({err}); the folder is damaged") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ArtifactError(f"{cfg_path} is not a transferlab model config (no \"format\": \"{FORMAT}\")")
    return config


def load_model_folder(path: str | Path, *, module: nn.Sequential | None = None) -> LoadedModel:
    """Load a model folder, verifying the sha256 of its weights first. Never unpickles anything.

    `module` is needed only for a folder saved from a wrapped user module (its code is not stored).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config = read_config(path)
    weights = path / config.get("weights", {}).get("file", WEIGHTS)
    if not weights.is_file():
        raise ArtifactError(f"{path} is incomplete: {weights.name} is missing")
    expected = config.get("weights", {}).get("sha256")
    actual = sha256_file(weights)
    if expected != actual:
        raise ArtifactError(
            f"{weights} fails its checksum: config.json expects sha256 {expected} but the file has {actual}; "
            "the file is truncated or modified — restore it from the original"
        )
    try:
        tensors = load_file(str(weights))
    except SafetensorError as err:
        raise ArtifactError(f"{weights} is not a readable safetensors file: {err}") from err
    backbone = _build_backbone(config, module)
    backbone_state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
    _load_strict(backbone, backbone_state, weights, "backbone")
    model = None
    if config["kind"] == "finetuned":
        head_spec = HeadSpec(**config["architecture"]["head"])
        model = TransferModel(backbone, head_spec)
        head_state = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
        _load_strict(model.head, head_state, weights, "head")
        model.eval()
    backbone.eval()
    return LoadedModel(path=path, config=config, backbone=backbone, model=model)


def _build_backbone(config: dict[str, Any], module: nn.Sequential | None) -> Backbone:
    from ..models import create_backbone, wrap_module

    spec = config["architecture"]["backbone"]
    input_spec = InputSpec.from_dict(config["input_spec"])
    if spec is None:
        if module is None:
            raise ConfigError(
                "this model was saved from a wrapped user module, whose code is not stored; "
                "pass the same module: load(path, module=MyNet())"
            )
        return wrap_module(module, input_shape=input_spec.shape)
    return create_backbone(spec["name"], input_spec, **spec["config"])


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], weights: Path, part: str) -> None:
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        raise ArtifactError(f"{weights} does not match its config.json architecture ({part}): {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise ArtifactError(
            f"{weights} does not match its config.json architecture ({part}): missing tensors "
            f"{result.missing_keys[:5]}, unexpected tensors {result.unexpected_keys[:5]}"
        )
