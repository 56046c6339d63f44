"""`transferlab advise`: recommend a strategy and a freeze depth before training anything.

Three measurements, none of which fine-tunes:
1. labels per class K (the target's training split, or `shots`);
2. LogME of every block's output on those labelled examples (where the representation suits the
   target best: block b*, the deepest block within 0.01 of the highest LogME — ties go to the block
   that freezes more);
3. the domain gap: the normalised Fréchet distance (domain_gap.py) between the last block's outputs
   on up to 1,000 source inputs and up to 1,000 unlabelled target inputs (train and validation rows,
   never the test split), read beside the same distance between two halves of the source sample.

The rule is the classic decision table for transfer (Yosinski et al. 2014, "How transferable are
features in deep neural networks?"; the CS231n transfer-learning notes: little data and a similar
domain → a linear classifier on the top features; little data and a different domain → a classifier
on earlier features; much data → fine-tune), with LP-FT (Kumar et al. 2022, "Fine-tuning can distort
pretrained features") as the way to fine-tune under a domain shift:

| labels per class | domain gap (last block) | advice |
|---|---|---|
| < 10 | < 0.4 (small or moderate) | cut at b*: `linear-probe` if b* is the last block, else `partial --freeze` (b*'s position) |
| < 10 | ≥ 0.4 (large) | `lp-ft`: probe first, then fine-tune everything |
| ≥ 10 | < 0.1 (small) | `full` fine-tuning |
| ≥ 10 | ≥ 0.1 | `lp-ft` |

An unknown gap (no source data) counts as small-or-moderate for few labels and as shifted for many.
The thresholds are round numbers on the gap's [0, 1] scale (0.1: a tenth of the way to unrelated;
0.4: close to half), not fitted; benchmarks/advise.py checks the advice against compare results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..data import check_input_fits
from ..errors import ConfigError, TransferlabError
from .domain_gap import normalized_frechet_distance
from .forgetting import source_spec
from .representations import block_outputs
from .ranking import CUT_TOLERANCE, cut_index
from .runtime import analysis_threads
from ..data.options import DataOptions
from .target import TargetSpec, load_model
from .transferability import logme

FEW_LABELS = 10
GAP_SMALL, GAP_LARGE = 0.1, 0.4
GAP_EXAMPLES = 1000


@dataclass
class Advice:
    """A recommended strategy and freeze depth, with the measurements and the reason. `to_json()`: --json."""

    pretrained: str
    data: str
    shots: int | str
    labels_per_class: float
    strategy: str
    options: dict[str, Any]
    freeze: int  # blocks frozen (input side first) while the recommended strategy trains (lp-ft: after its probe)
    blocks: list[str]
    layers: list[dict[str, Any]]
    best_block: str
    domain_gap: float | None
    gap_level: str
    gap_within_source: float | None
    reason: str
    command: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The strategy as a compare label would show it ('partial --freeze 2')."""
        opts = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.options.items())
        return f"{self.strategy} {opts}".strip()

    def to_json(self) -> dict[str, Any]:
        from ..jsonable import to_jsonable

        return to_jsonable({
            "pretrained": self.pretrained, "data": self.data, "shots": self.shots,
            "labels_per_class": self.labels_per_class, "strategy": self.strategy, "options": self.options,
            "freeze": self.freeze, "blocks": self.blocks, "layers": self.layers, "best_block": self.best_block,
            "domain_gap": self.domain_gap, "gap_level": self.gap_level, "gap_within_source": self.gap_within_source,
            "reason": self.reason, "command": self.command, "seconds": self.seconds, "notes": self.notes,
        })


def gap_level(gap: float | None) -> str:
    if gap is None:
        return "unknown"
    return "small" if gap < GAP_SMALL else "moderate" if gap < GAP_LARGE else "large"


def recommend(labels_per_class: float, level: str, best: int, blocks: int) -> tuple[str, dict[str, Any], int]:
    """(strategy, options, blocks frozen) by the module's decision table; `best` is b*'s 0-based index."""
    if labels_per_class < FEW_LABELS:
        if level == "large":
            return "lp-ft", {}, 0
        if best == blocks - 1:
            return "linear-probe", {}, blocks
        return "partial", {"freeze": best + 1}, best + 1
    if level == "small":
        return "full", {}, 0
    return "lp-ft", {}, 0


