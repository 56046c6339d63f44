"""The report's figures, drawn with matplotlib's Agg renderer and returned as base64 PNG text.

matplotlib is imported inside each function so importing transferlab stays cheap. Figures are
built as `matplotlib.figure.Figure` objects, never through pyplot: no global figure registry and
no backend switch, so rendering a report inside a notebook leaves the user's plots alone.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .cells import Cell, is_baseline, number, ordered_shots, ordered_strategies, shots_int, shots_key, shots_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
_BASELINE_COLOR = "#333333"


def strategy_colors(strategies: Sequence[str], baseline: str = "scratch") -> dict[str, str]:
    """One colour per strategy, the same in every figure; scratch is dark grey."""
    colors, i = {}, 0
    for name in strategies:
        if name == baseline:
            colors[name] = _BASELINE_COLOR
        else:
            colors[name] = _PALETTE[i % len(_PALETTE)]
            i += 1
    return colors


def shots_positions(shots_values: Sequence[Any]) -> tuple[dict[tuple, float], bool]:
    """x position per shots key and whether a log axis fits; 'all' sits at 2x the largest int budget."""
    ints = [n for n in (shots_int(s) for s in shots_values) if n is not None]
    log = bool(ints) and min(ints) > 0
    if not log:  # no positive counts to put on a log axis: evenly spaced categories
        return {shots_key(s): float(i + 1) for i, s in enumerate(shots_values)}, False
    positions = {shots_key(s): float(shots_int(s)) for s in shots_values if shots_int(s) is not None}
    right = 2.0 * max(ints)
    for s in shots_values:
        if shots_int(s) is None:
            positions[shots_key(s)] = right
            right *= 2.0
    return positions, True


def to_base64_png(fig: Figure) -> str:
    """Encode a figure as base64 PNG text (no 'Software' tag, so no URL hides in the metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _text(label: str) -> str:
    # '$' would switch matplotlib to math mode and can fail on a user's strategy name
    return label.replace("$", r"\$")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


_RUN_KEYS = {"accuracy": "test_accuracy", "balanced-accuracy": "balanced_accuracy", "macro-f1": "macro_f1"}
_PAD = 0.01  # a point at exactly 0 or 1 stays visible


def _metric(cells: Sequence[Cell]) -> str:
    """The verdict metric the cells were summarised in (accuracy for summaries that predate the choice)."""
    names = {str(c.get("metric")) for c in cells if c.get("metric")}
    return names.pop() if len(names) == 1 else "accuracy"


def _clip_to_range(ax: Any) -> None:
    """A metric lives in [0, 1]: the axis never runs beyond it, whatever an interval or a margin asks."""
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -_PAD), min(high, 1 + _PAD))


