"""Summary, results.csv and report.html of an RL comparison: CIs over seeds, paired verdicts, learning curves.

The statistics are the ones every comparison uses (`compare.statistics`: Student-t CIs over seeds, the
per-seed paired delta against scratch, "helps" only when the whole CI of the delta is above 0).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import curve_metrics, label, time_to_threshold, transfer_ratio

CONFIDENCE = 0.95


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def mean_curve(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The seed-mean learning curve with a t-interval per evaluation step."""
    from ..compare.statistics import mean_ci

    steps = [p["step"] for p in runs[0]["curve"]]
    out = []
    for i, step in enumerate(steps):
        values = [r["curve"][i]["return"] for r in runs if len(r["curve"]) > i]
        m, lo, hi = mean_ci(values, CONFIDENCE)
        out.append({"step": step, "return": m, "ci_low": _num(lo), "ci_high": _num(hi)})
    return out


def summarize(runs: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    """One cell per (strategy, budget): the declared metric with CI, Δ vs scratch paired by seed, verdict,
    and the transfer metrics (jumpstart, asymptotic return, auc, transfer ratio, time to scratch's final return)."""
    # long: one pass over (budget, strategy) building each cell's metric, CI, paired delta and transfer metrics together
    from ..compare.statistics import mean_ci, paired_delta, verdict

    metric = config["metric"]
    margin = float(config.get("margin") or 0.0)  # in metric units; 0: a CI of Δ across 0 is "inconclusive"
    finished = [r for r in runs if r["status"] == "finished"]
    cells: list[dict[str, Any]] = []
    recommendation: dict[str, Any] = {}
    for steps in config["steps"]:
        at = [r for r in finished if int(r["steps"]) == int(steps)]
        scratch = {r["seed"]: r for r in at if r["name"] == "scratch"}
        scratch_curve = mean_curve(list(scratch.values())) if scratch else None
        threshold = config.get("threshold")
        if threshold is None and scratch:
            threshold = float(np.mean([r["metrics"]["asymptotic_return"] for r in scratch.values()]))
        for spec in config["strategies"]:
            name = label(spec)
            mine = sorted((r for r in at if r["strategy"] == name), key=lambda r: r["seed"])
            failed = sum(1 for r in runs if r["status"] != "finished" and r["strategy"] == name
                         and int(r["steps"]) == int(steps))
            if not mine:
                cells.append({"strategy": name, "steps": int(steps), "n_seeds": 0, "failed": failed})
                continue
            values = [r["metrics"][metric] for r in mine]
            mean, lo, hi = mean_ci(values, CONFIDENCE)
            cell: dict[str, Any] = {"strategy": name, "steps": int(steps), "n_seeds": len(mine), "failed": failed,
                                    "metric": metric, "mean": mean, "ci_low": _num(lo), "ci_high": _num(hi)}
            for key in ("jumpstart", "asymptotic_return", "auc", "final_return"):
                cell[key] = float(np.mean([r["metrics"][key] for r in mine]))
            cell["train_seconds_mean"] = float(np.mean([r["train_seconds"] for r in mine]))
            cell["heads"] = mine[0].get("heads")
            curve = mean_curve(mine)
            cell["curve"] = curve
            cell["threshold"] = threshold
            if threshold is not None:
                t = time_to_threshold(curve, threshold)
                per_seed = [time_to_threshold(r["curve"], threshold) for r in mine]
                cell["time_to_threshold"] = t
                cell["threshold_step_fraction"] = None if t is None else t / float(steps)
                cell["reached_threshold"] = f"{sum(x is not None for x in per_seed)}/{len(per_seed)}"
            if spec["name"] == "scratch":
                cell |= {"verdict": "baseline", "delta_vs_scratch": 0.0, "delta_ci_low": None, "delta_ci_high": None,
                         "transfer_ratio": 0.0}
            else:
                paired = [(r["metrics"][metric], scratch[r["seed"]]["metrics"][metric]) for r in mine
                          if r["seed"] in scratch]
                if paired:
                    d, dlo, dhi = paired_delta([a for a, _ in paired], [b for _, b in paired], CONFIDENCE)
                    cell |= {"delta_vs_scratch": d, "delta_ci_low": _num(dlo), "delta_ci_high": _num(dhi),
                             "verdict": verdict(_num(dlo), _num(dhi), margin), "paired_seeds": len(paired)}
                else:
                    cell |= {"delta_vs_scratch": None, "delta_ci_low": None, "delta_ci_high": None,
                             "verdict": "no-difference", "paired_seeds": 0}
                cell["transfer_ratio"] = (transfer_ratio(cell["auc"], curve_metrics(scratch_curve)["auc"])
                                          if scratch_curve else None)
            cells.append(cell)
        helping = [c for c in cells if c["steps"] == int(steps) and c.get("verdict") == "helps"]
        best = max(helping, key=lambda c: c["mean"]) if helping else None
        recommendation[str(steps)] = {"strategy": best["strategy"] if best else "scratch",
                                      "why": (f"highest mean {metric} among strategies that help" if best else
                                              f"no strategy helps on {metric} at this budget")}
    return {"task_kind": "rl", "metric": metric, "confidence": CONFIDENCE, "margin": margin, "env": config["env"],
            "env_options": config["env_options"], "pretrained": config["pretrained"], "cells": cells,
            "recommendation": recommendation}


def write_rl_outputs(out: Path, runs: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    """Write results.csv (one row per run), summary.json and report.html; return the summary."""
    from ..artifacts.files import write_bytes_synced
    from ..jsonable import to_jsonable

    summary = summarize(runs, config)
    keys = ["strategy", "steps", "seed", "status", "heads", "jumpstart", "asymptotic_return", "auc", "final_return",
            "episodes", "train_seconds", "error"]
    rows = [{**{k: r.get(k) for k in keys}, **(r.get("metrics") or {})} for r in runs]
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_synced(out / "results.csv", buf.getvalue().encode())
    write_bytes_synced(out / "summary.json", (json.dumps(to_jsonable(summary), indent=2) + "\n").encode())
    write_bytes_synced(out / "report.html", render_report(summary, config).encode())
    return summary


def _fmt(x: Any, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _curves_figure(cells: Sequence[Mapping[str, Any]], steps: int) -> str:
    from ..report.plots import strategy_colors, to_base64_png
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    colors = strategy_colors([c["strategy"] for c in cells])
    for c in cells:
        xs = [p["step"] for p in c["curve"]]
        ys = [p["return"] for p in c["curve"]]
        ax.plot(xs, ys, marker="o", ms=3, color=colors[c["strategy"]], label=c["strategy"].replace("$", r"\$"),
                lw=2.2 if c["strategy"] == "scratch" else 1.6)
        lo = [p["ci_low"] if p["ci_low"] is not None else p["return"] for p in c["curve"]]
        hi = [p["ci_high"] if p["ci_high"] is not None else p["return"] for p in c["curve"]]
        ax.fill_between(xs, lo, hi, color=colors[c["strategy"]], alpha=0.12)
    threshold = cells[0].get("threshold")
    if threshold is not None:
        ax.axhline(threshold, color="#999", ls="--", lw=1, label="scratch's final return")
    ax.set_xlabel("environment steps on the target")
    ax.set_ylabel("evaluation return (mean over seeds)")
    ax.set_title(f"learning curves, budget {steps:,} steps (bands: 95% CI over seeds)")
    ax.legend(fontsize=8)
    return to_base64_png(fig)


def render_report(summary: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    from ..report.document import _CSS

    metric = summary["metric"]
    opts = ", ".join(f"{k}={v}" for k, v in sorted(summary["env_options"].items())) or "default options"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>transferlab RL comparison</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>RL transfer: {escape(str(summary['pretrained']))} → {escape(summary['env'])} ({escape(opts)})</h1>",
             f"<p class='note'>Verdicts on <b>{escape(metric)}</b>, paired by seed against scratch (same network, "
             "random initialisation, same hyperparameters). Returns are greedy evaluation returns on "
             f"{config['eval_episodes']} fixed-seed evaluation episodes at {config['eval_points']} + 1 points of "
             "each run. auc = area under that learning curve per step (mean return over training); jumpstart = return "
             "at step 0; asymptotic = mean of the last quarter of the curve; time to threshold = first step where the "
             "seed-mean curve reaches scratch's final (asymptotic) return; transfer ratio = (auc − auc scratch) / "
             "|auc scratch|. Verdicts: helps / hurts when the whole 95% CI of Δ is above / below 0; no-difference when it "
             f"lies within ±{summary.get('margin', 0.0):g} (--margin, in return units); inconclusive otherwise.</p>"]
    for steps in config["steps"]:
        cells = [c for c in summary["cells"] if c["steps"] == int(steps) and c.get("n_seeds")]
        rec = summary["recommendation"].get(str(steps), {})
        parts.append(f"<h2>Budget {int(steps):,} steps</h2>")
        parts.append(f"<div class='headline'>Recommended: <b>{escape(rec.get('strategy', '–'))}</b> "
                     f"({escape(rec.get('why', ''))})</div>")
        header = ["strategy", "heads", "seeds", f"{metric} (95% CI)", "Δ vs scratch (95% CI)", "verdict", "jumpstart",
                  "asymptotic", "auc", "transfer ratio", "time to threshold", "train s"]
        rows = []
        for c in cells:
            v = c.get("verdict", "")
            cls = {"helps": "helps", "hurts": "hurts", "baseline": "baseline"}.get(v, "neutral")
            ci = f"{_fmt(c['mean'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
            delta = ("–" if v == "baseline" else
                     f"{_fmt(c.get('delta_vs_scratch'))} [{_fmt(c.get('delta_ci_low'))}, {_fmt(c.get('delta_ci_high'))}]")
            ttt = c.get("time_to_threshold")
            ttt_txt = "never" if ttt is None else f"{int(ttt):,} ({c['threshold_step_fraction']:.0%}; {c['reached_threshold']} seeds)"
            cols = [escape(c["strategy"]), escape(str(c.get("heads"))), str(c["n_seeds"]), ci, delta,
                    f"<span class='verdict {cls}'>{escape(v)}</span>", _fmt(c["jumpstart"]), _fmt(c["asymptotic_return"]),
                    _fmt(c["auc"]), _fmt(c.get("transfer_ratio"), 2), ttt_txt, _fmt(c["train_seconds_mean"])]
            rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cols) + "</tr>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
                     + "".join(rows) + "</tbody></table>")
        if cells:
            png = _curves_figure(cells, int(steps))
            parts.append(f"<figure><img alt='learning curves at {int(steps)} steps' src='data:image/png;base64,{png}'>"
                         "<figcaption>Evaluation return against target steps, mean over seeds.</figcaption></figure>")
    failed = [c for c in summary["cells"] if c.get("failed")]
    if failed:
        parts.append("<p class='warning'>Failed runs: " + escape(", ".join(f"{c['strategy']} at {c['steps']} steps "
                                                                          f"({c['failed']})" for c in failed)) + "</p>")
    parts.append("<h2>Config</h2><pre>" + escape(json.dumps(dict(config), indent=2, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
