"""Terminal output of `rank`, `advise` and `explain`: rich tables and a few lines of prose."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis.advice import Advice
    from ..analysis.explanation import ExplainResult
    from ..analysis.ranking import RankResult


def _f(value: Any, digits: int = 3) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def _console():
    from rich.console import Console

    return Console(width=max(Console().width, 100))


def print_rank(result: RankResult) -> None:
    from rich.table import Table

    console = _console()
    scored_on = f"{result.n_examples} labelled examples of {result.data} ({result.shots} per class)"
    if result.layers is None:
        table = Table(title=f"pretrained models ranked by LogME (best first) — {scored_on}")
        for col in ("#", "model", "LogME", "LEEP", "H-score", "probe acc.", "dim", "seconds"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for i, m in enumerate(result.models, 1):
            table.add_row(str(i), m.model, _f(m.logme), _f(m.leep), _f(m.hscore, 2), _f(m.probe_accuracy),
                          str(m.feature_dim), f"{m.seconds:.2f}")
    else:
        best = result.best_layer
        table = Table(title=f"blocks of {result.model} (input side first) — {scored_on}")
        for col in ("block", "freeze if cut here", "LogME", "LEEP", "H-score", "probe acc.", "dim", "seconds"):
            table.add_column(col, justify="left" if col == "block" else "right")
        for layer in result.layers:
            mark = " ◀" if best is not None and layer.block == best.block else ""
            table.add_row(layer.block + mark, str(layer.freeze), _f(layer.logme), _f(layer.leep), _f(layer.hscore, 2),
                          _f(layer.probe_accuracy), str(layer.dim), f"{layer.seconds:.2f}")
    console.print(table)
    if result.layers is not None and result.best_layer is not None:
        console.print(f"cut after {result.best_layer.block}: {result.suggestion} "
                      f"(features computed once in {result.feature_seconds:.2f}s)")
    if result.validation is not None:
        v = result.validation
        for score, c in v.correlations.items():
            if c.tau is not None:
                console.print(f"Kendall τ of {score} vs fine-tuned accuracy: {c.tau:+.3f} (n={c.n}, p={c.p_value:.3g})")
        for note in v.notes:
            console.print(f"[yellow]note:[/yellow] {note}")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")


def print_advice(advice: Advice) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"{advice.pretrained} → {advice.data}: per block (input side first)")
    for col in ("block", "LogME", "domain gap", "dim"):
        table.add_column(col, justify="left" if col == "block" else "right")
    for layer in advice.layers:
        mark = " ◀" if layer["block"] == advice.best_block else ""
        table.add_row(layer["block"] + mark, _f(layer["logme"]), _f(layer.get("gap")), str(layer["dim"]) if layer["dim"] is not None else "—")
    console.print(table)
    console.print(f"[bold]advice: {advice.label}[/bold] (blocks frozen: {advice.freeze} of {len(advice.blocks)})")
    console.print(advice.reason, soft_wrap=False)
    console.print(f"run: {advice.command}")
    for note in advice.notes:
        console.print(f"[dim]note: {note}[/dim]")


def print_explain(result: ExplainResult) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"{result.model} vs {result.pretrained} on {result.n_examples} test examples of {result.data}")
    for col in ("block", "linear CKA", "weight drift"):
        table.add_column(col, justify="left" if col == "block" else "right")
    for block in result.blocks:
        table.add_row(block, _f(result.cka.get(block)), _f(result.drift.get(block)))
    console.print(table)
    if result.forgetting is not None:
        f = result.forgetting
        console.print(f"source accuracy on {f.source_data}: {f.before:.3f} before, {f.after:.3f} after fine-tuning "
                      f"(lost {f.drop:.3f}, n={f.n})")
    for a in result.attributions:
        line = f"example {a.index}: label {a.label}, predicted {a.predicted} ({a.probability:.2f})"
        if a.tokens is not None and a.scores:
            top = sorted(zip(a.tokens, a.scores), key=lambda t: -abs(t[1]))[:5]
            line += " — top tokens: " + ", ".join(f"{t} {s:+.3f}" for t, s in top)
        console.print(line)
    if result.out:
        console.print(f"attributions drawn in {result.out}/explain.html")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")
