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
from typing import Any, Callable, Literal

import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ArtifactError, ConfigError
from ..models.backbone import MAX_FEATURE_GRID, Backbone
from ..models.head import HeadSpec, TransferModel
from .card import model_card
from .files import atomic_folder, fsync_path, read_verified_safetensors, sha256_file, write_bytes_synced
from .source_head import SOURCE_HEAD, load_source_head, write_source_head

FORMAT = "transferlab.model"
FORMAT_VERSION = 2  # 2: config.json carries config_sha256 and weights.tensors
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"  # a training checkpoint, kept in run_dir(out) while a run is in progress


def run_dir(out: Path) -> Path:
    """The run-private folder beside --out (`.NAME.run`) where an unfinished run keeps its checkpoint."""
    return out.parent / f".{out.name}.run"


@dataclass
class LoadedModel:
    """A loaded folder: the network (a Backbone for pretrained folders, a TransferModel for fine-tuned) and its config."""

    path: Path
    config: dict[str, Any]
    backbone: Backbone
    model: TransferModel | None
    # The output layer used at pretraining (pretrained folders saved with one): LEEP and forgetting need it.
    source_head: nn.Sequential | None = None

    @property
    def kind(self) -> Literal["pretrained", "finetuned"]:
        return self.config["kind"]

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec.from_dict(self.config["input_spec"])

    @property
    def label_names(self) -> list[str]:
        return list(self.config.get("label_names", []))


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
    source_head: nn.Module | None = None,
    source_head_spec: HeadSpec | None = None,
    also_write: Callable[[Path], None] | None = None,
) -> Path:
    """Write a model folder atomically. `head=None` writes a pretrained folder (backbone only).

    `info` holds the task/metrics/training records (keys `source_task`, `target_task`,
    `label_names`, `preprocessing`, `metrics`, `training`, ...), copied into config.json.
    `source_head` (with its spec) is the pretraining output layer, saved beside a pretrained folder's
    weights as `source_head.safetensors` (see artifacts/source_head.py). `also_write(folder)` adds files
    to the folder before it is moved into place (the store's entry marker).
    """
    from safetensors.torch import save_file

    out = writable_model_path(out)
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
        fsync_path(folder / WEIGHTS)
        config["weights"] = {"file": WEIGHTS, "sha256": sha256_file(folder / WEIGHTS), "tensors": tensor_record(tensors)}
        if source_head is not None and source_head_spec is not None:
            config["source_head"] = write_source_head(folder, source_head, source_head_spec)
        seal_config(config)
        write_bytes_synced(folder / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
        write_bytes_synced(folder / "README.md", model_card(config).encode())
        if also_write is not None:
            also_write(folder)

    with atomic_folder(out, replace=overwrite) as tmp:
        write(tmp)
    return out


def writable_model_path(out: str | Path) -> Path:
    """Where a model folder given as --out is written: its name checked for length, a symbolic link followed."""
    from .ownership import check_name_length

    out = Path(out)
    check_name_length(out)
    if out.is_symlink():
        out = out.resolve()
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ArtifactError(f"--out {out}: the folder {parent} is not writable (the model and its checkpoint are "
                            "written there); choose a writable location")
    return out


def is_run_folder(out: Path) -> bool:
    """A folder an older transferlab left holding an unfinished run: its checkpoint inside, no model yet."""
    return (out / CHECKPOINT).is_file() and not (out / CONFIG).is_file()


def check_writable(out: Path, *, overwrite: bool) -> None:
    """Refuse to clobber: an existing --out needs --overwrite, and only a model folder holding nothing but
    the files transferlab wrote into it may be replaced."""
    from .ownership import foreign_entries, model_files, refuse_foreign

    if out.exists() and not out.is_dir():
        raise ArtifactError(f"--out {out} is a file; a model is saved as a folder — choose another --out")
    if not out.exists():
        return
    if not any(out.iterdir()):
        return  # an empty folder: nothing to lose
    if not overwrite:
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    if model_files(out) is None:
        raise ArtifactError(
            f"{out} exists and is not a transferlab model folder; refusing to replace it even with --overwrite "
            "(choose another --out)"
        )
    refuse_foreign(out, foreign_entries(out), "--out", "move them out of the folder, or choose another --out")


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of every field of a config.json but `config_sha256` itself, in a canonical JSON form."""
    import hashlib

    body = {k: v for k, v in config.items() if k != "config_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal_config(config: dict[str, Any]) -> dict[str, Any]:
    """Record the hash that protects config.json (`config_sha256`); returns the same dict.

    Example:
        >>> cfg = seal_config({"format": "transferlab.model", "label_names": ["a", "b"]})
        >>> cfg["config_sha256"] == config_digest(cfg)
        True
    """
    config["config_sha256"] = config_digest(config)
    return config


def tensor_record(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Name → dtype and shape of every tensor in a weights file (config.json's `weights.tensors`)."""
    return {k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape)} for k, v in sorted(tensors.items())}


