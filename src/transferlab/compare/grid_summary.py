"""Cells, recommendation and the analysis record of a comparison's summary (summary.json)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import metrics
from .intervals import CORRECTION_NAMES
from .reference import SOURCE_ONLY
from .speedups import _mean_of, _num, labels_saved, scratch_accuracy_speedup
from .verdicts import Analysis, Comparison, _arm, decide, decision_confidence, interval_method, mean_estimate, prepare


def _side_means(arm_runs: Sequence[Mapping[str, Any]], split: Any) -> dict[str, float | None]:
    """Mean accuracy, balanced accuracy, macro-F1 and the majority-class rate over a cell's runs."""
    if split.labels is not None:
        per = [metrics.run_metrics(r["test_predictions"], split.labels, split.num_classes) for r in arm_runs]
        return {k: float(np.mean([m[k] for m in per])) for k in ("accuracy", "balanced_accuracy", "macro_f1")} | {
            "majority_rate": per[0]["majority_rate"]}
    return {"accuracy": _mean_of(arm_runs, "test_accuracy"), "balanced_accuracy": _mean_of(arm_runs, "balanced_accuracy"),
            "macro_f1": _mean_of(arm_runs, "macro_f1"), "majority_rate": _mean_of(arm_runs, "majority_rate")}


def summarize_grid(runs: Sequence[Mapping[str, Any]], groups: dict, strategies: list[str], shots_order: list,
                   baseline: str, analysis: Analysis) -> dict[str, Any]:
    """Cells, recommendations and the analysis record.

    Each cell is compared with scratch at its label budget; at 0 labels (no scratch can train) with
    the source-only baseline (the pretrained model's own head) instead, and wherever source-only ran,
    also with it (`verdict_vs_source_only`). `verdict_baseline` names what `verdict` is against.
    """
    metric, metric_reason, split = prepare(runs, analysis)
    arms = {key: _arm(list(group), metric, split) for key, group in groups.items()}

    def compare(arm: Any, base: Any) -> Comparison:
        paired = sorted({r["seed"] for r in arm.runs} & {r["seed"] for r in base.runs})
        return Comparison(arm, base, paired, metric, split)

    primary: dict[Any, str | None] = {}
    comparisons: dict[tuple[str, Any], Comparison] = {}
    vs_source: dict[tuple[str, Any], Comparison] = {}
    for (strategy, shots), arm in arms.items():
        against = baseline if (baseline, shots) in arms else SOURCE_ONLY if (SOURCE_ONLY, shots) in arms else None
        primary[shots] = against
        if against is not None and strategy != against:
            comparisons[(strategy, shots)] = compare(arm, arms[(against, shots)])
        if against != SOURCE_ONLY and strategy != SOURCE_ONLY and (SOURCE_ONLY, shots) in arms:
            vs_source[(strategy, shots)] = compare(arm, arms[(SOURCE_ONLY, shots)])
    decide(list(comparisons.values()), analysis)
    if vs_source:  # a second family of tests, corrected on its own
        decide(list(vs_source.values()), analysis)

    scratch_curve = {s: float(arms[(baseline, s)].values.mean()) for s in shots_order
                     if isinstance(s, int) and (baseline, s) in arms}
    cells: list[dict[str, Any]] = []
    recommendation: dict[str, Any] = {}
    for shots in shots_order:
        row = [_cell(s, shots, arms[(s, shots)], comparisons.get((s, shots)), groups.get((baseline, shots), []),
                     scratch_curve, s == primary.get(shots), metric, split, analysis)
               | _source_only_fields(s, shots, primary.get(shots), comparisons, vs_source, analysis)
               for s in strategies if (s, shots) in arms]
        cells.extend(row)
        recommendation[str(shots)] = _recommend(row, analysis)
    warnings = [f"{c['strategy']} at {c['shots']} shots: accuracy {c['accuracy_mean']:.3f} is below the majority-class "
                f"rate {c['majority_rate']:.3f} (always answering the most common class scores higher)"
                for c in cells if c.get("below_majority")]
    record = {"metric": metric, "metric_reason": metric_reason, "confidence": analysis.confidence,
              "look_confidence": analysis.look_confidence, "correction": analysis.correction,
              "correction_name": CORRECTION_NAMES[analysis.correction], "margin": analysis.margin,
              "seeds": "auto" if analysis.looks else "fixed", "max_seeds": analysis.max_seeds, "looks": analysis.looks,
              "interval_method": interval_method(split, analysis), "notes": split.notes}
    return {"cells": cells, "recommendation": recommendation, "analysis": record, "warnings": warnings}