def learning_curve(cells: Sequence[Cell], runs: Sequence[Mapping[str, Any]], colors: Mapping[str, str]) -> str:
    """The verdict metric vs labels per class: a line and 95% CI band per strategy, faint dots per seed."""
    from matplotlib.ticker import NullLocator

    metric = _metric(cells)
    run_key = _RUN_KEYS.get(metric, "test_accuracy")

    shots_values = ordered_shots(cells)
    pos, log = shots_positions(shots_values)
    fig = _new_figure(8, 4.5)
    ax = fig.add_subplot()
    for name in ordered_strategies(cells):
        mine = sorted((c for c in cells if str(c["strategy"]) == name), key=lambda c: shots_key(c["shots"]))
        pts = [(pos[shots_key(c["shots"])], number(c.get("mean")), c) for c in mine if number(c.get("mean")) is not None]
        if not pts:
            continue
        color = colors[name]
        style = "--" if is_baseline(mine[0]) else "-"
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, style, marker="o", color=color, label=_text(name), linewidth=2, zorder=3)
        band = [(x, number(c.get("ci_low")), number(c.get("ci_high"))) for x, _, c in pts]
        band = [(x, max(lo, 0.0), min(hi, 1.0)) for x, lo, hi in band if lo is not None and hi is not None]
        if len(band) >= 2:
            xs_band, lows, highs = zip(*band)
            ax.fill_between(xs_band, lows, highs, color=color, alpha=0.15, linewidth=0)
        elif len(band) == 1:  # a band needs two points; show a lone CI as an error bar
            x, lo, hi = band[0]
            ax.vlines(x, lo, hi, color=color, alpha=0.5, linewidth=6)
        mine_runs = [r for r in runs if str(r.get("strategy")) == name]
        seeds = [(pos.get(shots_key(r.get("shots"))), number(r.get(run_key))) for r in mine_runs]
        seeds = [(x, y) for x, y in seeds if x is not None and y is not None]
        if seeds:
            ax.scatter(*zip(*seeds), color=color, alpha=0.35, s=12, zorder=2, linewidths=0)
    if log:
        ax.set_xscale("log")
        ints = [n for n in (shots_int(s) for s in shots_values) if n is not None]
        extra = [pos[shots_key(s)] for s in shots_values if shots_int(s) is None]
        if extra:  # a dotted line says 'all' is not on the same scale as the counts
            ax.axvline((max(ints) * min(extra)) ** 0.5, color="#bbbbbb", linestyle=":", linewidth=1)
    ticks = [pos[shots_key(s)] for s in shots_values]
    ax.set_xticks(ticks, [_text(shots_label(s)) for s in shots_values])
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2) if log else ax.set_xlim(0, 2)
    ax.set_xlabel("labels per class")
    ax.set_ylabel(f"test {metric}")
    ax.set_title("Learning curve (mean over seeds, shaded: 95% CI)")
    ax.grid(True, alpha=0.3)
    _clip_to_range(ax)
    ax.legend(loc="best", fontsize="small")
    return to_base64_png(fig)


def accuracy_vs_time(cells: Sequence[Cell], colors: Mapping[str, str]) -> str | None:
    """Mean test accuracy vs mean training seconds, one labelled point per cell; None if no timings."""
    pts = [(number(c.get("train_seconds_mean")), number(c.get("mean")), c) for c in cells]
    pts = [(x, y, c) for x, y, c in pts if x is not None and x > 0 and y is not None]
    if not pts:
        return None
    fig = _new_figure(8, 4.5)
    ax = fig.add_subplot()
    labelled = set()
    for x, y, c in pts:
        name = str(c["strategy"])
        ax.scatter([x], [y], color=colors[name], s=40, zorder=3, label=None if name in labelled else _text(name))
        labelled.add(name)
        ax.annotate(_text(f"{name} @ {shots_label(c['shots'])}"), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # '10', not '10^1'
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mean training time per run (s, log scale)")
    ax.set_ylabel(f"mean test {_metric(cells)}")
    _clip_to_range(ax)
    ax.set_title("Accuracy vs training time (one point per strategy and label budget)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    return to_base64_png(fig)


def speedups(cells: Sequence[Cell], colors: Mapping[str, str]) -> str | None:
    """Horizontal bars: how much sooner each strategy reached scratch's accuracy; None with no strategies."""
    rows = sorted((c for c in cells if not is_baseline(c)), key=lambda c: (shots_key(c["shots"]), str(c["strategy"])))
    if not rows:
        return None
    values = [number(c.get("time_to_scratch_accuracy_speedup")) for c in rows]
    reached = [v for v in values if v is not None]
    fig = _new_figure(8, 0.9 + 0.38 * len(rows))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]  # first row on top
    for y, c, v in zip(ys, rows, values):
        if v is None:
            ax.text(0.02, y, "never reached", transform=ax.get_yaxis_transform(),  # x in axes units
                    va="center", fontsize=8, color="#a00000", style="italic")
        else:
            ax.barh(y, v, color=colors[str(c["strategy"])], height=0.6)
            ax.text(v, y, f" {v:.2g}×", va="center", fontsize=8)
    ax.axvline(1.0, color=_BASELINE_COLOR, linestyle="--", linewidth=1, label="scratch (1×)")
    ax.set_yticks(ys, [_text(f"{c['strategy']} @ {shots_label(c['shots'])}") for c in rows])
    ax.set_xlim(0, max([1.0, *reached]) * 1.25)
    ax.set_xlabel("speed-up in wall-clock time to reach scratch's best validation accuracy (×)")
    ax.set_title("Time to scratch's accuracy (geometric mean over seeds)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return to_base64_png(fig)
