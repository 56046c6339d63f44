"""What transferred, drawn: layer-wise CKA and drift, forgetting, attribution heatmaps and token highlights.

Used by the comparison report ("What transferred" section, from the models `compare --save-models`
kept) and by `transferlab explain --out DIR` (explain.html). Like the rest of the report: inline CSS,
figures as base64 PNG, nothing fetched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from . import numbers as fmt
from .plots import to_base64_png

# The report renders analysis results without importing analysis (no import cycle): the objects it
# takes are analysis.attributions.Attribution, analysis.comparison.TransferredSummary and
# analysis.explanation.ExplainResult, read by attribute.
Attribution = TransferredSummary = ExplainResult = Any

_HOW_TO_READ = (
    "CKA (linear centred kernel alignment, Kornblith et al. 2019) compares the pretrained and the fine-tuned "
    "model's output of each block on the same target test examples: 1 means fine-tuning left the representation "
    "as it was (up to rotation and scale), lower means it was rebuilt. Drift is ‖w − w₀‖ / ‖w₀‖ of each block's "
    "weights: 0 for a frozen block. Source accuracy is the pretraining head's accuracy on the source test split, "
    "on the fine-tuned backbone; the drop from before to after is what fine-tuning made the model forget. "
    "Attributions show which pixels (or tokens) the predicted class rests on: red pushes towards it, blue away."
)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _cell(x: Any) -> str:
    return fmt.plain(_num(x))


def _source_cell(after: Any, before: float) -> str:
    """'0.912 (−0.041)': source accuracy after fine-tuning and its change."""
    a = _num(after)
    return fmt.MISSING if a is None else f"{fmt.plain(a)} ({fmt.signed(a - before)})"


def layer_figure(blocks: Sequence[str], series: dict[str, tuple[dict[str, float], dict[str, float]]]) -> str:
    """CKA (left) and drift (right) per block, one line per model, as base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    xs = list(range(len(blocks)))
    for name, (cka, drift) in series.items():
        left.plot(xs, [_num(cka.get(b)) if _num(cka.get(b)) is not None else math.nan for b in blocks], marker="o",
                  label=name.replace("$", r"\$"))
        right.plot(xs, [_num(drift.get(b)) if _num(drift.get(b)) is not None else math.nan for b in blocks],
                   marker="o", label=name.replace("$", r"\$"))
    for ax, title in ((left, "linear CKA with the pretrained model"), (right, "weight drift ‖w − w₀‖ / ‖w₀‖")):
        ax.set_xticks(xs, [b.replace("$", r"\$") for b in blocks], rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    left.set_ylim(0, 1.05)
    right.set_ylim(bottom=0)
    if 1 < len(series) <= 14:
        right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return to_base64_png(fig)


def heatmap_figure(items: Sequence[Attribution]) -> str | None:
    """Each image above its attribution map (signed, symmetric colour scale), as base64 PNG."""
    images = [a for a in items if a.kind == "image" and a.image is not None and a.heat is not None]
    if not images:
        return None
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.2 * len(images), 4.6))
    axes = fig.subplots(2, len(images), squeeze=False)
    for j, a in enumerate(images):
        img = np.transpose(a.image, (1, 2, 0)) if a.image.shape[0] == 3 else a.image[0]
        axes[0, j].imshow(img, cmap=None if a.image.shape[0] == 3 else "gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"label {a.label}\npredicted {a.predicted} ({a.probability:.2f})".replace("$", r"\$"),
                             fontsize=8)
        limit = float(np.abs(a.heat).max()) or 1.0
        axes[1, j].imshow(a.heat, cmap="bwr", vmin=-limit, vmax=limit)
        outline = a.image.mean(0)  # (H, W): the input's outline over its map
        if outline.max() > outline.min():
            axes[1, j].contour(outline, levels=[(outline.min() + outline.max()) / 2], colors="k", linewidths=0.6)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    return to_base64_png(fig)


def token_highlights(a: Attribution) -> str:
    """One text as HTML spans: red behind tokens that push towards the predicted class, blue away."""
    tokens, scores = a.tokens or [], a.scores or []
    limit = max((abs(s) for s in scores), default=0.0) or 1.0
    spans = []
    for tok, score in zip(tokens, scores):
        alpha = min(abs(score) / limit, 1.0) * 0.8
        rgb = "214,39,40" if score > 0 else "31,119,180"
        glue = tok.startswith("##")
        text = escape(tok[2:] if glue else tok)
        spans.append(("" if glue or not spans else " ") +
                     f'<span class="tok" title="{score:+.4f}" style="background: rgba({rgb},{alpha:.2f})">{text}</span>')
    head = (f"label <b>{escape(a.label)}</b>, predicted <b>{escape(a.predicted)}</b> ({a.probability:.2f})")
    return f'<p class="tokens">{head}<br>{"".join(spans)}</p>'


