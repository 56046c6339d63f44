"""Check transferability scores against what fine-tuning reached: Kendall's τ with compare results.

A comparison folder (`transferlab compare ... --out DIR`) holds, in DIR/runs.sqlite, the fine-tuned
test accuracy of every (strategy, shots, seed) cell for one pretrained model on one target task. A
ranking of several models is checked against the folders whose pretrained weights (sha256) are among
the ranked models and whose target task is the ranked one: τ between each score and each model's
fine-tuned accuracy — the best mean over seeds of any transfer strategy at the ranked label budget
(scratch and reference lines excluded). A layer-wise ranking of one model is checked against the
frozen-prefix cells of its comparisons: `partial --freeze k` is the cut after block k and
`linear-probe` the cut after the last block.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

SCORES = ("logme", "leep", "hscore", "probe_accuracy")
TARGET_KEYS = ("data", "classes", "image_size", "image_margin", "test_data", "label_column", "text_column")
NOT_TRANSFER = ("scratch", "tfidf-logreg")  # the baseline and reference lines: no pretrained model in them


@dataclass
class CompareRecord:
    """One comparison folder's runs for one pretrained model at one label budget."""

    folder: str
    pretrained_sha256: str
    runs: list[dict[str, Any]]

    def best_transfer(self) -> tuple[str, float] | None:
        """(strategy label, mean test accuracy) of the best transfer strategy; None if there is none."""
        means = _means(r for r in self.runs if r.get("strategy_name") not in NOT_TRANSFER)
        return max(means.items(), key=lambda kv: kv[1]) if means else None

    def train_seconds(self) -> float:
        """Training time of every run at this budget: the cost of finding the answer by brute force."""
        return float(sum(r.get("train_seconds") or 0.0 for r in self.runs))

    def freeze_accuracies(self, blocks: int) -> dict[int, float]:
        """{blocks frozen: mean test accuracy} from partial --freeze k and linear-probe (k = all blocks)."""
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for run in self.runs:
            name = run.get("strategy_name")
            if name == "partial" and isinstance((run.get("options") or {}).get("freeze"), int):
                grouped[int(run["options"]["freeze"])].append(run)
            elif name == "linear-probe":
                grouped[blocks].append(run)
        return {k: float(np.mean([r["test_accuracy"] for r in rs])) for k, rs in grouped.items() if 0 < k <= blocks}


def _means(runs) -> dict[str, float]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        grouped[run["strategy"]].append(float(run["test_accuracy"]))
    return {label: float(np.mean(v)) for label, v in grouped.items()}


def _same_path_or_name(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    pa, pb = Path(str(a)).expanduser(), Path(str(b)).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return str(a) == str(b)


def _normal_classes(value: Any) -> list[str] | None:
    from ..data import parse_classes

    return None if value is None else parse_classes(value)


def target_differences(stored: dict[str, Any], target: dict[str, Any]) -> list[str]:
    """How a comparison's target task differs from the ranked one ([] when it is the same task)."""
    diffs = []
    for key in TARGET_KEYS:
        a, b = stored.get(key), target.get(key)
        if key in ("data", "test_data"):
            same = _same_path_or_name(a, b)
        elif key == "classes":
            same = _normal_classes(a) == _normal_classes(b)
        elif key == "image_margin":
            same = int(a or 0) == int(b or 0)
        elif key in ("label_column", "text_column"):
            same = (a or ("label" if key == "label_column" else "text")) == (b or ("label" if key == "label_column" else "text"))
        else:
            same = a == b
        if not same:
            diffs.append(f"{key} {a!r} ≠ {b!r}")
    return diffs


def read_comparisons(folders: Sequence[str | Path], *, target: dict[str, Any], shots: str,
                     notes: list[str]) -> list[CompareRecord]:
    """Comparison folders for the ranked target and label budget; others are skipped with a note in `notes`."""
    from ..compare.grid import STORE
    from ..compare.run_store import RunStore

    records = []
    for folder in folders:
        path = Path(folder)
        if not (path / STORE).is_file():
            raise ConfigError(f"--compare {folder}: no {STORE} there; pass a folder written by `transferlab compare --out`")
        with RunStore(path / STORE) as store:
            config, runs = store.get_meta("config") or {}, store.runs()
        diffs = target_differences(config, target)
        if diffs:
            notes.append(f"{folder}: skipped, another target task ({'; '.join(diffs)})")
            continue
        at_shots = [r for r in runs if str(r.get("shots")) == shots]
        if not at_shots:
            have = sorted({str(r.get("shots")) for r in runs})
            notes.append(f"{folder}: skipped, no runs at {shots} labels per class (it has {', '.join(have) or 'none'})")
            continue
        records.append(CompareRecord(str(folder), str(config.get("pretrained_sha256")), at_shots))
    return records


@dataclass
class Correlation:
    """Kendall's τ (tau-b) of one score against fine-tuned accuracy over n points, with its p-value."""

    tau: float | None
    p_value: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"tau": self.tau, "p_value": self.p_value, "n": self.n}