def check_tensors(file: Path, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    """The weights file must hold exactly the tensors config.json records: none extra, none missing, same dtype and shape."""
    found = tensor_record(tensors)
    extra = sorted(found.keys() - record.keys())
    missing = sorted(record.keys() - found.keys())
    fix = "the file was modified or replaced — restore the folder from the original"
    if extra:
        raise ArtifactError(f"{file} holds tensor {extra[0]!r} ({found[extra[0]]['dtype']} {found[extra[0]]['shape']})"
                            f"{f' and {len(extra) - 1} more' if len(extra) > 1 else ''} that config.json does not "
                            f"record; {fix}")
    if missing:
        raise ArtifactError(f"{file} lacks tensor {missing[0]!r}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"
                            f" that config.json records; {fix}")
    for name in sorted(found):
        if found[name] != record[name]:
            raise ArtifactError(f"{file}: tensor {name!r} is {found[name]['dtype']} {found[name]['shape']} but config.json "
                                f"records {record[name].get('dtype')} {record[name].get('shape')}; {fix}")


def read_config(path: Path) -> dict[str, Any]:
    cfg_path = Path(path) / CONFIG
    if not cfg_path.is_file():
        raise ArtifactError(f"{path} is not a transferlab model folder: {CONFIG} is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except (ValueError, RecursionError) as err:  # bad JSON or UTF-8, nesting too deep, a 5000-digit number
        raise ArtifactError(f"{cfg_path} is not valid JSON ({type(err).__name__}: {str(err)[:200]}); "
                            "the folder is damaged") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ArtifactError(f"{cfg_path} is not a transferlab model config (no \"format\": \"{FORMAT}\")")
    version = config.get("format_version")
    if version == 1:
        raise ArtifactError(
            f"{cfg_path} was written by an older transferlab (format_version 1): it carries no config_sha256, so an "
            "edit of its label names, preprocessing or architecture could not be detected; save the model again with "
            "this version (transferlab pretrain/finetune --out; the packaged models minilm and efficientnet-lite0 "
            "are written again on their next use)"
        )
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{cfg_path} has format_version {version!r}; this transferlab reads {FORMAT_VERSION} — "
                            "load it with the transferlab version that wrote it")
    _check_config(config, cfg_path)
    recorded, actual = config.get("config_sha256"), config_digest(config)
    if recorded != actual:
        raise ArtifactError(
            f"{cfg_path} was edited after it was saved: its fields hash to sha256 {actual} but config_sha256 records "
            f"{recorded!r}; transferlab trusts label names, preprocessing and architecture only as saved — restore "
            "the original config.json (or save the model again)"
        )
    return config


_SHAPE_RANKS = {"image": 3, "vector": 1, "text": 0}


def _check_config(config: dict[str, Any], cfg_path: Path) -> None:
    """Refuse a config.json without what loading relies on, naming the key (a damaged or hand-made file)."""

    def bad(key: str, got: Any, allowed: str) -> ArtifactError:
        shown = repr(got) if len(repr(got)) <= 200 else repr(got)[:200] + "…"
        return ArtifactError(f"{cfg_path}: {key} is {shown}; expected {allowed}. The folder is damaged or was not "
                             "written by transferlab — restore it from the original")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    kind = config.get("kind")
    if kind not in ("pretrained", "finetuned"):
        raise bad('"kind"', kind, '"pretrained" or "finetuned"')
    arch = config.get("architecture")
    if not isinstance(arch, dict):
        raise bad('"architecture"', arch, "a mapping with backbone, head and feature_dim")
    backbone = arch.get("backbone", "(missing)")
    if backbone is not None and not (isinstance(backbone, dict) and isinstance(backbone.get("name"), str)
                                     and isinstance(backbone.get("config"), dict)):
        raise bad('"architecture.backbone"', backbone, 'null (a wrapped user module) or {"name": ..., "config": {...}}')
    blocks = backbone.get("feature_blocks", []) if isinstance(backbone, dict) else []
    if not (isinstance(blocks, list) and all(isinstance(b, str) for b in blocks)):
        raise bad('"architecture.backbone.feature_blocks"', blocks, 'a list of block names like ["stage6", "conv_head"]')
    grid = backbone.get("feature_grid", 1) if isinstance(backbone, dict) else 1
    if not (is_int(grid) and 1 <= grid <= MAX_FEATURE_GRID and (grid == 1 or blocks)):
        raise bad('"architecture.backbone.feature_grid"', grid, f"a whole number from 1 to {MAX_FEATURE_GRID}, with feature_blocks")
    if not (is_int(arch.get("feature_dim")) and arch["feature_dim"] >= 1):
        raise bad('"architecture.feature_dim"', arch.get("feature_dim"), "a whole number ≥ 1")
    head = arch.get("head")
    if kind == "finetuned" and not isinstance(head, dict):
        raise bad('"architecture.head"', head, "a mapping (a fine-tuned model has a head)")
    spec = config.get("input_spec")
    shape = spec.get("shape") if isinstance(spec, dict) else None
    if not (isinstance(spec, dict) and isinstance(spec.get("kind"), str) and spec["kind"] in _SHAPE_RANKS
            and isinstance(shape, list)
            and len(shape) == _SHAPE_RANKS[spec["kind"]] and all(is_int(d) and d >= 1 for d in shape)):
        raise bad('"input_spec"', spec, '{"kind": "image", "shape": [C, H, W]}, {"kind": "vector", "shape": [D]} '
                  'or {"kind": "text", "shape": []}')
    weights = config.get("weights")
    if not (isinstance(weights, dict) and weights.get("file") == WEIGHTS and isinstance(weights.get("sha256"), str)
            and isinstance(weights.get("tensors"), dict)
            and all(isinstance(r, dict) and isinstance(r.get("shape"), list) for r in weights["tensors"].values())):
        raise bad('"weights"', weights, f'{{"file": "{WEIGHTS}", "sha256": "...", "tensors": {{name: {{"dtype": ..., '
                  '"shape": [...]}}}} (weights are safetensors, never a pickle)')
    labels = config.get("label_names", [] if kind == "pretrained" else None)
    if not (isinstance(labels, list) and all(isinstance(n, str) for n in labels)):
        raise bad('"label_names"', labels, "a list of class names (strings)")
    if kind == "finetuned" and config.get("target", "class") != "numeric" and len(labels) != head.get("num_outputs"):
        raise bad('"label_names"', labels, f"one name per output of the head ({head.get('num_outputs')!r})")
    for key in ("preprocessing", "source_task", "target_task", "metrics", "training", "source_head"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise bad(f'"{key}"', config[key], "a mapping or null")
    record = config.get("source_head")
    if record and not (record.get("file") == SOURCE_HEAD and isinstance(record.get("sha256"), str)
                       and isinstance(record.get("spec"), dict) and isinstance(record.get("shapes"), dict)):
        raise bad('"source_head"', record, f'{{"file": "{SOURCE_HEAD}", "sha256": ..., "spec": {{...}}, "shapes": {{...}}}}')


def load_model_folder(path: str | Path, *, module: nn.Sequential | None = None) -> LoadedModel:
    """Load a model folder, verifying the sha256 of its weights first. Never unpickles anything.

    `module` is needed only for a folder saved from a wrapped user module (its code is not stored).
    """
    path = Path(path)
    config = read_config(path)
    weights = path / WEIGHTS  # the only name read_config accepts: never a pickle such as model.pt
    if not weights.is_file():
        raise ArtifactError(f"{path} is incomplete: {weights.name} is missing")
    tensors = read_verified_safetensors(weights, config["weights"]["sha256"])
    check_tensors(weights, tensors, config["weights"]["tensors"])
    backbone_state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
    backbone = _build_backbone(config, module, backbone_state, weights)
    _load_strict(backbone, backbone_state, weights, "backbone")
    model = None
    if config["kind"] == "finetuned":
        head_state = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
        head_spec = _head_spec(config, head_state, weights)
        model = TransferModel(backbone, head_spec)
        _load_strict(model.head, head_state, weights, "head")
        model.eval()
    backbone.eval()
    return LoadedModel(path=path, config=config, backbone=backbone, model=model,
                       source_head=load_source_head(path, config))


def _build_backbone(config: dict[str, Any], module: nn.Sequential | None, state: dict[str, torch.Tensor],
                    weights: Path) -> Backbone:
    from ..models import backbone_entry, create_backbone, list_backbones, wrap_module

    spec = config["architecture"]["backbone"]
    input_spec = InputSpec.from_dict(config["input_spec"])
    if spec is None:
        if module is None:
            raise ConfigError(
                "this model was saved from a wrapped user module, whose code is not stored; "
                "pass the same module: load(path, module=MyNet())"
            )
        return wrap_module(module, input_shape=input_spec.shape)

    def build() -> Backbone:
        backbone = create_backbone(spec["name"], input_spec, **spec["config"])
        if spec.get("feature_blocks"):  # a linear probe on pooled outputs of chosen blocks
            backbone.set_feature_blocks(spec["feature_blocks"], grid=spec.get("feature_grid", 1))
        return backbone

    folder_based = spec.get("name") in list_backbones() and backbone_entry(spec["name"]).folder_based
    if not folder_based:  # a folder-based backbone's sizes come from its folder, not from config.json
        _check_shapes(build, state, weights, "backbone", spec)  # sizes from config.json are checked unallocated
    return build()


def _head_spec(config: dict[str, Any], state: dict[str, torch.Tensor], weights: Path) -> HeadSpec:
    from ..models.head import build_head

    record = config["architecture"]["head"]
    try:
        spec = HeadSpec(**record)
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"{weights.parent / CONFIG}: architecture.head {record} is not a valid head ({err}); "
                            "the folder is damaged — restore it from the original") from None
    _check_shapes(lambda: build_head(config["architecture"]["feature_dim"], spec), state, weights, "head", record)
    return spec


def _check_shapes(build, state: dict[str, torch.Tensor], weights: Path, part: str, spec: Any) -> None:
    """Build the architecture on the meta device (no memory) and compare its tensor shapes with the file's.

    A config.json whose sizes were edited (a hidden layer of 10⁹ units) is refused before anything is allocated.
    """
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as err:
        raise ArtifactError(f"{weights.parent / CONFIG}: the {part} {spec} cannot be built ({type(err).__name__}: "
                            f"{err}); the folder is damaged — restore it from the original") from None
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        differ = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
        raise ArtifactError(
            f"{weights} does not match its config.json architecture ({part}): missing tensors "
            f"{sorted(expected.keys() - found.keys())[:5]}, unexpected tensors {sorted(found.keys() - expected.keys())[:5]}"
            + (f", shapes differ for {[(k, found[k], expected[k]) for k in differ[:3]]} (file, config)" if differ else "")
        )


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
