"""Export a model folder as a standard file: ONNX (torch.onnx with the dynamo exporter, dynamic batch axis).

The exported graph maps the model's input to its output: logits for a fine-tuned classifier (values
for a numeric one), features for a pretrained backbone. Image and vector models take float32
(batch, *input shape) in [0, 1], preprocessed as the model records; text encoders take the packed
token tensor (batch, 2, length) int64 — token ids and attention mask from the model's own tokenizer,
exactly what `TextBackbone.prepare_inputs` builds. Label names, input spec and preprocessing travel
in the file's metadata (`transferlab.*` keys), so the file is usable without transferlab.

After writing, the file is run in onnxruntime on 100 inputs and compared with the PyTorch model;
a difference beyond `PARITY_TOLERANCE` removes the file and raises.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .artifacts import LoadedModel
from .errors import ArtifactError, ConfigError

FORMATS = ("onnx", "hf")
PARITY_TOLERANCE = 1e-4  # max |logit difference| between onnxruntime and PyTorch
PARITY_INPUTS = 100


@dataclass
class ExportResult:
    """What `export` wrote. `to_json()` has the CLI's --json keys."""

    out: str
    format: str
    input_name: str
    input_shape: list[int | str]  # "batch" (and "length" for text) are dynamic axes
    input_dtype: str
    output_name: str
    label_names: list[str] | None
    parity_max_abs_diff: float | None  # None when the check was skipped
    parity_inputs: int
    # --format hf, a classifier: how transformers loads the folder (plain, or why trust_remote_code=True and the fix)
    transformers_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _ExportNet(nn.Module):
    """input -> output of a loaded folder, without data-dependent Python (text: no per-batch padding trim).

    Padded positions carry attention mask 0, so skipping the trim changes nothing but float rounding.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.backbone = loaded.backbone
        self.head = loaded.model.head if loaded.model is not None else None
        scale = _feature_scale(loaded)
        self.scaled = scale is not None
        if scale is not None:  # a numeric model's features are standardised: the exported graph takes raw rows
            self.register_buffer("feature_mean", scale[0])
            self.register_buffer("feature_std", scale[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scaled:
            x = (x - self.feature_mean) / self.feature_std  # (B, D)
        features = self.backbone.features_from(x, 0)  # (B, feature_dim)
        return features if self.head is None else self.head(features)  # (B, outputs)


def _no_onnxruntime_files() -> None:
    """Keep onnxruntime from writing a device-id file and database under ~/.cache (its telemetry store).

    It reads ORT_DISABLE_TELEMETRY when its library first loads, so this runs before every import of it;
    a value the user set is kept.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _feature_scale(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor] | None:
    prep = loaded.config.get("preprocessing") or {}
    if prep.get("feature_mean") is None or loaded.input_spec.kind != "vector":
        return None
    return (torch.tensor(prep["feature_mean"], dtype=torch.float32), torch.tensor(prep["feature_std"], dtype=torch.float32))


def _require_export_extra() -> None:
    _no_onnxruntime_files()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"export needs the export extra ({err.name} is missing): pip install 'transferlab[export]'"
        ) from None


def _output_name(loaded: LoadedModel) -> str:
    if loaded.model is None:
        return "features"
    return "value" if loaded.config.get("target") == "numeric" else "logits"


def _is_text(loaded: LoadedModel) -> bool:
    return loaded.input_spec.kind == "text"


def input_shape(loaded: LoadedModel) -> tuple[int, ...]:
    """One example's shape in the exported graph: the input spec, or for a model that resizes its own
    inputs (an ImageNet backbone) the shape of the data it was fine-tuned on (Fashion-MNIST: 1×28×28)."""
    if loaded.input_spec.any_size:
        recorded = (loaded.config.get("preprocessing") or {}).get("input_shape")
        if isinstance(recorded, list) and len(recorded) == 3:
            return tuple(int(d) for d in recorded)
    return tuple(loaded.input_spec.shape)