def _cell(strategy: str, shots: int | str, arm: Any, comp: Comparison | None, scratch: list, scratch_curve: dict,
          is_baseline: bool, metric: str, split: Any, analysis: Analysis) -> dict[str, Any]:
    mean_est = mean_estimate(arm, metric, split)
    lo, hi = mean_est.interval(analysis.confidence, 0.0, 1.0)
    side = _side_means(arm.runs, split)
    f1 = [r.get("macro_f1") for r in arm.runs]
    f1_est = None
    if split.labels is not None:
        f1_est = mean_estimate(_arm(arm.runs, "macro-f1", split), "macro-f1", split)
    elif all(v is not None for v in f1):
        from .intervals import estimate

        f1_est = estimate(f1, None)
    f1_lo, f1_hi = f1_est.interval(analysis.confidence, 0.0, 1.0) if f1_est else (None, None)
    if is_baseline:
        vs = {"delta_vs_scratch": 0.0, "delta_ci_low": None, "delta_ci_high": None, "verdict": "baseline",
              "decided": True, "seeds_needed": None, "p_value": None, "p_adjusted": None, "stopped": True,
              "excludes_zero_uncorrected": False, "comparisons_corrected_for": None,
              "speedup": 1.0, "reach_fraction": 1.0, "n_paired_seeds": len(arm.runs)}
        needed = float(shots) if isinstance(shots, int) else None
    else:
        assert comp is not None
        vs = _vs_baseline(comp, arm.runs, scratch, analysis)
        needed = labels_saved(scratch_curve, mean_est.value) if isinstance(shots, int) else None
    below = side["majority_rate"] is not None and side["accuracy"] is not None and side["accuracy"] < side["majority_rate"]
    cell = {
        "strategy": strategy, "shots": shots, "n_seeds": len(arm.runs), "metric": metric,
        "mean": mean_est.value, "ci_low": lo, "ci_high": hi,
        "delta_vs_scratch": vs["delta_vs_scratch"], "delta_ci_low": vs["delta_ci_low"],
        "delta_ci_high": vs["delta_ci_high"], "verdict": vs["verdict"], "decided": vs["decided"],
        "seeds_needed": vs["seeds_needed"], "p_value": vs["p_value"], "p_adjusted": vs["p_adjusted"],
        "excludes_zero_uncorrected": vs["excludes_zero_uncorrected"],
        "comparisons_corrected_for": vs["comparisons_corrected_for"], "stopped": vs["stopped"],
        "train_seconds_mean": _mean_of(arm.runs, "train_seconds"), "time_to_scratch_accuracy_speedup": vs["speedup"],
        "accuracy_mean": side["accuracy"], "balanced_accuracy": side["balanced_accuracy"],
        "majority_rate": side["majority_rate"], "below_majority": bool(below),
        "macro_f1_mean": f1_est.value if f1_est else None, "macro_f1_ci_low": f1_lo, "macro_f1_ci_high": f1_hi,
        "trainable_params": arm.runs[0].get("trainable_params"), "total_params": arm.runs[0].get("total_params"),
        "train_flops_mean": _mean_of(arm.runs, "train_flops"), "reach_fraction": vs["reach_fraction"],
        "n_paired_seeds": vs["n_paired_seeds"], "scratch_labels_needed": needed,
        "labels_saved_per_class": None if needed is None or not isinstance(shots, int) else needed - shots,
    }
    return {k: _num(v) if isinstance(v, float) else v for k, v in cell.items()}


def _source_only_fields(strategy: str, shots: Any, against: str | None, comparisons: dict, vs_source: dict,
                        analysis: Analysis) -> dict[str, Any]:
    """What a cell's verdict is against, and its delta and verdict against the source-only baseline."""
    comp = comparisons.get((strategy, shots)) if against == SOURCE_ONLY else vs_source.get((strategy, shots))
    fields: dict[str, Any] = {"verdict_baseline": against or "scratch", "delta_vs_source_only": None,
                              "verdict_vs_source_only": None}
    if comp is not None and comp.estimate is not None:
        fields |= {"delta_vs_source_only": _num(comp.estimate.value), "verdict_vs_source_only": comp.verdict}
    if against == SOURCE_ONLY and strategy != SOURCE_ONLY:
        fields["delta_vs_scratch"] = None  # no scratch without labels: the delta columns are against source-only
        fields["time_to_scratch_accuracy_speedup"] = None
        fields["reach_fraction"] = None
    return fields