def _reason(k: float, level: str, gap: float | None, within: float | None, layers: list[dict[str, Any]],
            best: int, strategy: str, freeze: int) -> str:
    names = [l["block"] for l in layers]
    last, top = layers[-1], layers[best]
    few = k < FEW_LABELS
    labels = f"With {k:.0f} labelled examples per class ({'few' if few else 'enough to fine-tune'}, threshold {FEW_LABELS})"
    if gap is None:
        gap_txt = "the domain gap is unknown (no source data to compare with)"
    else:
        base = f"; two halves of the source sample differ by {within:.2f}" if within is not None else ""
        gap_txt = f"the domain gap at the last block is {gap:.2f} on a 0–1 scale ({level}{base})"
    if best == len(layers) - 1:
        layer_txt = (f"LogME is highest at the last block, {last['block']} ({last['logme']:.3f}), or within "
                     f"{CUT_TOLERANCE} of the highest")
    else:
        layer_txt = (f"LogME peaks at block {top['block']} ({top['logme']:.3f}) above the last block {last['block']} "
                     f"({last['logme']:.3f}), so the blocks after {top['block']} are more specific to the source")
    if strategy == "linear-probe":
        why = ("a linear classifier on the frozen features is the safe choice: the features already suit the target, "
               "and training more parameters on so few labels tends to overfit (Yosinski et al. 2014)")
    elif strategy == "partial":
        why = (f"freeze the first {freeze} block(s) ({', '.join(names[:freeze])}), whose features transfer, and "
               f"retrain the rest; few labels cannot support retraining the whole network")
    elif strategy == "full":
        why = "with little shift and enough labels, fine-tuning every block adapts the features at no risk of distortion"
    else:
        why = ("fine-tune everything, but train the new head on frozen features first (LP-FT): under a domain shift a "
               "random head distorts the pretrained features early in fine-tuning (Kumar et al. 2022)")
    return f"{labels}, {gap_txt}, and {layer_txt}. Recommendation: {strategy}{'' if freeze == 0 else f' (freeze {freeze})'} — {why}."


def _command(pretrained: str, target: TargetSpec, shots: int | None, strategy: str, options: dict[str, Any]) -> str:
    parts = ["transferlab finetune", pretrained, "--data", target.data, "--strategy", strategy]
    parts += [f"--{k.replace('_', '-')} {v}" for k, v in options.items()]
    if target.classes is not None:
        parts.append(f"--classes {target.classes if isinstance(target.classes, str) else ','.join(map(str, target.classes))}")
    if target.image_size is not None:
        parts.append(f"--image-size {target.image_size}" + (f" --image-margin {target.image_margin}" if target.image_margin else "")
                     + (f" --image-center {target.image_center}" if target.image_center != "box" else ""))
    if shots is not None:
        parts.append(f"--shots {shots}")
    return " ".join(parts) + " --out OUT"


def advise(
    pretrained: str | Path,
    data: str,
    *,
    shots: int | None = None,
    source_data: str | None = None,
    seed: int = 0,
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
    unlabeled_data: str | None = None,
) -> Advice:
    """Recommend a strategy and freeze depth from layer-wise LogME, the domain gap and the number of labels.

    The source inputs come from the source task the pretrained model records (or `source_data`).
    With `unlabeled_data` (a path, or "train": the target pool without labels) it knows an unlabeled
    pool is there: at `shots=0` it recommends a domain-adaptation strategy (LogME needs labels, so the
    choice rests on the domain gap and on what names the target classes); with K labels it says how a
    domain-adaptation strategy could use the pool. The target is read with `data_options` (a
    DataOptions) or its fields as keywords, as in `finetune`.

    Example:
        >>> a = advise("models/src", "digits", shots=5, image_size=28, image_margin=4)  # doctest: +SKIP
        >>> a.strategy, a.freeze, a.reason  # doctest: +SKIP
    """
    # long: the signature lists every data option of the public API (one keyword each, or `data_options`)
    start = time.perf_counter()
    target = TargetSpec.of(data, data_options, classes=classes, image_size=image_size, image_margin=image_margin,
                           image_center=image_center, label_column=label_column, text_column=text_column, test_data=test_data)
    if shots == 0:
        if unlabeled_data is None:
            raise ConfigError("--shots 0 asks how to adapt without target labels; pass --unlabeled-data PATH (or train)")
        return _advise_without_labels(pretrained, target, source_data, unlabeled_data, module, threads, start)
    task, split = target.labelled(shots, seed)
    loaded = load_model(pretrained, task, module=module)
    names = loaded.backbone.block_names
    notes: list[str] = []
    with analysis_threads(threads):
        outputs = block_outputs(loaded.backbone, split.x_train)
        layers = [{"block": n, "freeze": i + 1, "logme": logme(outputs[n], split.y_train), "dim": int(outputs[n].shape[1])}
                  for i, n in enumerate(names)]
        gap, within = _domain_gap(loaded, task, source_data, layers, notes)
    best = cut_index([l["logme"] for l in layers])
    k = len(split.y_train) / task.num_classes
    level = gap_level(gap)
    strategy, options, freeze = recommend(k, level, best, len(names))
    if unlabeled_data is not None:
        from ..data.unlabeled import load_unlabeled
        from .adaptation_advice import unlabeled_note

        notes.append(unlabeled_note(level, shots if shots is not None else "all", unlabeled_data,
                                    len(load_unlabeled(unlabeled_data, task))))
    return Advice(
        pretrained=str(pretrained), data=str(data), shots=shots if shots is not None else "all", labels_per_class=k,
        strategy=strategy, options=options, freeze=freeze, blocks=names, layers=layers, best_block=names[best],
        domain_gap=gap, gap_level=level, gap_within_source=within,
        reason=_reason(k, level, gap, within, layers, best, strategy, freeze),
        command=_command(str(pretrained), target, shots, strategy, options),
        seconds=time.perf_counter() - start, notes=notes,
    )