def attributions_html(items: Sequence[Attribution], method: str) -> str:
    if not items:
        return '<p class="muted">No examples were attributed.</p>'
    parts = [f'<p class="note">Method: {escape(method)}; each map explains the predicted class.</p>']
    figure = heatmap_figure(items)
    if figure is not None:
        parts.append(f'<figure><img alt="Attributions" src="data:image/png;base64,{figure}"></figure>')
    parts += [token_highlights(a) for a in items if a.kind == "text"]
    for a in (a for a in items if a.kind == "vector" and a.heat is not None):
        top = sorted(range(len(a.heat)), key=lambda i: -abs(float(a.heat[i])))[:10]
        cells = ", ".join(f"feature {i}: {float(a.heat[i]):+.3g}" for i in top)
        parts.append(f"<p>label <b>{escape(a.label)}</b>, predicted <b>{escape(a.predicted)}</b>: {escape(cells)}</p>")
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="transferred"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def transferred_section(summary: TransferredSummary | None, note: str | None = None) -> str:
    """The compare report's "What transferred" section (a note when no models were saved)."""
    parts = ['<section id="what-transferred"><h2>What transferred</h2>']
    if summary is None:
        parts.append(f'<p class="muted">{escape(note or "Run compare with --save-models to see what transferred.")}</p>')
        return "".join(parts) + "</section>"
    blocks = summary.blocks
    header = ["model", "strategy", "shots", *(f"CKA {b}" for b in blocks), *(f"drift {b}" for b in blocks)]
    has_source = summary.source_accuracy_before is not None
    if has_source:
        header.append("source accuracy")
    rows = []
    for m in summary.models:
        row = [escape(m.name), escape(m.strategy), escape(str(m.shots)), *(_cell(m.cka.get(b)) for b in blocks),
               *(_cell(m.drift.get(b)) for b in blocks)]
        if has_source:
            row.append(_source_cell(m.source_accuracy, summary.source_accuracy_before))
        rows.append(row)
    parts.append(f'<p class="note">{len(summary.models)} saved models (seed 0 of each cell; scratch left out), measured '
                 f"against the pretrained model on {summary.n_examples} target test examples.</p>")
    if has_source:
        parts.append(f'<p class="note">Source accuracy before fine-tuning: {_cell(summary.source_accuracy_before)} on '
                     f"the test split of {escape(str(summary.source_data))}; each row shows it after, and the change.</p>")
    if summary.models:
        figure = layer_figure(blocks, {m.name: (m.cka, m.drift) for m in summary.models})
        parts.append(f'<figure><img alt="CKA and drift per block" src="data:image/png;base64,{figure}"><figcaption>'
                     "<strong>CKA and drift per block.</strong> Frozen blocks keep CKA 1 and drift 0.</figcaption></figure>")
    parts.append(_table(header, rows))
    if summary.attribution_model:
        parts.append(f"<h3>Attributions: {escape(summary.attribution_model)}</h3>")
        parts.append(attributions_html(summary.attributions, "integrated-gradients"))
    for n in summary.notes:
        parts.append(f'<p class="muted">{escape(n)}</p>')
    parts.append(f'<p class="note">{escape(_HOW_TO_READ)}</p>')
    return "".join(parts) + "</section>"


_PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.45; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; } th, td { border: 1px solid #ddd; padding: 0.3rem 0.5rem; }
th { background: #f3f3f3; } figure img { max-width: 100%; border: 1px solid #eee; }
.tok { padding: 0 1px; border-radius: 2px; } .note { color: #444; font-size: 0.9rem; } .muted { color: #777; }
"""


def render_explain_page(result: ExplainResult) -> str:
    """explain.html: one self-contained page."""
    title = f"transferlab explain: {result.model}"
    rows = [[escape(b), _cell(result.cka.get(b)), _cell(result.drift.get(b))] for b in result.blocks]
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="muted">pretrained: {escape(result.pretrained)} · target data: {escape(result.data)} · '
             f"{result.n_examples} test examples</p>",
             "<h2>Per block</h2>", _table(["block", "linear CKA", "weight drift"], rows),
             f'<figure><img alt="CKA and drift per block" src="data:image/png;base64,'
             f'{layer_figure(result.blocks, {Path(result.model).name: (result.cka, result.drift)})}"></figure>']
    parts.append("<h2>Forgetting</h2>")
    if result.forgetting is None:
        parts.append('<p class="muted">Not measured: pass --source-data (the source task) to measure it.</p>')
    else:
        f = result.forgetting
        parts.append(f"<p>Source test accuracy on {escape(f.source_data)} (n={f.n}): before fine-tuning "
                     f"{fmt.plain(f.before)}, after {fmt.plain(f.after)} (change {fmt.signed(-f.drop)}).</p>")
    parts += ["<h2>Attributions</h2>", attributions_html(result.attributions, result.method)]
    parts += [f'<p class="muted">{escape(n)}</p>' for n in result.notes]
    parts.append(f'<p class="note">{escape(_HOW_TO_READ)}</p>')
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(title)}</title>\n<style>{_PAGE_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


def claim_explain_folder(out: str | Path) -> Path:
    """Check explain's --out before any work: new, empty, or holding only what explain wrote (its manifest)."""
    from ..artifacts.ownership import foreign_entries, output_folder, refuse_foreign

    out = output_folder(out)
    if out.exists():
        refuse_foreign(out, foreign_entries(out), "explain --out", "choose a new or empty folder for --out")
    return out


def write_explain_page(out: Path, result: ExplainResult) -> Path:
    """Write OUT/explain.html and OUT/explain.json atomically; return the page's path."""
    from ..artifacts.files import write_text_atomic

    from ..artifacts.ownership import record

    page = render_explain_page(result)
    out.mkdir(parents=True, exist_ok=True)
    record(out, {"explain.json", "explain.html"})  # claim_explain_folder checked the folder before any work
    write_text_atomic(out / "explain.json", json.dumps(result.to_json(), indent=2) + "\n")
    return write_text_atomic(out / "explain.html", page)
