"""`transferlab explain`: what transferred from a pretrained model into a fine-tuned one, and what it looks at.

For a fine-tuned model and the pretrained model it started from, on target examples of the test
split (never trained on; up to `max_examples` of them):
- linear CKA between the two models' outputs of every block (similarity.py): 1 where fine-tuning
  left the representation as it was, lower where it was rebuilt;
- weight drift of every block, ‖w − w₀‖ / ‖w₀‖ (drift.py): 0 for a frozen block;
- with the source task (`source_data`), source accuracy before and after fine-tuning (forgetting.py);
- attributions for a few examples (attributions.py), drawn as heatmaps or token highlights in
  OUT/explain.html when `out` is given.
The compare report's "What transferred" section reads the same measures for every saved model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..artifacts import LoadedModel, load_model_folder, resolve_model
from ..data import check_input_fits
from ..data.options import DataOptions
from ..errors import ArtifactError, ConfigError
from .attributions import Attribution, Method, attribute, check_method
from .drift import weight_drift
from .forgetting import Forgetting, forgetting
from .representations import block_outputs
from .runtime import analysis_threads
from .similarity import linear_cka
from .target import TargetSpec


@dataclass
class ExplainResult:
    """What `explain` measured. `to_json()` is the CLI's --json object."""

    model: str
    pretrained: str
    data: str
    n_examples: int
    blocks: list[str]
    cka: dict[str, float]
    drift: dict[str, float]
    forgetting: Forgetting | None
    method: str
    attributions: list[Attribution] = field(default_factory=list)
    out: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from ..jsonable import to_jsonable

        return to_jsonable({
            "model": self.model, "pretrained": self.pretrained, "data": self.data, "n_examples": self.n_examples,
            "blocks": [{"block": b, "cka": self.cka[b], "drift": self.drift[b]} for b in self.blocks],
            "forgetting": self.forgetting.to_json() if self.forgetting else None,
            "method": self.method, "attributions": [a.to_json() for a in self.attributions],
            "out": self.out, "notes": self.notes,
        })


