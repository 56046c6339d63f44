"""What transferred in each model a comparison saved (`compare --save-models`): the report's section.

For every saved fine-tuned model (the seed-0 model of each cell) against the comparison's pretrained
model, on up to `max_examples` test examples of the target: linear CKA and weight drift per block,
and — when the pretrained folder has a source head and its source data can be read — source test
accuracy after fine-tuning beside the accuracy before it. Attributions are drawn for a few test
examples of one model: the best strategy at the largest label budget. Scratch models are left out:
they never started from the pretrained weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import load_model_folder, resolve_model
from ..artifacts.model_folder import CONFIG
from ..errors import ConfigError, TransferlabError
from .attributions import Attribution, attribute
from .drift import weight_drift
from .explanation import _sample, layer_similarity
from .forgetting import source_accuracy, source_spec, source_task
from .representations import block_outputs
from .runtime import analysis_threads
from .target import TargetSpec


@dataclass
class SavedModelMeasures:
    name: str
    strategy: str
    shots: int | str
    cka: dict[str, float]
    drift: dict[str, float]
    source_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "shots": self.shots, "cka": self.cka,
                "drift": self.drift, "source_accuracy": self.source_accuracy}


@dataclass
class TransferredSummary:
    """The measures of every saved model; `to_json()` is written to OUT/what_transferred.json."""

    blocks: list[str]
    models: list[SavedModelMeasures]
    n_examples: int
    source_data: str | None = None
    source_accuracy_before: float | None = None
    attribution_model: str | None = None
    attributions: list[Attribution] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from ..jsonable import to_jsonable

        return to_jsonable({"blocks": self.blocks, "n_examples": self.n_examples, "models": [m.to_json() for m in self.models],
                        "source_data": self.source_data, "source_accuracy_before": self.source_accuracy_before,
                        "attribution_model": self.attribution_model,
                        "attributions": [a.to_json() for a in self.attributions], "notes": self.notes})


def _shots_key(shots: int | str) -> tuple[int, int]:
    return (1, 0) if shots == "all" else (0, int(shots))


def what_transferred(models_dir: Path, config: dict[str, Any], *, best: dict[str, Any] | None = None,
                     examples: int = 3, max_examples: int = 500, threads: int | None = None) -> TransferredSummary:
    """Measures of the saved models in `models_dir` against the comparison's pretrained model.

    `config` is the comparison's stored config (pretrained, data and how to read it); `best` its
    recommendation ({shots: {"best": label}}), which picks the model whose attributions are drawn.

    Example:
        >>> summary = what_transferred(Path("cmp/models"), config)  # doctest: +SKIP
        >>> summary.models[0].cka  # doctest: +SKIP
    """
    target = TargetSpec.recorded(str(config["data"]), config)  # the comparison's data options, as its config holds them
    source = load_model_folder(resolve_model(config["pretrained"]))
    expected = config.get("pretrained_sha256")
    if expected and expected != source.config["weights"]["sha256"]:
        raise ConfigError(f"{config['pretrained']} now has weights with sha256 {source.config['weights']['sha256']}, "
                          f"not the {expected} this comparison was run from; restore that pretrained model")
    task = target.load()
    rows = _sample(len(task.y_test), max_examples)
    x = task.x_test[rows]
    folders = sorted(p for p in Path(models_dir).iterdir() if (p / CONFIG).is_file())
    summary = TransferredSummary(blocks=source.backbone.block_names, models=[], n_examples=len(rows))
    with analysis_threads(threads):
        reference = block_outputs(source.backbone, x)
        head = source_data_task = None
        if source.source_head is None:
            summary.notes.append("forgetting not measured: the pretrained folder has no source head (re-pretrain it "
                                 "to keep the pretraining output layer)")
        else:
            try:
                head, source_data_task = source_task(source)
                summary.source_data = source_spec(source).data
                summary.source_accuracy_before = source_accuracy(source.backbone, head, source_data_task)
            except TransferlabError as err:  # e.g. the source data is not on this machine
                summary.notes.append(f"forgetting not measured: {err}")
        for folder in folders:
            saved = json.loads((folder / CONFIG).read_text())
            strategy = (saved.get("training") or {}).get("strategy")
            if strategy == "scratch":
                continue
            loaded = load_model_folder(folder)
            shots = (saved.get("target_task") or {}).get("shots", "all")
            measures = SavedModelMeasures(folder.name, str(strategy), shots,
                                          layer_similarity(source, loaded.backbone, x, reference),
                                          weight_drift(source.backbone, loaded.backbone))
            if head is not None:
                measures.source_accuracy = source_accuracy(loaded.backbone, head, source_data_task)
            summary.models.append(measures)
        summary.models.sort(key=lambda m: (_shots_key(m.shots), m.name))
        pick = _attribution_model(summary.models, best)
        if pick is not None and examples > 0:
            loaded = load_model_folder(Path(models_dir) / pick)
            summary.attribution_model = pick
            summary.attributions = attribute(loaded.model, task.x_test, task.y_test, rows[:examples],
                                             loaded.label_names)
    return summary


def _attribution_model(models: list[SavedModelMeasures], best: dict[str, Any] | None) -> str | None:
    """The saved model of the best strategy at the largest label budget (else the last saved model)."""
    if not models:
        return None
    largest = max((m.shots for m in models), key=_shots_key)
    label = ((best or {}).get(str(largest)) or {}).get("best")
    chosen = [m for m in models if m.shots == largest and m.name == f"{label}-{largest}shot"]
    return (chosen or [m for m in models if m.shots == largest])[-1].name
