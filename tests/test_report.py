"""The comparison report: self-contained HTML, headline words, embedded figures, escaping, atomic write."""

from __future__ import annotations

import base64
import copy
import re
import subprocess
from pathlib import Path

import pytest

from transferlab.report import render_report, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
SHOTS = [1, 5, "all"]
# (strategy, shots) -> (mean accuracy, delta vs scratch, verdict, speed-up)
GRID = {
    ("scratch", 1): (0.30, 0.0, "baseline", 1.0),
    ("partial", 1): (0.42, 0.12, "helps", 3.1),
    ("linear-probe", 1): (0.38, 0.08, "helps", None),
    ("scratch", 5): (0.60, 0.0, "baseline", 1.0),
    ("partial", 5): (0.63, 0.03, "helps", 1.8),
    ("linear-probe", 5): (0.61, 0.01, "no-difference", 1.2),
    ("scratch", "all"): (0.90, 0.0, "baseline", 1.0),
    ("partial", "all"): (0.905, 0.005, "no-difference", 0.9),
    ("linear-probe", "all"): (0.86, -0.04, "hurts", None),
}


def make_cell(strategy: str, shots, mean: float, delta: float, verdict: str, speedup, n_seeds: int = 3) -> dict:
    ci = n_seeds > 1
    base = verdict == "baseline"
    return {
        "strategy": strategy, "shots": shots, "n_seeds": n_seeds, "mean": mean,
        "ci_low": mean - 0.02 if ci else None, "ci_high": mean + 0.02 if ci else None,
        "delta_vs_scratch": delta, "delta_ci_low": None if base or not ci else delta - 0.015,
        "delta_ci_high": None if base or not ci else delta + 0.015, "verdict": verdict,
        "train_seconds_mean": {"scratch": 10.0, "partial": 6.0, "linear-probe": 1.5}.get(strategy, 3.0)
        * (1 if shots == 1 else 2 if shots == 5 else 8),
        "time_to_scratch_accuracy_speedup": speedup,
        "macro_f1_mean": mean - 0.01, "macro_f1_ci_low": mean - 0.03 if ci else None,
        "macro_f1_ci_high": mean + 0.01 if ci else None,
        "trainable_params": 1290 if strategy == "linear-probe" else 421_642, "total_params": 421_642,
        "train_flops_mean": 1.2e9 if strategy != "linear-probe" else 3.4e6,
        "reach_fraction": None if speedup is None else 1.0,
        "scratch_labels_needed": None if shots == "all" else 3.2,
        "labels_saved_per_class": None if shots == "all" or base else 2.2,
    }


def make_runs(cells: list[dict], seeds: int = 3) -> list[dict]:
    runs = []
    for c in cells:
        for seed in range(seeds):
            acc = c["mean"] + 0.01 * (seed - 1)
            runs.append({
                "strategy": c["strategy"], "shots": c["shots"], "seed": seed, "test_accuracy": acc,
                "macro_f1": acc - 0.01, "val_accuracy": acc + 0.01, "train_seconds": c["train_seconds_mean"],
                "trainable_params": c["trainable_params"], "total_params": c["total_params"],
                "train_flops": c["train_flops_mean"],
                "history": [{"epoch": e, "val_accuracy": acc * e / 3, "elapsed_seconds": e * 0.5, "train_loss": 1 / e}
                            for e in (1, 2, 3)],
            })
    return runs