def kendall(scores: Sequence[float | None], accuracies: Sequence[float]) -> Correlation:
    """τ over the points where the score is defined; None with fewer than 2 points or no variation."""
    from scipy.stats import kendalltau

    pairs = [(s, a) for s, a in zip(scores, accuracies) if s is not None and math.isfinite(s)]
    if len(pairs) < 2:
        return Correlation(None, None, len(pairs))
    result = kendalltau([p[0] for p in pairs], [p[1] for p in pairs])
    tau, p = float(result.statistic), float(result.pvalue)
    return Correlation(tau if math.isfinite(tau) else None, p if math.isfinite(p) else None, len(pairs))


@dataclass
class Validation:
    """τ of each score against fine-tuned accuracy, and the accuracies it used."""

    correlations: dict[str, Correlation]
    accuracies: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kendall_tau": {k: c.to_json() for k, c in self.correlations.items()},
                "accuracies": self.accuracies, "notes": self.notes}


def matching_comparisons(folders: Sequence[str | Path], *, target: dict[str, Any], shots: str,
                         ranked: dict[str, str]) -> tuple[list[CompareRecord], list[str]]:
    """The comparisons of the ranked target, budget and models (`ranked`: weights sha256 → model), and notes
    on every folder skipped."""
    notes: list[str] = []
    records = read_comparisons(folders, target=target, shots=shots, notes=notes)
    for record in records:
        if record.pretrained_sha256 not in ranked:
            notes.append(f"{record.folder}: skipped, its pretrained model (sha256 {record.pretrained_sha256[:12]}…) "
                         "is not among the ranked models")
    return [r for r in records if r.pretrained_sha256 in ranked], notes


def validate_models(models: Sequence[Any], records: list[CompareRecord], notes: list[str]) -> Validation:
    """τ over ranked models (each with .model, .sha256, .seconds and the SCORES) of score vs best fine-tuned accuracy."""
    accuracies = []
    for model in models:
        mine = [r for r in records if r.pretrained_sha256 == model.sha256]
        best = max(((r, r.best_transfer()) for r in mine if r.best_transfer()), key=lambda t: t[1][1], default=None)
        if best is None:
            continue
        record, (strategy, accuracy) = best
        seconds = sum(r.train_seconds() for r in mine)
        accuracies.append({"model": model.model, "accuracy": accuracy, "strategy": strategy, "compare": record.folder,
                           "finetune_seconds": seconds,
                           "speedup": seconds / model.seconds if model.seconds > 0 else None})
    by_model = {a["model"]: a["accuracy"] for a in accuracies}
    scored = [m for m in models if m.model in by_model]
    if len(scored) < 3:
        notes.append(f"τ over {len(scored)} model(s) with comparison results says little; rank and compare ≥ 3 models")
    correlations = {score: kendall([getattr(m, score) for m in scored], [by_model[m.model] for m in scored])
                    for score in SCORES}
    return Validation(correlations, accuracies, notes)


def validate_layers(layers: Sequence[Any], records: list[CompareRecord], notes: list[str]) -> Validation:
    """τ over cuts (layers with .block, .freeze and the SCORES) of score vs the accuracy of freezing there."""
    per_freeze: dict[int, list[float]] = {}
    for record in records:
        for k, acc in record.freeze_accuracies(len(layers)).items():
            per_freeze.setdefault(k, []).append(acc)
    accuracies = [{"block": layers[k - 1].block, "freeze": k, "accuracy": float(np.mean(v))}
                  for k, v in sorted(per_freeze.items())]
    if len(accuracies) < 3:
        notes.append(f"τ over {len(accuracies)} cut(s) with comparison results says little; compare partial "
                     "--freeze k for several k (and linear-probe)")
    correlations = {
        score: kendall([getattr(layers[a["freeze"] - 1], score) for a in accuracies], [a["accuracy"] for a in accuracies])
        for score in SCORES
    }
    return Validation(correlations, accuracies, notes)
