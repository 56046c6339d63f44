"""`transferlab rank`: score pretrained models (or the blocks of one) for a target task before fine-tuning.

Each model's features of the target's labelled examples get LogME, LEEP (when the model has a source
head), H-score and a k-fold linear-probe accuracy (see transferability.py and probe.py). Models come
back best first by LogME, each with the seconds its scoring took. With `layers=True` one model's
every block is scored, suggesting where to cut: freezing the blocks up to the best-scoring one.
Given comparison folders of the same target, each score's Kendall τ against the accuracy that
fine-tuning actually reached is reported (validation.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn

from ..jsonable import to_jsonable
from ..errors import ConfigError
from .probe import probe_accuracy
from .representations import block_outputs, source_probabilities
from .runtime import analysis_threads
from ..data.options import DataOptions
from .target import TargetSpec, load_model, source_head
from .transferability import hscore, leep, logme
from .validation import SCORES, Validation, matching_comparisons, validate_layers, validate_models

# LogME differences below this (nats per example) are ties: cut at the deepest of the tied blocks,
# which freezes more and trains fewer parameters.
CUT_TOLERANCE = 0.01


def cut_index(logmes: Sequence[float], tolerance: float = CUT_TOLERANCE) -> int:
    """0-based index of the block to cut after: the deepest whose LogME is within `tolerance` of the best.

    Example:
        >>> cut_index([0.20, 0.50, 0.495]), cut_index([0.2, 0.5, 0.3])
        (2, 1)
    """
    finite = [v if v is not None and math.isfinite(v) else -math.inf for v in logmes]
    top = max(finite)
    return max(i for i, v in enumerate(finite) if v >= top - tolerance)


@dataclass
class Scores:
    """The four scores of one representation (N, dim) and the seconds they took."""

    logme: float
    leep: float | None
    hscore: float
    probe_accuracy: float | None
    dim: int
    seconds: float


def score_representation(features: np.ndarray, labels: np.ndarray, *, source_probs: np.ndarray | None = None,
                         folds: int = 5, seed: int = 0) -> Scores:
    """LogME, LEEP (given source-head probabilities), H-score and k-fold probe accuracy of one representation."""
    start = time.perf_counter()
    return Scores(
        logme=logme(features, labels),
        leep=None if source_probs is None else leep(source_probs, labels),
        hscore=hscore(features, labels),
        probe_accuracy=probe_accuracy(features, labels, folds=folds, seed=seed),
        dim=int(features.shape[1]),
        seconds=time.perf_counter() - start,
    )


@dataclass
class ModelScore:
    """One ranked model: its scores on the target's labelled examples and the seconds scoring it took."""

    model: str
    logme: float
    leep: float | None
    hscore: float
    probe_accuracy: float | None
    seconds: float
    feature_dim: int
    sha256: str = ""  # of the model's weights: matches it to comparison folders

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "logme": self.logme, "leep": self.leep, "hscore": self.hscore,
                "probe_accuracy": self.probe_accuracy, "seconds": self.seconds, "feature_dim": self.feature_dim}


@dataclass
class LayerScore:
    """One block's output scored; cutting here means freezing `freeze` blocks (input side first)."""

    block: str
    freeze: int
    logme: float
    leep: float | None
    hscore: float
    probe_accuracy: float | None
    seconds: float
    dim: int

    def to_json(self) -> dict[str, Any]:
        return {"block": self.block, "freeze": self.freeze, "logme": self.logme, "leep": self.leep,
                "hscore": self.hscore, "probe_accuracy": self.probe_accuracy, "seconds": self.seconds, "dim": self.dim}


@dataclass
class RankResult:
    """What `rank` found. `to_json()` is the CLI's --json object."""

    data: str
    shots: int | str
    n_examples: int
    models: list[ModelScore] = field(default_factory=list)
    model: str | None = None  # layers mode: the one model whose blocks were scored
    model_sha256: str = ""
    layers: list[LayerScore] | None = None
    feature_seconds: float | None = None  # layers mode: one pass through every block
    validation: Validation | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best_layer(self) -> LayerScore | None:
        """The block to cut after: the deepest within CUT_TOLERANCE of the best LogME."""
        return None if not self.layers else self.layers[cut_index([l.logme for l in self.layers])]

    @property
    def suggestion(self) -> str | None:
        """Layers mode: the strategy that cuts at the best block ('linear-probe' when it is the last)."""
        best = self.best_layer
        if best is None or self.layers is None:
            return None
        return "linear-probe" if best.freeze == len(self.layers) else f"partial --freeze {best.freeze}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data, "shots": self.shots, "n_examples": self.n_examples}
        if self.layers is None:
            out["models"] = [m.to_json() for m in self.models]
        else:
            best = self.best_layer
            out |= {"model": self.model, "layers": [l.to_json() for l in self.layers],
                    "best_block": best.block if best else None, "suggested_freeze": best.freeze if best else None,
                    "suggestion": self.suggestion, "feature_seconds": self.feature_seconds}
        out["validation"] = self.validation.to_json() if self.validation is not None else None
        out["notes"] = self.notes
        return to_jsonable(out)