def make_inputs(n_seeds: int = 3) -> dict:
    cells = [make_cell(s, shots, *GRID[(s, shots)], n_seeds=n_seeds)
             for shots in SHOTS for s in ("scratch", "partial", "linear-probe")]
    recommendation = {
        "1": {"best": "partial", "best_mean": 0.42, "cheapest_within_ci": "partial", "reason": "partial is best."},
        "5": {"best": "partial", "best_mean": 0.63, "cheapest_within_ci": "linear-probe", "reason": "cheaper."},
        "all": {"best": "partial", "best_mean": 0.905, "cheapest_within_ci": "scratch", "reason": "all tie."},
    }
    return {
        "summary": {"cells": cells, "recommendation": recommendation},
        "runs": make_runs(cells, n_seeds),
        "config": {"pretrained": "models/src", "data": "digits", "strategies": ["partial", "linear-probe"],
                   "shots": SHOTS, "seeds": list(range(n_seeds)), "train": {"epochs": 3, "lr": 0.01}},
        "versions": {"transferlab": "0.1.0", "torch": "2.13.0", "python": "3.11"},
    }


def render(inputs: dict, **kw) -> str:
    return render_report(inputs["summary"], inputs["runs"], config=inputs["config"], versions=inputs["versions"], **kw)


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture(scope="module")
def page() -> str:
    return render(make_inputs(), title="digits from mnist5k")


def test_headline_says_where_transfer_helps_and_where_it_makes_no_difference(page):
    assert "Transfer helps at 1 and 5 labels per class (+0.12, +0.03 over scratch for partial)" in page
    assert "no-difference with all labels" in page  # the words of summary.json
    assert page.startswith("<!DOCTYPE html>") and "<title>digits from mnist5k</title>" in page


def test_every_hurts_cell_is_a_highlighted_warning(page):
    warning = re.search(r'<p class="warning">(.*?)</p>', page)
    assert warning and "Negative transfer: linear-probe hurts with all labels (\u22120.04)" in warning.group(1)
    assert '<span class="verdict hurts">hurts</span>' in page and '<span class="verdict helps">helps</span>' in page


def test_every_strategy_every_section_and_the_config_are_in_the_page(page):
    for name in ("scratch", "partial", "linear-probe"):
        assert name in page
    for section in ("verdict", "figures", "cells", "recommendation", "runs", "how-to-read", "config", "versions"):
        assert f'<section id="{section}">' in page
    assert "1.2 GFLOP" in page and "421.6k" in page and "never reached" in page and "3.1×" in page
    assert "bootstrap over test examples" in page and "&quot;lr&quot;: 0.01" in page and "2.13.0" in page


def test_figures_are_embedded_pngs_and_nothing_is_fetched(page):
    pngs = embedded_pngs(page)
    assert len(pngs) >= 3
    assert all(p.startswith(PNG_MAGIC) for p in pngs)
    assert "http://" not in page and "https://" not in page
    assert all(b"http" not in p for p in pngs)  # matplotlib's Software tag carries a URL; it is dropped
    assert "<script" not in page and "<link" not in page and "url(" not in page


def test_user_strings_are_escaped():
    inputs = make_inputs()
    for item in [*inputs["summary"]["cells"], *inputs["runs"]]:
        if item["strategy"] == "partial":
            item["strategy"] = "<script>"
    inputs["summary"]["recommendation"]["1"]["best"] = "<script>"
    inputs["config"]["data"] = "<b>digits & co</b>"
    page = render(inputs, title="a <i>title</i> with $math$")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;digits &amp; co&lt;/b&gt;" in page
    assert "<title>a &lt;i&gt;title&lt;/i&gt; with $math$</title>" in page
    assert len(embedded_pngs(page)) >= 3


def test_single_seed_without_ci_renders():
    page = render(make_inputs(n_seeds=1))
    assert len(embedded_pngs(page)) >= 3
    assert "0.420 [" not in page and "0.420" in page  # a mean without a CI


def test_single_shots_value_renders():
    inputs = make_inputs()
    inputs["summary"]["cells"] = [c for c in inputs["summary"]["cells"] if c["shots"] == 5]
    inputs["runs"] = [r for r in inputs["runs"] if r["shots"] == 5]
    page = render(inputs)
    assert "Transfer helps at 5 labels per class (+0.03 over scratch for partial)" in page
    assert "Negative transfer" not in page
    assert len(embedded_pngs(page)) == 3