def _vs_baseline(comp: Comparison, runs: list, scratch: list, analysis: Analysis) -> dict[str, Any]:
    conf = analysis.look_confidence
    est = comp.estimate
    d = d_lo = d_hi = None
    needed = None
    if est is not None and comp.n >= 1:
        d = est.value
        d_lo, d_hi = est.interval(conf, -1.0, 1.0)
    decided = comp.verdict != "inconclusive"
    # An interval that excludes 0 beside `inconclusive`: significant alone, not after the correction for the
    # grid's many comparisons; the seeds estimate counts the correction, so its seeds would decide the verdict.
    uncorrected = not decided and d_lo is not None and d_hi is not None and (d_lo > 0 or d_hi < 0)
    if not decided and est is not None:
        needed = est.seeds_needed(decision_confidence(comp, analysis.confidence), analysis.margin)
    cap = analysis.max_seeds
    stopped = decided or (cap is not None and len(comp.seeds) >= cap)
    speed = scratch_accuracy_speedup(runs, scratch)
    return {"delta_vs_scratch": d, "delta_ci_low": d_lo, "delta_ci_high": d_hi, "verdict": comp.verdict,
            "decided": decided, "seeds_needed": needed, "p_value": comp.p, "p_adjusted": comp.p_adjusted,
            "excludes_zero_uncorrected": uncorrected, "comparisons_corrected_for": comp.family, "stopped": stopped, "speedup": speed.speedup, "reach_fraction": speed.reach_fraction, "n_paired_seeds": comp.n}


def _cost(c: dict[str, Any]) -> tuple[float, float]:
    flops, secs = c["train_flops_mean"], c["train_seconds_mean"]
    return (math.inf if flops is None else flops, math.inf if secs is None else secs)


def _recommend(cells: list[dict[str, Any]], analysis: Analysis) -> dict[str, Any]:
    """The strategy to use at one label budget — only from decided verdicts; `decided` False otherwise."""
    metric = cells[0]["metric"]
    best = max(cells, key=lambda c: c["mean"])  # ties: the first in cell order (baseline first)
    head = f"'{best['strategy']}' has the highest mean test {metric} ({best['mean']:.3f})"
    helps = [c for c in cells if c["verdict"] == "helps"]
    undecided = [c for c in cells if c["verdict"] == "inconclusive"]
    if helps:
        top = max(helps, key=lambda c: c["mean"])
        lo, hi = top["ci_low"], top["ci_high"]
        pool = [c for c in helps if lo is not None and hi is not None and lo <= c["mean"] <= hi] or [top]
        cheap = min(pool, key=_cost)
        reason = (f"{head}; '{top['strategy']}' is the best strategy that helps (decided), and '{cheap['strategy']}' is "
                  f"the cheapest strategy that helps with a mean within its {analysis.confidence:.0%} CI.")
        decided = True
    elif not undecided:
        pool = [c for c in cells if c["verdict"] in ("baseline", "no-difference")]
        cheap = min(pool, key=_cost)
        reason = (f"{head}; no strategy helps and every verdict is decided, so the cheapest of scratch and the "
                  f"strategies with no difference (within ±{analysis.margin:g}) is '{cheap['strategy']}'.")
        decided = True
    else:
        cheap = best
        names = ", ".join(f"'{c['strategy']}'" for c in undecided)
        needs = [c["seeds_needed"] for c in undecided if c["seeds_needed"] is not None]
        more = f"about {max(needs)} seeds would decide them" if needs else "more seeds alone may not decide them"
        reason = (f"{head}; no recommendation: {names} {'is' if len(undecided) == 1 else 'are'} inconclusive "
                  f"against scratch ({more}; try --seeds auto).")
        decided = False
    return {"best": best["strategy"], "best_mean": best["mean"], "cheapest_within_ci": cheap["strategy"],
            "decided": decided, "reason": reason}
