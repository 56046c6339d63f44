"""The self-contained report.html of a comparison: headline, figures, tables, config, versions."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from . import plots, tables
from .cells import check_summary, ordered_strategies
from .transferred import transferred_section
from .verdict import headline

# Inline CSS only: the file must open offline, from an archive, years later.
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1150px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.headline { font-size: 1.2rem; background: #f4f7fb; border-left: 5px solid #1f77b4; padding: 0.8rem 1rem; }
.warning { background: #fdecea; border-left: 5px solid #c62828; color: #7f1010; padding: 0.7rem 1rem;
           margin-top: 0.8rem; font-weight: 600; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tbody tr:nth-child(even) { background: #fafafa; }
.verdict { padding: 0.1rem 0.4rem; border-radius: 3px; font-weight: 600; white-space: nowrap; }
.verdict.helps { background: #d7f0d8; color: #1b5e20; } .verdict.hurts { background: #f8d0cc; color: #b71c1c; }
.verdict.baseline { background: #e6e6e6; color: #333; } .verdict.neutral { background: #f1f1f1; color: #555; }
tr.row-hurts td { background: #fff4f3; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
.note { color: #444; font-size: 0.9rem; } .muted { color: #777; }
"""

_HOW_TO_READ = (
    "Each cell's number is the verdict metric named above (accuracy, or balanced accuracy when the test split is "
    "imbalanced, or the one chosen with --metric), averaged over seeds; accuracy, balanced accuracy, macro-F1 and "
    "the majority-class rate (the accuracy of always answering the most common class) are shown beside it. "
    "Intervals count both sources of noise: seeds (which examples were labelled, initialisation) and the finite "
    "test split (a bootstrap over test examples), and never leave the metric's range. Each Δ vs scratch is paired "
    "by seed and by test example: the strategy and scratch trained on the same examples and were scored on the "
    "same test examples. The verdict is 'helps' or 'hurts' when the difference is significant after the stated "
    "multiple-comparison correction (the interval excludes 0), 'no-difference' when the interval lies within the "
    "stated margin, and 'inconclusive' otherwise, with an estimate of how many seeds would decide it. Speed-up "
    "is how much sooner, in wall-clock time, the strategy first reached scratch's best validation accuracy "
    "(geometric mean over seeds that got there; 'never reached' when none did). Labels saved per class is how "
    "many labels per class scratch would need to match this score (interpolated on its learning curve) minus "
    "the labels this strategy used; negative means the strategy costs labels. A strategy is recommended only "
    "from decided verdicts: the cheapest strategy that helps with a mean within the CI of the best one, or, when "
    "nothing helps and every verdict is decided, the cheapest of scratch and the strategies with no difference."
)


def _analysis_note(summary: Mapping[str, Any]) -> str:
    a = summary.get("analysis")
    if not isinstance(a, Mapping):
        return ""
    text = (f"Verdicts use {a.get('metric_reason', a.get('metric'))}. Intervals: {a.get('interval_method')}. "
            f"Multiple comparisons: {a.get('correction_name')}. 'no-difference' means within ±{a.get('margin')}.")
    notes = " ".join(str(n) for n in a.get("notes") or [])
    return f'<p class="note">{escape(text + (" " + notes if notes else ""))}</p>'