def test_only_scratch_renders_without_a_speedup_figure():
    inputs = make_inputs()
    inputs["summary"]["cells"] = [c for c in inputs["summary"]["cells"] if c["strategy"] == "scratch"]
    inputs["runs"] = [r for r in inputs["runs"] if r["strategy"] == "scratch"]
    inputs["summary"]["recommendation"] = {}
    page = render(inputs)
    assert "Only the scratch baseline was run" in page and "no speed-up to show" in page
    assert len(embedded_pngs(page)) == 2


def test_every_strategy_hurting_and_all_speedups_missing_render():
    inputs = make_inputs()
    for c in inputs["summary"]["cells"]:
        if c["verdict"] != "baseline":
            c.update(verdict="hurts", delta_vs_scratch=-0.05, time_to_scratch_accuracy_speedup=None)
    page = render(inputs)
    assert "Every strategy hurts at 1 and 5 labels per class and with all labels." in page
    assert page.count("never reached") >= 6


def test_a_cell_without_shots_is_rejected_with_the_fix():
    inputs = make_inputs()
    del inputs["summary"]["cells"][2]["shots"]
    with pytest.raises(ValueError, match=r"summary\['cells'\]\[2\] is missing \['shots'\]"):
        render(inputs)
    with pytest.raises(ValueError, match="must be a dict with a 'cells' list"):
        render_report({"rows": []}, [], config={}, versions={})


def test_write_report_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    inputs = make_inputs(n_seeds=1)
    dest = tmp_path / "out" / "report.html"
    dest.parent.mkdir()
    dest.write_text("old")
    path = write_report(dest, inputs["summary"], inputs["runs"], config=inputs["config"], versions=inputs["versions"])
    assert path == dest and dest.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in dest.parent.iterdir()] == ["report.html"]


def test_write_report_keeps_the_old_file_when_rendering_fails(tmp_path):
    dest = tmp_path / "report.html"
    dest.write_text("old")
    with pytest.raises(ValueError):
        write_report(dest, {"cells": [{"strategy": "scratch"}]}, [], config={}, versions={})
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_chromium_renders_the_report_offline(tmp_path):
    inputs = copy.deepcopy(make_inputs())
    report = write_report(tmp_path / "report.html", inputs["summary"], inputs["runs"],
                          config=inputs["config"], versions=inputs["versions"])
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,2000", report.resolve().as_uri()],
        check=False, capture_output=True, timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 0
    assert shot.read_bytes().startswith(PNG_MAGIC)


def test_inconclusive_cells_use_the_json_words_and_nothing_is_recommended_in_bold():
    cells = [make_cell("scratch", 1, 0.67, 0.0, "baseline", 1.0),
             make_cell("linear-probe", 1, 0.81, 0.14, "inconclusive", 2.0) | {"seeds_needed": 7, "decided": False}]
    summary = {"cells": cells, "recommendation": {"1": {
        "best": "linear-probe", "best_mean": 0.81, "cheapest_within_ci": "linear-probe", "decided": False,
        "reason": "no recommendation: 'linear-probe' is inconclusive against scratch"}}}
    page = render_report(summary, make_runs(cells), config={}, versions={})
    assert "Inconclusive at 1 label per class: about 7 seeds would decide it." in page
    assert "inconclusive (about 7 seeds would decide)" in page
    assert "<strong>linear-probe</strong>" not in page and "none yet (inconclusive; linear-probe leads)" in page


def test_plots_clip_to_the_metric_range():
    from matplotlib.figure import Figure

    from transferlab.report.plots import _clip_to_range

    ax = Figure().add_subplot()
    ax.set_ylim(0.128 - 0.1, 1.75)  # what a two-seed t interval asked for
    _clip_to_range(ax)
    assert ax.get_ylim() == pytest.approx((0.028, 1.01))
    ax.set_ylim(-0.4, 0.9)
    _clip_to_range(ax)
    assert ax.get_ylim() == pytest.approx((-0.01, 0.9))
