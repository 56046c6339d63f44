"""`transferlab compare` on the terminal: merge the YAML config and flags, show progress, print the summary.

Terminal code lives here, in the command layer; `compare/` computes and writes, and prints nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compare.config import CompareConfig, resolve_config
from .compare.grid import ComparisonResult, run_comparison
from .errors import ConfigError


def print_summary(result: ComparisonResult) -> None:
    from rich.console import Console

    from .report.cells import verdict_label
    from rich.table import Table

    console = Console(width=max(Console().width, 110))  # the table needs ~110 columns; narrower wraps every row
    table = Table(title=f"test accuracy over seeds, ± = 95% CI half-width — {result.out}")
    for col in ("shots", "strategy", "accuracy", "Δ vs scratch", "verdict", "train s", "speed-up"):
        table.add_column(col, justify="left" if col in ("strategy", "verdict") else "right")

    def pm(mean: float, low: float | None, high: float | None, sign: str = "") -> str:
        half = "" if low is None or high is None else f" ± {(high - low) / 2:.3f}"
        return f"{mean:{sign}.3f}{half}"

    for c in result.summary["cells"]:
        delta = "—" if c["verdict"] == "baseline" else pm(c["delta_vs_scratch"], c["delta_ci_low"], c["delta_ci_high"], "+")
        colour = {"helps": "green", "hurts": "red"}.get(c["verdict"], "")
        speedup = c["time_to_scratch_accuracy_speedup"]
        table.add_row(str(c["shots"]), c["strategy"], pm(c["mean"], c["ci_low"], c["ci_high"]), delta,
                      f"[{colour}]{verdict_label(c)}[/{colour}]" if colour else verdict_label(c),
                      f"{c['train_seconds_mean']:.2f}", "never" if speedup is None else f"{speedup:.1f}×")
    console.print(table)
    for c in result.summary["cells"]:
        if c["verdict"] == "hurts" and c.get("delta_vs_scratch") is not None:
            console.print(f"[bold red]warning:[/bold red] negative transfer — {c['strategy']} at {c['shots']} shots is "
                          f"{c['delta_vs_scratch']:+.3f} below scratch (95% CI entirely below 0)")
        elif c["verdict"] == "hurts":
            console.print(f"[bold red]warning:[/bold red] adaptation hurts — {c['strategy']} at {c['shots']} labels is "
                          f"{c['delta_vs_source_only']:+.3f} below source-only (95% CI entirely below 0)")
    for shots, rec in result.summary["recommendation"].items():
        console.print(f"{shots} shots: best {rec['best']}; cheapest within its CI: {rec['cheapest_within_ci']}")
    if result.failed:
        console.print(f"[yellow]{result.failed} run(s) failed; see results.csv and runs.sqlite[/yellow]")
    console.print(f"report: {result.out / 'report.html'}")


def run_with_progress(config: CompareConfig, out: Path, *, quiet: bool, **kwargs: Any) -> ComparisonResult:
    """run_comparison with a rich display: cells done/total, current cell, elapsed, remaining."""
    if quiet:
        return run_comparison(config, out, **kwargs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..engine.progress import WIDTH, short

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