def render_report(
    summary: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    *,
    config: Mapping[str, Any],
    versions: Mapping[str, Any],
    title: str = "transferlab comparison",
    transferred: Any = None,
    transferred_note: str | None = None,
) -> str:
    """Render a comparison as one self-contained HTML document (inline CSS, figures as base64 PNG).

    `transferred` (an analysis.comparison.TransferredSummary of the saved models) adds the "What
    transferred" section; without it the section shows `transferred_note`.

    Example:
        >>> summary = {"cells": [{"strategy": "scratch", "shots": 5, "n_seeds": 1, "mean": 0.6,
        ...                       "verdict": "baseline", "train_seconds_mean": 2.0}], "recommendation": {}}
        >>> page = render_report(summary, [], config={"shots": [5]}, versions={"transferlab": "0.1.0"})
        >>> page.startswith("<!DOCTYPE html>")
        True
    """
    # long: the report page's sections in reading order; each is a call into a section renderer
    cells = check_summary(summary)
    colors = plots.strategy_colors(ordered_strategies(cells))
    head = headline(cells)
    parts = [f"<h1>{escape(title)}</h1>", _meta_line(config), '<section id="verdict"><h2>Verdict</h2>']
    parts.append(f'<p class="headline">{escape(head.summary)}</p>')
    if head.warnings:
        parts.append(f'<p class="warning">⚠ Negative transfer: {escape("; ".join(head.warnings))}.</p>')
    for warning in summary.get("warnings") or []:
        parts.append(f'<p class="warning">⚠ Below the majority class: {escape(str(warning))}.</p>')
    parts.append(_analysis_note(summary))
    parts.append("</section>")

    parts.append('<section id="figures"><h2>Figures</h2>')
    if cells:
        parts.append(_figure(plots.learning_curve(cells, runs, colors), "Learning curve",
                             "The verdict metric on the test split against labels per class; 'all' sits at the "
                             "right, off the log scale."))
    parts.append(_figure(plots.accuracy_vs_time(cells, colors), "Accuracy vs training time",
                         "Up and to the left is better: more accuracy for less training time.",
                         missing="No training times were recorded."))
    parts.append(_figure(plots.speedups(cells, colors), "Time to scratch's accuracy",
                         "Bars right of the dashed line reached scratch's best validation accuracy sooner than scratch did.",
                         missing="Only scratch was run: there is no speed-up to show."))
    parts.append("</section>")

    recommendation = summary.get("recommendation") or {}
    parts += [
        '<section id="cells"><h2>Every cell</h2>', tables.cell_table(cells), "</section>",
        '<section id="recommendation"><h2>Recommendation</h2>', tables.recommendation_table(recommendation), "</section>",
        transferred_section(transferred, transferred_note),
        '<section id="runs"><h2>Every run</h2>',
        f"<details><summary>{len(runs)} runs</summary>{tables.run_table(runs, ordered_strategies(cells))}</details></section>",
        '<section id="how-to-read"><h2>How to read this</h2>', f'<p class="note">{escape(_HOW_TO_READ)}</p></section>',
        '<section id="config"><h2>Config</h2>',
        f"<pre>{escape(json.dumps(config, indent=2, default=str, ensure_ascii=False))}</pre></section>",
        '<section id="versions"><h2>Versions</h2>', tables.versions_table(versions), "</section>",
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(
    path: str | os.PathLike[str],
    summary: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    *,
    config: Mapping[str, Any],
    versions: Mapping[str, Any],
    title: str = "transferlab comparison",
    transferred: Any = None,
    transferred_note: str | None = None,
) -> Path:
    """Render the report and write it atomically: a reader sees the old file or the whole new one.

    Example:
        >>> write_report("runs/cmp/report.html", summary, runs, config=config, versions=versions)  # doctest: +SKIP
    """
    from ..artifacts.files import write_text_atomic

    page = render_report(summary, runs, config=config, versions=versions, title=title, transferred=transferred,
                         transferred_note=transferred_note)  # fail before touching disk
    return write_text_atomic(Path(path), page)


def _figure(png_base64: str | None, alt: str, caption: str, *, missing: str = "") -> str:
    if png_base64 is None:
        return f'<p class="muted">{escape(missing)}</p>'
    return (
        f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{png_base64}">'
        f"<figcaption><strong>{escape(alt)}.</strong> {escape(caption)}</figcaption></figure>"
    )


def _meta_line(config: Mapping[str, Any]) -> str:
    """'pretrained → data' under the title, when the config names them."""
    bits = [f"{label}: {config[key]}" for key, label in (("pretrained", "pretrained"), ("data", "target task"))
            if isinstance(config, Mapping) and config.get(key) is not None]
    return f'<p class="muted">{escape(" · ".join(str(b) for b in bits))}</p>' if bits else ""