def _order(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def rank(
    models: Sequence[str | Path],
    data: str,
    *,
    shots: int | None = None,
    layers: bool = False,
    compare: Sequence[str | Path] = (),
    seed: int = 0,
    folds: int = 5,
    data_options: DataOptions | None = None,
    classes: str | list | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    image_center: str = "box",
    label_column: str = "label",
    text_column: str = "text",
    test_data: str | None = None,
    module: nn.Sequential | None = None,
    threads: int | None = None,
) -> RankResult:
    """Rank pretrained models for a target task from their features, without fine-tuning any of them.

    Scores use only the training split's labelled examples (K per class with `shots`, drawn with
    `seed` exactly as `finetune` draws them); validation and test splits are never read. `compare`
    names comparison folders of the same target whose fine-tuned accuracies validate the scores.
    The target is read with `data_options` (a DataOptions) or its fields as keywords, as in `finetune`.

    Example:
        >>> r = rank(["models/cnn", "models/mlp"], "digits", shots=10, image_size=28, image_margin=4)  # doctest: +SKIP
        >>> [m.model for m in r.models]  # best first by LogME  # doctest: +SKIP
        >>> rank(["models/cnn"], "digits", layers=True, image_size=28, image_margin=4).suggestion  # doctest: +SKIP
        'partial --freeze 2'
    """
    models = [str(m) for m in models]
    if not models:
        raise ConfigError("rank needs at least one pretrained model (a folder path or a store name)")
    if layers and len(models) != 1:
        raise ConfigError(f"--layers scores the blocks of one model; got {len(models)} models ({', '.join(models)}). "
                          "Pass one model, or drop --layers to rank several")
    if len(set(models)) != len(models):
        dupes = sorted({m for m in models if models.count(m) > 1})
        raise ConfigError(f"each model is ranked once; {dupes} appear more than once")
    target = TargetSpec.of(data, data_options, classes=classes, image_size=image_size, image_margin=image_margin,
                           image_center=image_center, label_column=label_column, text_column=text_column, test_data=test_data)
    task, split = target.labelled(shots, seed)
    result = RankResult(data=str(data), shots=shots if shots is not None else "all", n_examples=len(split.y_train))
    # libraries every score uses load once here, so the first model's seconds are its own scoring only
    import sklearn.covariance  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    with analysis_threads(threads):
        if layers:
            _rank_layers(models[0], task, split, result, folds=folds, seed=seed, module=module)
        else:
            for ref in models:
                result.models.append(_score_model(ref, task, split, result.notes, folds=folds, seed=seed, module=module))
            result.models.sort(key=lambda m: _order(m.logme), reverse=True)
    if compare:
        result.validation = _validate(result, [str(c) for c in compare], target)
    return result


def _score_model(ref: str, task, split, notes: list[str], *, folds: int, seed: int, module) -> ModelScore:
    start = time.perf_counter()
    loaded = load_model(ref, task, module=module)
    feats = block_outputs(loaded.backbone, split.x_train, blocks=[loaded.backbone.block_names[-1]])
    final = feats[loaded.backbone.block_names[-1]]
    head, why_not = source_head(loaded)
    if why_not:
        notes.append(f"{ref}: LEEP skipped — {why_not}")
    probs = source_probabilities(head, final) if head is not None else None
    scores = score_representation(final, split.y_train, source_probs=probs, folds=folds, seed=seed)
    return ModelScore(model=ref, logme=scores.logme, leep=scores.leep, hscore=scores.hscore,
                      probe_accuracy=scores.probe_accuracy, seconds=time.perf_counter() - start, feature_dim=scores.dim,
                      sha256=loaded.config["weights"]["sha256"])


def _rank_layers(ref: str, task, split, result: RankResult, *, folds: int, seed: int, module) -> None:
    start = time.perf_counter()
    loaded = load_model(ref, task, module=module)
    outputs = block_outputs(loaded.backbone, split.x_train)
    result.feature_seconds = time.perf_counter() - start
    head, why_not = source_head(loaded)
    if why_not:
        result.notes.append(f"{ref}: LEEP skipped — {why_not}")
    names = loaded.backbone.block_names
    result.model, result.model_sha256, result.layers = ref, loaded.config["weights"]["sha256"], []
    for i, name in enumerate(names):
        probs = source_probabilities(head, outputs[name]) if head is not None and i == len(names) - 1 else None
        s = score_representation(outputs[name], split.y_train, source_probs=probs, folds=folds, seed=seed)
        result.layers.append(LayerScore(block=name, freeze=i + 1, logme=s.logme, leep=s.leep, hscore=s.hscore,
                                        probe_accuracy=s.probe_accuracy, seconds=s.seconds, dim=s.dim))
    if head is not None:
        result.notes.append("LEEP reads the source head, which sits on the last block only")


def _validate(result: RankResult, folders: list[str], target: TargetSpec) -> Validation:
    ranked = {m.sha256: m.model for m in result.models} if result.layers is None else {result.model_sha256: result.model}
    records, notes = matching_comparisons(folders, target=target.identity(), shots=str(result.shots), ranked=ranked)
    if result.layers is not None:
        return validate_layers(result.layers, records, notes)
    return validate_models(result.models, records, notes)