def _domain_gap(loaded, task, source_data: str | None, layers: list[dict[str, Any]],
                notes: list[str]) -> tuple[float | None, float | None]:
    """Gap per block (written into `layers`), and the last block's gap and within-source baseline."""
    try:
        spec = source_spec(loaded, source_data)
        source = spec.load()
        check_input_fits(source, loaded.input_spec, model_name=str(loaded.path), data_name=spec.data)
    except TransferlabError as err:
        notes.append(f"domain gap unknown: {err}")
        for layer in layers:
            layer["gap"] = None
        return None, None
    rng = np.random.default_rng(0)
    xs = source.x_pool[rng.permutation(len(source.x_pool))[:GAP_EXAMPLES]]
    xt = task.x_pool[rng.permutation(len(task.x_pool))[:GAP_EXAMPLES]]
    out_s, out_t = block_outputs(loaded.backbone, xs), block_outputs(loaded.backbone, xt)
    for layer in layers:
        layer["gap"] = normalized_frechet_distance(out_s[layer["block"]], out_t[layer["block"]])
    last = layers[-1]["block"]
    half = len(xs) // 2
    within = normalized_frechet_distance(out_s[last][:half], out_s[last][half:]) if half >= 2 else None
    return layers[-1]["gap"], within


def _advise_without_labels(pretrained, target: TargetSpec, source_data: str | None, unlabeled_data: str,
                           module: nn.Sequential | None, threads: int | None, start: float) -> Advice:
    """0 labels: the domain gap from unlabeled target inputs, then `adaptation_choice` (no LogME: it needs labels)."""
    from dataclasses import replace

    from ..data.unlabeled import load_unlabeled
    from ..engine.adaptation import matched_source_head
    from .adaptation_advice import adaptation_choice

    task = target.load()
    task = replace(task, x_pool=load_unlabeled(unlabeled_data, task))  # the gap is measured on the unlabeled rows
    loaded = load_model(pretrained, task, module=module)
    names, notes = loaded.backbone.block_names, []
    layers = [{"block": n, "freeze": i + 1, "logme": None, "dim": None} for i, n in enumerate(names)]
    with analysis_threads(threads):
        gap, within = _domain_gap(loaded, task, source_data, layers, notes)
    level = gap_level(gap)
    source_names = (loaded.config.get("source_task") or {}).get("label_names") or []
    head_matches = matched_source_head(loaded.source_head, source_names, task) is not None
    has_source = gap is not None and head_matches  # the source task loaded, and its classes are the target's
    strategy, why = adaptation_choice(has_source=has_source, head_matches=head_matches, level=level)
    gap_text = "unknown" if gap is None else f"{gap:.2f} ({level}; within the source: {within:.2f})" if within is not None \
        else f"{gap:.2f} ({level})"
    command = _command(str(pretrained), target, 0, strategy, {}).replace(" --out OUT", f" --unlabeled-data {unlabeled_data} --out OUT")
    return Advice(
        pretrained=str(pretrained), data=str(target.data), shots=0, labels_per_class=0.0, strategy=strategy, options={},
        freeze=0, blocks=names, layers=layers, best_block=names[-1], domain_gap=gap, gap_level=level,
        gap_within_source=within, reason=f"0 labels per class, an unlabeled pool; domain gap {gap_text}: {why}.",
        command=command, seconds=time.perf_counter() - start,
        notes=notes + ["LogME needs labels: at 0 labels the layer scores are not computed"],
    )
