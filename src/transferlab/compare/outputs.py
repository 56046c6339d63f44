"""What a comparison leaves in its folder: config.yaml, results.csv, summary.json, report.html."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..artifacts.files import write_text_atomic
from ..jsonable import to_jsonable
from .statistics import summarize

CSV_COLUMNS = ("strategy", "strategy_name", "shots", "seed", "status", "test_accuracy", "macro_f1", "val_accuracy",
               "train_seconds", "epochs", "best_epoch", "steps", "samples_seen", "n_train", "trainable_params",
               "total_params", "train_flops", "threads", "balanced_accuracy", "majority_rate")


def write_config(out: Path, identity: dict[str, Any]) -> None:
    import yaml

    write_text_atomic(out / "config.yaml", yaml.safe_dump(identity, sort_keys=False))


def versions() -> dict[str, str]:
    import platform

    import torch

    from .. import __version__

    return {"transferlab": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_outputs(out: Path, runs: list[dict[str, Any]], config: dict[str, Any],
                  analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    """(Re)write results.csv, summary.json and report.html from the finished runs; return the summary.

    `analysis` (metric, correction, margin, max_seeds) says how verdicts are made; None: the defaults.
    """
    from ..report import write_report

    runs = grid_order(runs, config)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for run in runs:
        writer.writerow(run)
    write_text_atomic(out / "results.csv", buf.getvalue())
    options = {k: v for k, v in (analysis or {}).items() if k in ("metric", "correction", "margin", "max_seeds")}
    summary = to_jsonable(summarize(runs, **options)) if runs else {"cells": [], "recommendation": {}}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    if runs:
        title = f"transferlab comparison: {config.get('pretrained')} → {config.get('data')}"
        transferred, note = what_transferred(out, config, summary)
        write_report(out / "report.html", summary, to_jsonable(runs), config=config, versions=versions(), title=title,
                     transferred=transferred, transferred_note=note)
    return summary


def grid_order(runs: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs in the grid's order — by label budget as configured, then seed, then strategy as listed
    (reference baselines after the strategies) — whatever order they finished in (--jobs N, resumed grids).
    Runs the config does not name keep their stored order, after the others."""
    shots = [str(s) for s in config.get("shots") or []]
    labels = [s.get("label") or s.get("name") for s in config.get("strategies") or [] if isinstance(s, dict)]

    def key(run: dict[str, Any]) -> tuple[int, int, int]:
        budget = str(run.get("shots"))
        if budget not in shots:
            return (len(shots), 0, 0)
        return (shots.index(budget), int(run.get("seed", 0)),
                labels.index(run["strategy"]) if run.get("strategy") in labels else len(labels))

    return sorted(runs, key=key)


TRANSFERRED = "what_transferred.json"


def what_transferred(out: Path, config: dict[str, Any], summary: dict[str, Any]) -> tuple[Any, str | None]:
    """Layer-wise CKA, drift, forgetting and attributions of the saved models (`--save-models`), also written
    to OUT/what_transferred.json; (None, why not) when there are no saved models or they cannot be measured."""
    from ..analysis.comparison import what_transferred as measure
    from ..errors import TransferlabError

    models = out / "models"
    if not models.is_dir() or not any(models.iterdir()):
        return None, ("No models were saved: run compare with --save-models to see what transferred (layer-wise "
                      "CKA, weight drift, forgetting, attributions).")
    try:
        result = measure(models, config, best=summary.get("recommendation"))
    except TransferlabError as err:  # e.g. the pretrained folder was moved or retrained since
        return None, f"What transferred could not be measured: {err}"
    write_text_atomic(out / TRANSFERRED, json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    return result, None


def rebuild(out: str | Path) -> dict[str, Any]:
    """`transferlab report DIR`: rebuild results.csv, summary.json and report.html from the run store.

    Example:
        >>> rebuild("cmp")["recommendation"]  # doctest: +SKIP
    """
    from ..errors import ConfigError
    from .folder import claim_folder
    from .run_store import STORE, RunStore

    out = Path(out)
    if not (out / STORE).is_file():
        raise ConfigError(f"{out} holds no comparison ({STORE} is missing); run `transferlab compare ... --out {out}`")
    out = claim_folder(out)  # it rewrites results.csv, summary.json, report.html: only if they are compare's own
    with RunStore(out / STORE) as store:
        runs, config, analysis = store.runs(), store.get_meta("config") or {}, store.get_meta("analysis")
        every_run = store.runs(status=None)
    if config.get("task_kind") == "rl":  # a `compare --env` folder: its own summary and report (rl/report.py)
        from ..rl.report import write_rl_outputs

        return write_rl_outputs(out, every_run, config)
    return write_outputs(out, runs, config, analysis)
