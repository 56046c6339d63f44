"""`transferlab compare` on the terminal: merge the YAML config and flags, show progress, print the summary.

Terminal code lives here, in the command layer; `compare/` computes and writes, and prints nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compare.config import CompareConfig, resolve_config
from .compare.grid import ComparisonResult, run_comparison
from .errors import ConfigError


def _print_notes(console: Any, summary: dict[str, Any], analysis: dict[str, Any], metric: str) -> None:
    """Below the table: how verdicts are read, the starred verdicts' footnote, negative-transfer warnings."""
    from rich.markup import escape

    if analysis:
        console.print(f"verdicts use {escape(analysis.get('metric_reason', metric))}; intervals: "
                      f"{escape(analysis.get('interval_method', ''))}; multiple comparisons: "
                      f"{escape(analysis.get('correction_name', ''))}; no-difference means within ±{analysis.get('margin')}")
    starred = [c for c in summary["cells"] if c["verdict"] == "inconclusive" and c.get("excludes_zero_uncorrected")]
    if starred:
        family = max(int(c.get("comparisons_corrected_for") or 1) for c in starred)
        console.print(f"* the interval excludes 0 on its own, but not after the correction for the grid's {family} "
                      f"comparisons ({escape(analysis.get('correction_name', 'multiple comparisons'))}); the seeds "
                      "shown would decide it")
    for c in summary["cells"]:
        if c["verdict"] == "hurts" and c.get("delta_vs_scratch") is not None:
            console.print(f"[bold red]warning:[/bold red] negative transfer — {escape(str(c['strategy']))} at "
                          f"{c['shots']} shots is {c['delta_vs_scratch']:+.3f} below scratch (interval entirely below 0)")
        elif c["verdict"] == "hurts" and c.get("delta_vs_source_only") is not None:
            console.print(f"[bold red]warning:[/bold red] adaptation hurts — {escape(str(c['strategy']))} at "
                          f"{c['shots']} labels is {c['delta_vs_source_only']:+.3f} below source-only (interval entirely below 0)")
    for warning in summary.get("warnings") or []:
        console.print(f"[bold red]warning:[/bold red] {escape(warning)}")


def print_summary(result: ComparisonResult) -> None:
    from rich.console import Console

    from .report.cells import verdict_label
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=max(Console().width, 160))  # the table needs ~160 columns; narrower wraps every row
    analysis = result.summary.get("analysis") or {}
    metric = analysis.get("metric", "accuracy")
    table = Table(title=f"test {metric} over seeds [interval] — {result.out}")
    for col in ("shots", "strategy", metric, "Δ vs scratch", "verdict", "seeds", "majority", "bal. acc", "macro-F1",
                "train s", "speed-up"):
        table.add_column(col, justify="left" if col in ("strategy", "verdict") else "right")

    def iv(mean: float | None, low: float | None, high: float | None, sign: str = "") -> str:
        if mean is None:
            return "—"
        return f"{mean:{sign}.3f}" + ("" if low is None or high is None else f" [{low:{sign}.3f}, {high:{sign}.3f}]")

    def num(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    for c in result.summary["cells"]:
        base = c["verdict"] == "baseline"
        delta = "—" if base else iv(c["delta_vs_scratch"], c["delta_ci_low"], c["delta_ci_high"], "+")
        colour = {"helps": "green", "hurts": "red", "inconclusive": "yellow"}.get(c["verdict"], "")
        verdict = c["verdict"]
        if verdict == "inconclusive":
            verdict += "*" if c.get("excludes_zero_uncorrected") else ""
            verdict += f" (~{c['seeds_needed']} seeds)" if c.get("seeds_needed") else " (test split too small)"
        speedup = c["time_to_scratch_accuracy_speedup"]
        table.add_row(str(c["shots"]), escape(str(c["strategy"])), iv(c["mean"], c["ci_low"], c["ci_high"]), delta,
                      (f"[{colour}]{escape(verdict + verdict_label(c)[len(c['verdict']):])}[/{colour}]" if colour
                       else escape(verdict + verdict_label(c)[len(c["verdict"]):])), str(c["n_seeds"]),
                      num(c.get("majority_rate")), num(c.get("balanced_accuracy")), num(c.get("macro_f1_mean")),
                      "—" if c["train_seconds_mean"] is None else f"{c['train_seconds_mean']:.2f}",
                      "never" if speedup is None else f"{speedup:.1f}×")
    console.print(table)
    _print_notes(console, result.summary, analysis, metric)
    for shots, rec in result.summary["recommendation"].items():
        if rec.get("decided", True):
            console.print(f"{shots} shots: use [bold]{escape(str(rec['cheapest_within_ci']))}[/bold] (best "
                          f"{escape(str(rec['best']))})")
        else:
            console.print(f"{shots} shots: inconclusive — {escape(str(rec['reason']))}")
    if result.failed:
        console.print(f"[yellow]{result.failed} run(s) failed; see results.csv and runs.sqlite[/yellow]")
    console.print(f"report: {result.out / 'report.html'}")


def run_with_progress(config: CompareConfig, out: Path, *, quiet: bool, **kwargs: Any) -> ComparisonResult:
    """run_comparison with a rich display: cells done/total, current cell, elapsed, remaining."""
    if quiet:
        return run_comparison(config, out, **kwargs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .progress import WIDTH, short

    columns = (TextColumn("{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    console = Console(stderr=True, width=min(WIDTH, Console(stderr=True).width))  # fits an 80-column terminal
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(short("compare", 30), total=None)

        def on_cell(cell, run, done, total):
            state = "running" if run is None else run["status"]
            progress.update(task, completed=done, total=total, description=short(
                f"{short(cell.label, 12).rstrip()} ·{cell.shots} shots·s{cell.seed} {state}", 30))

        return run_comparison(config, out, on_cell=on_cell, **kwargs)


def compare_from_cli(*, config_file, flags, strategy_flags, train_flags, out, jobs, threads, force, save_models,
                     json_out, quiet) -> None:
    import json

    config, execution = resolve_config(config_file, flags, strategy_flags, train_flags)
    if out is None:
        raise ConfigError("compare needs --out DIR (where runs.sqlite and the report go)")
    jobs = jobs if jobs is not None else int(execution.get("jobs", 1))
    threads = threads if threads is not None else execution.get("threads")
    result = run_with_progress(config, out, quiet=quiet or json_out, jobs=jobs, threads=threads, force=force,
                               save_models=save_models)
    if json_out:
        print(json.dumps(result.to_json(), allow_nan=False))
    else:
        print_summary(result)