def parity_inputs(loaded: LoadedModel, n: int = PARITY_INPUTS, seed: int = 0) -> torch.Tensor:
    """`n` seeded inputs the model accepts: uniform [0, 1) images/vectors, or random token sequences
    of random lengths (with [CLS]/[SEP] and padding masked out) for text."""
    gen = torch.Generator().manual_seed(seed)
    if not _is_text(loaded):
        return torch.rand(n, *input_shape(loaded), generator=gen)
    tok = loaded.backbone.tokenizer
    longest = min(48, loaded.backbone.max_length)
    lengths = torch.randint(1, longest - 1, (n,), generator=gen)  # words between [CLS] and [SEP]
    ids = torch.full((n, longest), tok.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros(n, longest, dtype=torch.long)
    low = min(1000, tok.vocab_size // 2)  # past the special and unused tokens of BERT vocabularies
    for i, k in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, k + 1] = tok.cls_token_id, tok.sep_token_id
        ids[i, 1 : k + 1] = torch.randint(low, tok.vocab_size, (k,), generator=gen)
        mask[i, : k + 2] = 1
    return torch.stack([ids, mask], dim=1)  # (n, 2, L)


def _example(loaded: LoadedModel) -> tuple[torch.Tensor, dict[str, Any]]:
    """An input to trace with, and its dynamic axes (batch; also length for text)."""
    batch = torch.export.Dim("batch")
    if _is_text(loaded):
        x = loaded.backbone.prepare_inputs(["an example sentence to trace", "and a second, longer example sentence"])
        return x, {"x": {0: batch, 2: torch.export.Dim("length", max=loaded.backbone.max_length)}}
    return torch.zeros(2, *input_shape(loaded)), {"x": {0: batch}}


def _onnx_model(net: nn.Module, example: torch.Tensor, dynamic: dict[str, Any], output: str, opset: int | None) -> Any:
    """The ONNX ModelProto of `net`, exported quietly (the exporter logs and warns about unused ops)."""
    import logging
    import warnings

    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in quiet]
    try:
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kwargs = {"opset_version": opset} if opset is not None else {}
            program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes=dynamic, input_names=["x"],
                                        output_names=[output], verbose=False, **kwargs)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    return program.model_proto


def _metadata(loaded: LoadedModel, output: str) -> dict[str, str]:
    cfg = loaded.config
    meta = {
        "transferlab.format": "transferlab.onnx",
        "transferlab.kind": cfg["kind"],
        "transferlab.output": output,
        "transferlab.input_spec": json.dumps(cfg["input_spec"]),
        "transferlab.preprocessing": json.dumps(cfg.get("preprocessing", {})),
        "transferlab.architecture": json.dumps(cfg["architecture"]),
        "transferlab.weights_sha256": cfg["weights"]["sha256"],
    }
    if loaded.model is not None and cfg.get("target") != "numeric":
        meta["transferlab.label_names"] = json.dumps(loaded.label_names)
    if _is_text(loaded):
        meta["transferlab.input"] = ("token ids and attention mask packed as (batch, 2, length) int64, from the "
                                     "tokenizer of the encoder folder in transferlab.architecture")
    return meta


def onnx_parity(loaded: LoadedModel, onnx_path: str | Path, n: int = PARITY_INPUTS, seed: int = 0) -> float:
    """Max |difference| between onnxruntime's outputs for `onnx_path` and the PyTorch model's on `n` inputs.

    The inputs run in two batches (1 and n−1 examples), so the dynamic batch axis is exercised.

    Example:
        >>> onnx_parity(transferlab.load("models/tgt"), "model.onnx")  # doctest: +SKIP
        2.384185791015625e-07
    """
    _no_onnxruntime_files()
    import onnxruntime as ort

    from .engine.evaluate import predict_logits

    x = parity_inputs(loaded, n, seed)
    net = loaded.model if loaded.model is not None else loaded.backbone
    scale = _feature_scale(loaded)
    expected = predict_logits(net, x if scale is None else (x - scale[0]) / scale[1]).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"x": x[a:b].numpy()})[0] for a, b in ((0, 1), (1, n))])
    return float(np.abs(got - expected).max())


def is_exported_file(path: Path) -> bool:
    """Whether `path` is an ONNX file `export` wrote (its metadata has transferlab.* keys); read, never run."""
    import onnx

    if path.is_symlink() or not path.is_file():
        return False
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 — anything unreadable is not ours
        return False
    return any(p.key.startswith("transferlab.") for p in proto.metadata_props)