def layer_similarity(pretrained: LoadedModel, finetuned: nn.Module, x: np.ndarray,
                     reference: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Linear CKA per block between the pretrained and fine-tuned backbones' outputs on inputs `x`."""
    before = reference if reference is not None else block_outputs(pretrained.backbone, x)
    after = block_outputs(finetuned, x)
    return {name: linear_cka(before[name], after[name]) for name in pretrained.backbone.block_names}


def _sample(n: int, k: int) -> np.ndarray:
    """A fixed random order of up to k of n rows (seed 0): the same examples every time."""
    return np.random.default_rng(0).permutation(n)[: min(n, k)]


def _pretrained_for(finetuned: LoadedModel, ref: str | None, module: nn.Sequential | None) -> tuple[str, LoadedModel]:
    recorded = finetuned.config.get("pretrained_from") or {}
    if ref is None:
        if not recorded.get("path"):
            raise ConfigError(f"{finetuned.path} does not record the pretrained model it was fine-tuned from; "
                              "pass --pretrained PATH")
        ref = recorded["path"]
        if not Path(ref).is_dir():
            raise ConfigError(f"{finetuned.path} was fine-tuned from {ref}, which is not there any more; pass "
                              "--pretrained PATH")
    pretrained = load_model_folder(resolve_model(ref), module=module)
    sha = pretrained.config["weights"]["sha256"]
    if recorded.get("sha256") and recorded["sha256"] != sha:
        raise ConfigError(
            f"{finetuned.path} was fine-tuned from weights with sha256 {recorded['sha256']}, but --pretrained {ref} has "
            f"sha256 {sha}; pass the pretrained model it was fine-tuned from"
        )
    return str(ref), pretrained


def _target_of(finetuned: LoadedModel, data: str | None, label_column: str | None, text_column: str | None,
               test_data: str | None) -> TargetSpec:
    """The target task as the fine-tuned model read it (its recorded preprocessing), by default its own data."""
    prep = finetuned.config.get("preprocessing") or {}
    recorded = finetuned.config.get("target_task") or {}
    if data is None:
        data = recorded.get("path")
        test_data = test_data or recorded.get("test_data")
    if not data:
        raise ConfigError(f"{finetuned.path} records no target data file; pass --data")
    return TargetSpec.recorded(str(data), prep, label_column=label_column, text_column=text_column, test_data=test_data)


def explain(
    model: str | Path,
    *,
    pretrained: str | Path | None = None,
    data: str | None = None,
    source_data: str | None = None,
    examples: int = 4,
    method: Method = "integrated-gradients",
    out: str | Path | None = None,
    max_examples: int = 500,
    label_column: str | None = None,
    text_column: str | None = None,
    test_data: str | None = None,
    data_options: DataOptions | None = None,
    module: nn.Sequential | None = None,
    threads: int | None = None,
) -> ExplainResult:
    """Layer-wise CKA, weight drift, forgetting (with `source_data`) and attributions of a fine-tuned model.

    `pretrained` defaults to the folder the model records it was fine-tuned from (its sha256 is
    checked); `data` to the model's own target data. With `out`, writes OUT/explain.html (heatmaps or
    token highlights) and OUT/explain.json. The data is read as the model recorded it; `label_column`,
    `text_column` and `test_data` (or those fields of `data_options`) override it.

    Example:
        >>> r = explain("models/tgt", pretrained="models/src", data="digits", source_data="mnist5k",
        ...             out="explain-out")  # doctest: +SKIP
        >>> r.cka, r.drift, r.forgetting.drop  # doctest: +SKIP
    """
    # long: one pass that loads both models once and measures every block; split, it would reload them
    given = DataOptions.overrides(data_options, "explain", label_column=label_column, text_column=text_column,
                                  test_data=test_data)
    check_method(method)
    if examples < 0:
        raise ConfigError(f"--examples must be 0 or more (attributed test examples); got {examples}")
    if max_examples < 2:
        raise ConfigError(f"max_examples must be at least 2 (CKA compares examples); got {max_examples}")
    if out is not None:
        from ..report.transferred import claim_explain_folder

        out = claim_explain_folder(out)
    finetuned = load_model_folder(resolve_model(model), module=module)
    if finetuned.model is None:
        raise ArtifactError(f"{model} is a pretrained backbone, not a fine-tuned model; explain compares a fine-tuned "
                            f"model with its pretrained one: transferlab finetune {model} --data DATA --out OUT first")
    pretrained_ref, source = _pretrained_for(finetuned, None if pretrained is None else str(pretrained), module)
    target = _target_of(finetuned, data, given.get("label_column"), given.get("text_column"), given.get("test_data"))
    task = target.load()
    check_input_fits(task, finetuned.input_spec, model_name=str(model))
    if task.class_names != finetuned.label_names:
        raise ConfigError(f"{target.data} has classes {task.class_names} but {model} predicts {finetuned.label_names}; "
                          "pass the data it was fine-tuned on")
    rows = _sample(len(task.y_test), max_examples)
    x = task.x_test[rows]
    with analysis_threads(threads):
        drift = weight_drift(source.backbone, finetuned.backbone)  # first: it checks the architectures match
        cka = layer_similarity(source, finetuned.backbone, x)
        lost = forgetting(source, finetuned.backbone, source_data) if source_data else None
        picked = rows[: min(examples, len(rows))]
        attributions = attribute(finetuned.model, task.x_test, task.y_test, picked, finetuned.label_names,
                                 method=method) if len(picked) else []
    notes = []
    if (finetuned.config.get("training") or {}).get("strategy") == "scratch":
        notes.append("this model was trained from scratch: its weights never started from the pretrained ones, so "
                     "its drift and similarity measure an independent network")
    result = ExplainResult(model=str(model), pretrained=pretrained_ref, data=target.data, n_examples=len(rows),
                           blocks=source.backbone.block_names, cka=cka, drift=drift, forgetting=lost, method=method,
                           attributions=attributions, notes=notes)
    if out is not None:
        from ..report.transferred import write_explain_page

        result.out = str(out)
        write_explain_page(Path(out), result)
    return result
