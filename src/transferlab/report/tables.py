"""The report's HTML tables: every cell, the recommendation per label budget, every run, versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from . import numbers as fmt
from .cells import Cell, is_baseline, number, shots_int, shots_key, shots_label, verdict_label
from .verdict import shots_heading

_CELL_COLUMNS = (
    "strategy", "shots", "seeds", "{metric} mean [95% CI]", "Δ vs scratch [interval]", "verdict", "accuracy",
    "balanced accuracy", "macro-F1 [95% CI]", "majority class", "train s", "trainable / total params", "train FLOPs",
    "speed-up", "labels saved / class",
)


def _row(cells: Sequence[str], *, tag: str = "td") -> str:
    """One table row; the cells are already escaped HTML."""
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _table(header: Sequence[str], rows: Sequence[str], cls: str) -> str:
    head = _row([escape(h) for h in header], tag="th")
    return f'<table class="{cls}"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _verdict_text(c: Cell) -> str:
    verdict = str(c.get("verdict") or fmt.MISSING)
    needed = number(c.get("seeds_needed"))
    if verdict == "inconclusive":
        if c.get("excludes_zero_uncorrected"):
            verdict += (f" (the interval excludes 0 on its own, not after the correction for "
                        f"{c.get('comparisons_corrected_for')} comparisons)")
        verdict += f" (about {needed:.0f} seeds would decide)" if needed is not None else " (more seeds alone may not decide: the test split's own noise is too large)"
    return verdict


def cell_table(cells: Sequence[Cell]) -> str:
    """Every (strategy, shots) cell with its numbers; verdict cells coloured by class."""
    metrics = {str(c.get("metric")) for c in cells if c.get("metric")}
    metric = metrics.pop() if len(metrics) == 1 else "accuracy"
    rows = []
    for c in sorted(cells, key=lambda c: (shots_key(c["shots"]), not is_baseline(c), str(c["strategy"]))):
        verdict = str(c.get("verdict") or fmt.MISSING)
        css = {"helps": "helps", "hurts": "hurts", "baseline": "baseline"}.get(verdict, "neutral")
        speed = fmt.MISSING if is_baseline(c) else _speedup(c)
        saved = fmt.MISSING if is_baseline(c) else _labels_saved(c)
        params = f"{fmt.si(c.get('trainable_params'))} / {fmt.si(c.get('total_params'))}"
        values = [
            escape(str(c["strategy"])),
            escape(shots_label(c["shots"])),
            escape(str(c.get("n_seeds", fmt.MISSING))),
            escape(fmt.with_ci(c.get("mean"), c.get("ci_low"), c.get("ci_high"))),
            escape(fmt.MISSING if is_baseline(c) else fmt.with_ci(
                c.get("delta_vs_scratch"), c.get("delta_ci_low"), c.get("delta_ci_high"), sign=True)),
            f'<span class="verdict {css}">{escape(_verdict_text(c))}</span>' + escape(verdict_label(c)[len(verdict):]),
            escape(fmt.plain(c.get("accuracy_mean", c.get("mean") if metric == "accuracy" else None))),
            escape(fmt.plain(c.get("balanced_accuracy"))),
            escape(fmt.with_ci(c.get("macro_f1_mean"), c.get("macro_f1_ci_low"), c.get("macro_f1_ci_high"))),
            escape(fmt.plain(c.get("majority_rate"))) + (" ⚠ below" if c.get("below_majority") else ""),
            escape(fmt.seconds(c.get("train_seconds_mean"))),
            escape(params),
            escape(fmt.si(c.get("train_flops_mean"), "FLOP")),
            escape(speed),
            saved,
        ]
        rows.append(f'<tr class="row-{css}">' + "".join(f"<td>{v}</td>" for v in values) + "</tr>")
    return _table([h.format(metric=metric) for h in _CELL_COLUMNS], rows, "cells")


def _labels_saved(c: Cell) -> str:
    saved, needed = number(c.get("labels_saved_per_class")), number(c.get("scratch_labels_needed"))
    if saved is None:
        # an int budget with no estimate means scratch never reached this accuracy at any budget run
        never = shots_int(c["shots"]) is not None and c.get("mean") is not None
        return escape("scratch never matched" if never else fmt.MISSING)
    hint = f"scratch needs about {needed:.3g} labels per class for this accuracy" if needed is not None else ""
    title = f' title="{escape(hint)}"' if hint else ""
    return f"<span{title}>{escape(fmt.signed(saved, 1))}</span>"


def _speedup(c: Cell) -> str:
    text = fmt.speedup(c.get("time_to_scratch_accuracy_speedup"))
    reach = number(c.get("reach_fraction"))
    if reach is not None and 0 < reach < 1:  # a speed-up over some seeds only: say how many got there
        text += f" ({reach:.0%} of seeds)"
    return text


def recommendation_table(recommendation: Mapping[str, Any]) -> str:
    """Best strategy and cheapest strategy within its CI, per label budget, with the reason."""
    if not recommendation:
        return "<p>No recommendation was made.</p>"
    rows = []
    for key in sorted(recommendation, key=shots_key):
        rec = recommendation[key] if isinstance(recommendation[key], Mapping) else {}
        rows.append(_row([
            escape(shots_heading(key)),
            escape(str(rec.get("best", fmt.MISSING))),
            escape(fmt.plain(rec.get("best_mean"))),
            # nothing is recommended in bold from an inconclusive comparison
            f"<strong>{escape(str(rec.get('cheapest_within_ci', fmt.MISSING)))}</strong>" if rec.get("decided", True)
            else f"none yet (inconclusive; {escape(str(rec.get('best', fmt.MISSING)))} leads)",
            escape(str(rec.get("reason", ""))),
        ]))
    header = ("label budget", "best", "best mean", "cheapest within its CI (use this)", "why")
    return _table(header, rows, "recommendation")


def run_table(runs: Sequence[Mapping[str, Any]], strategy_order: Sequence[str] = ()) -> str:
    """One row per (strategy, shots, seed) run, strategies in `strategy_order` (others after, by name)."""
    rank = {name: i for i, name in enumerate(strategy_order)}

    def order(r: Mapping[str, Any]) -> tuple:
        name = str(r.get("strategy"))
        seed = r.get("seed")
        return (shots_key(r.get("shots")), rank.get(name, len(rank)), name, (0, seed) if isinstance(seed, int) else (1, str(seed)))

    rows = []
    for r in sorted(runs, key=order):
        history = r.get("history") or []
        rows.append(_row([
            escape(str(r.get("strategy", fmt.MISSING))),
            escape(shots_label(r.get("shots"))),
            escape(str(r.get("seed", fmt.MISSING))),
            escape(fmt.plain(r.get("test_accuracy"))),
            escape(fmt.plain(r.get("macro_f1"))),
            escape(fmt.plain(r.get("val_accuracy"))),
            escape(fmt.seconds(r.get("train_seconds"))),
            escape(_epochs(history)),
            escape(fmt.si(r.get("train_flops"), "FLOP")),
        ]))
    header = ("strategy", "shots", "seed", "test acc", "macro-F1", "val acc", "train s", "epochs", "train FLOPs")
    return _table(header, rows, "runs")


def _epochs(history: Any) -> str:
    # history holds validation points, not one entry per epoch: report the last epoch seen
    epochs = [number(h.get("epoch")) for h in history if isinstance(h, Mapping)] if isinstance(history, list) else []
    epochs = [e for e in epochs if e is not None]
    return f"{max(epochs):g}" if epochs else fmt.MISSING


def versions_table(versions: Mapping[str, Any]) -> str:
    """Package and interpreter versions as a two-column table."""
    rows = [_row([escape(str(k)), escape(str(v))]) for k, v in versions.items()]
    return _table(("component", "version"), rows, "versions")