def export(
    model: str | Path,
    out: str | Path,
    *,
    format: str = "onnx",
    opset: int | None = None,
    check: bool = True,
    overwrite: bool = False,
    module: nn.Sequential | None = None,
    progress: Any = None,
) -> ExportResult:
    """Export a model folder (path or store name) as an ONNX file with a dynamic batch axis, or (`format="hf"`,
    text models) as a Hugging Face folder for sentence-transformers and transformers (see export_hf.py).

    `progress` as in `api.pretrain` (the export and the check are reported as steps).
    With `check` (the default) the file is run in onnxruntime on 100 inputs and must reproduce the
    PyTorch outputs within `PARITY_TOLERANCE`, else it is removed and ArtifactError is raised; an hf
    folder must reproduce embeddings and probabilities within `export_hf.HF_TOLERANCE`.

    Example:
        >>> r = export("models/tgt", "model.onnx")  # doctest: +SKIP
        >>> r.parity_max_abs_diff < 1e-4  # doctest: +SKIP
        True
    """
    # long: the public signature and docstring name every option; the body checks the model once, then dispatches onnx or hf
    from .api import load
    from .artifacts.files import atomic_write

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is not one of {list(FORMATS)}; use --format onnx (any model) or "
                          "--format hf (text models)")
    if format == "hf":
        return _export_hf(model, Path(out), check=check, overwrite=overwrite, opset=opset, progress=progress)
    if opset is not None and opset < 18:
        raise ConfigError(f"--opset {opset} is too old for torch's ONNX exporter; pass 18 or newer, or leave it out")
    out = Path(out)
    if out.is_dir():
        raise ArtifactError(f"{out} is a folder; --out takes a file path such as model.onnx")
    if out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    from .artifacts.ownership import check_name_length

    check_name_length(out)
    _require_export_extra()
    if out.exists() and not is_exported_file(out):
        raise ArtifactError(f"{out} was not written by transferlab export (no transferlab.* metadata in an ONNX "
                            "file); refusing to replace it even with --overwrite — choose another --out")
    from .engine.progress import progress_steps

    loaded = load(model, module=module)
    net = _ExportNet(loaded).eval()
    example, dynamic = _example(loaded)
    output = _output_name(loaded)
    with progress_steps("export onnx", total=None, progress=progress):
        proto = _onnx_model(net, example, dynamic, output, opset)
    for key, value in _metadata(loaded, output).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    # Checked under a temporary name first: a file that fails the check never replaces an older export.
    candidate = out.parent / f".{out.name}.{os.getpid()}.check"
    atomic_write(candidate, lambda f: f.write(proto.SerializeToString()))
    diff = None
    try:
        if check:
            with progress_steps(f"check onnx ({PARITY_INPUTS} inputs)", total=None, progress=progress):
                diff = onnx_parity(loaded, candidate)
            if not diff <= PARITY_TOLERANCE:
                raise ArtifactError(
                    f"the ONNX file does not reproduce {model}: max |difference| {diff:.3g} on {PARITY_INPUTS} inputs, "
                    f"allowed {PARITY_TOLERANCE:g}; the file was removed — try another --opset, or pass --no-check "
                    "to keep it anyway"
                )
        os.replace(candidate, out)
    finally:
        candidate.unlink(missing_ok=True)
    shape: list[int | str] = ["batch", 2, "length"] if _is_text(loaded) else ["batch", *input_shape(loaded)]
    return ExportResult(
        out=str(out), format=format, input_name="x", input_shape=shape,
        input_dtype="int64" if _is_text(loaded) else "float32", output_name=output,
        label_names=loaded.label_names if output == "logits" else None,
        parity_max_abs_diff=diff, parity_inputs=PARITY_INPUTS if check else 0,
    )


def _export_hf(model: str | Path, out: Path, *, check: bool, overwrite: bool, opset: int | None,
               progress: Any) -> ExportResult:
    from .api import load
    from .engine.progress import progress_steps
    from .export_hf import PARITY_INPUTS as HF_INPUTS, export_hf

    if opset is not None:
        raise ConfigError(f"--opset {opset} applies to --format onnx; drop it for --format hf")
    loaded = load(model)
    with progress_steps("export hf: write + check", total=None, progress=progress):
        diffs, note = export_hf(loaded, out, overwrite=overwrite, check=check)
    classifier = loaded.model is not None
    return ExportResult(
        out=str(out), format="hf", input_name="input_ids", input_shape=["batch", "length"], input_dtype="int64",
        output_name=_output_name(loaded) if classifier else "sentence_embedding",
        label_names=loaded.label_names if classifier and loaded.config.get("target") != "numeric" else None,
        parity_max_abs_diff=max(diffs.values()) if diffs else None, parity_inputs=HF_INPUTS if check else 0,
        transformers_note=note,
    )


