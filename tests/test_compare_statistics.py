"""Comparison statistics: CIs, paired deltas, verdicts, speed-ups, labels saved, the summary table."""

from __future__ import annotations

import json
import math

import pytest

from transferlab.compare.statistics import (
    CELL_KEYS,
    labels_saved,
    mean_ci,
    paired_delta,
    scratch_accuracy_speedup,
    summarize,
    time_to_accuracy,
    time_to_scratch_accuracy_speedup,
    to_jsonable,
    verdict,
)

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975, 2 degrees of freedom (tables)
T_975_DF3 = 3.182446305284263  # ... 3 degrees of freedom


def test_mean_ci_three_seeds():
    mean, lo, hi = mean_ci([0.7, 0.8, 0.9])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # sd of 0.7, 0.8, 0.9 is exactly 0.1
    assert mean == pytest.approx(0.8)
    assert lo == pytest.approx(0.8 - half)
    assert hi == pytest.approx(0.8 + half)


def test_mean_ci_edge_cases():
    mean, lo, hi = mean_ci([0.42])
    assert mean == 0.42 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([0.3, 0.3, 0.3]) == (0.3, 0.3, 0.3)
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([0.1, 0.2], confidence=95)


def test_paired_delta_by_hand():
    # differences 0.1, 0.2, 0.3, 0.2: mean 0.2, sd sqrt(0.02/3)
    d, lo, hi = paired_delta([0.6, 0.8, 0.9, 0.7], [0.5, 0.6, 0.6, 0.5])
    half = T_975_DF3 * math.sqrt(0.02 / 3) / 2
    assert d == pytest.approx(0.2)
    assert (lo, hi) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))


def test_paired_delta_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="3 strategy values and 2 scratch values"):
        paired_delta([0.1, 0.2, 0.3], [0.1, 0.2])


def test_verdict_cases():
    assert verdict(0.01, 0.2) == "helps"
    assert verdict(-0.2, -0.01) == "hurts"
    assert verdict(-0.1, 0.1) == "inconclusive"  # effects up to ±0.1 are not ruled out
    assert verdict(-0.01, 0.015) == "no-difference"  # within the default ±0.02 margin
    assert verdict(-0.01, 0.015, margin=0.01) == "inconclusive"
    assert verdict(math.nan, math.nan) == "inconclusive"
    assert verdict(None, None) == "inconclusive"


def _history(points):
    return [{"epoch": i + 1, "val_accuracy": a, "elapsed_seconds": t} for i, (t, a) in enumerate(points)]


def test_time_to_accuracy():
    h = _history([(1.0, 0.5), (2.0, 0.7), (3.0, 0.9), (4.0, 0.95)])
    assert time_to_accuracy(h, 0.7) == 2.0
    assert time_to_accuracy(h, 0.8) == 3.0
    assert time_to_accuracy(h, 0.99) is None
    assert time_to_accuracy([], 0.1) is None


def _run(strategy, seed, history, shots=5):
    return {"strategy": strategy, "shots": shots, "seed": seed, "val_accuracy": max(a for _, a in history),
            "test_accuracy": 0.5, "history": _history(history)}


def test_speedup_single_seed():
    scratch = [_run("scratch", 0, [(5.0, 0.6), (10.0, 0.9)])]
    strat = [_run("linear_probe", 0, [(2.0, 0.92)])]
    assert time_to_scratch_accuracy_speedup(strat, scratch) == pytest.approx(5.0)


def test_speedup_geometric_mean_and_reach_fraction():
    scratch = [_run("scratch", s, [(4.0, 0.5), (12.0, 0.9)]) for s in range(3)]
    strat = [
        _run("ft", 0, [(3.0, 0.9)]),  # 12 / 3 = 4x
        _run("ft", 1, [(1.0, 0.7), (4 / 3, 0.95)]),  # 12 / (4/3) = 9x
        _run("ft", 2, [(1.0, 0.6)]),  # never reaches 0.9
    ]
    result = scratch_accuracy_speedup(strat, scratch)
    assert result.speedup == pytest.approx(6.0)  # sqrt(4 * 9)
    assert result.reach_fraction == pytest.approx(2 / 3)
    assert result.n_seeds == 3


def test_speedup_never_reached_is_none():
    scratch = [_run("scratch", 0, [(4.0, 0.9)])]
    strat = [_run("ft", 0, [(1.0, 0.5)])]
    result = scratch_accuracy_speedup(strat, scratch)
    assert result.speedup is None and result.reach_fraction == 0.0


def test_labels_saved_interpolates_in_log_shots():
    curve = {1: 0.5, 5: 0.8, 10: 0.9, "all": 0.99}
    assert labels_saved(curve, 0.85) == pytest.approx(5 * 2**0.5)  # halfway 5..10 in log space ~ 7.07
    assert labels_saved(curve, 0.8) == pytest.approx(5.0)
    assert labels_saved(curve, 0.4) == 1.0  # scratch already there at the smallest budget
    assert labels_saved(curve, 0.95) is None  # "all" is not on the per-class curve
    # a dip is flattened by the running max: 10 shots counts as 0.8, so 0.85 lies between 10 and 20
    assert labels_saved({5: 0.8, 10: 0.7, 20: 0.9}, 0.85) == pytest.approx(10 * 2**0.5)


# --- summarize on a constructed grid ---------------------------------------------------------------

SCRATCH_ACC = {1: 0.50, 5: 0.70, 10: 0.80, "all": 0.85}
NOISE = [0.0, 0.01, -0.01, 0.02]  # per-seed offsets shared by all strategies (paired by seed)


def _grid_run(strategy, shots, seed, acc, flops, seconds):
    return {
        "strategy": strategy, "shots": shots, "seed": seed, "test_accuracy": acc, "macro_f1": acc - 0.05,
        "val_accuracy": acc, "train_seconds": seconds, "trainable_params": 100, "total_params": 1000,
        "train_flops": flops, "history": _history([(seconds / 2, acc - 0.2), (seconds, acc)]),
    }


def _grid():
    runs = []
    for shots in [5, "all", 1, 10]:  # deliberately out of order
        for seed, noise in enumerate(NOISE):
            base = SCRATCH_ACC[shots] + noise
            runs.append(_grid_run("good", shots, seed, base + 0.10, 1e6, 2.0))
            runs.append(_grid_run("scratch", shots, seed, base, 1e9, 10.0))
            runs.append(_grid_run("bad", shots, seed, base - 0.10, 1e9, 10.0))
            # not paired with the seed noise, so its differences swing both ways
            swing = [0.05, -0.05, 0.04, -0.04][seed]
            runs.append(_grid_run("noisy", shots, seed, SCRATCH_ACC[shots] + swing, 1e9, 10.0))
            runs.append(_grid_run("cheap", shots, seed, base + 0.095, 1e3, 1.0))
    return runs


def test_summarize_keys_and_order():
    out = summarize(_grid())
    cells = out["cells"]
    for cell in cells:
        assert set(CELL_KEYS) <= set(cell)
        assert {"macro_f1_mean", "macro_f1_ci_low", "macro_f1_ci_high", "trainable_params", "total_params",
                "train_flops_mean", "reach_fraction", "scratch_labels_needed", "labels_saved_per_class"} <= set(cell)
    order = [(c["shots"], c["strategy"]) for c in cells]
    strategies = ["scratch", "good", "bad", "noisy", "cheap"]
    assert order == [(s, n) for s in [1, 5, 10, "all"] for n in strategies]
    assert list(out["recommendation"]) == ["1", "5", "10", "all"]


def test_summarize_verdicts_and_numbers():
    cells = {(c["strategy"], c["shots"]): c for c in summarize(_grid())["cells"]}
    scratch = cells[("scratch", 5)]
    assert scratch["verdict"] == "baseline" and scratch["delta_vs_scratch"] == 0.0
    assert scratch["delta_ci_low"] is None and scratch["time_to_scratch_accuracy_speedup"] == 1.0
    assert scratch["mean"] == pytest.approx(0.70 + sum(NOISE) / 4)
    assert cells[("good", 5)]["verdict"] == "helps"
    assert cells[("good", 5)]["delta_vs_scratch"] == pytest.approx(0.10)
    assert cells[("bad", 5)]["verdict"] == "hurts"
    # ±0.05 swings over 4 seeds rule out neither a gain nor a loss of several points: not decided
    assert cells[("noisy", 5)]["verdict"] == "inconclusive" and cells[("noisy", 5)]["decided"] is False
    assert cells[("noisy", 5)]["seeds_needed"] > 4
    assert cells[("good", 5)]["decided"] is True and cells[("good", 5)]["seeds_needed"] is None
    assert cells[("good", 5)]["n_seeds"] == 4
    assert cells[("good", 5)]["train_flops_mean"] == 1e6
    # scratch reaches its best at 10 s; good passes it only at its last epoch, 2 s: 10 / 2
    assert cells[("good", 5)]["time_to_scratch_accuracy_speedup"] == pytest.approx(5.0)
    assert cells[("good", 5)]["reach_fraction"] == 1.0
    assert cells[("bad", 5)]["time_to_scratch_accuracy_speedup"] is None
    assert cells[("bad", 5)]["reach_fraction"] == 0.0
    # good at 1 shot: mean 0.5 + 0.1 + 0.005 = 0.605, between scratch's 1 shot (0.505) and 5 shots (0.705)
    needed = cells[("good", 1)]["scratch_labels_needed"]
    assert needed == pytest.approx(math.exp(0.5 * math.log(5)))  # halfway in accuracy, so halfway in log(shots)
    assert cells[("good", 1)]["labels_saved_per_class"] == pytest.approx(needed - 1)
    assert cells[("good", 10)]["scratch_labels_needed"] is None  # beyond scratch's measured curve
    assert cells[("good", "all")]["labels_saved_per_class"] is None


def test_summarize_recommends_cheapest_within_ci():
    rec = summarize(_grid())["recommendation"]["5"]
    assert rec["best"] == "good"
    assert rec["best_mean"] == pytest.approx(0.805)
    assert rec["cheapest_within_ci"] == "cheap"  # 0.5 points below, inside good's CI, 1000x fewer FLOPs
    assert "cheap" in rec["reason"]


def test_summarize_single_seed_is_json_safe_without_nan():
    runs = [_grid_run("scratch", 5, 0, 0.6, 1e9, 10.0), _grid_run("good", 5, 0, 0.7, 1e6, 2.0),
            _grid_run("cheap", 5, 0, 0.69, 1e3, 1.0)]
    out = summarize(runs)
    json.dumps(out, allow_nan=False)
    good = out["cells"][1]
    assert good["ci_low"] is None and good["delta_ci_low"] is None and good["verdict"] == "inconclusive"
    assert out["recommendation"]["5"]["cheapest_within_ci"] == "good"  # no CI: only the best qualifies


def test_summarize_full_grid_is_json_safe():
    json.dumps(summarize(_grid()), allow_nan=False)
    assert to_jsonable({"a": (float("nan"), 1)}) == {"a": [None, 1]}


def test_summarize_pairs_only_shared_seeds():
    runs = [_grid_run("scratch", 5, s, 0.6 + 0.01 * s, 1, 1) for s in range(3)]
    runs += [_grid_run("good", 5, s, 0.7 + 0.01 * s, 1, 1) for s in (1, 2, 7)]
    good = summarize(runs)["cells"][1]
    assert good["n_seeds"] == 3 and good["n_paired_seeds"] == 2
    assert good["delta_vs_scratch"] == pytest.approx(0.1)


def test_summarize_requires_baseline_runs():
    runs = [_grid_run("good", 5, 0, 0.7, 1, 1)]
    with pytest.raises(ValueError, match="scratch runs are required"):
        summarize(runs)


def test_summarize_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        summarize([])
    with pytest.raises(ValueError, match="shots=-1"):  # 0 is a budget (domain adaptation); negative ones are not
        summarize([_grid_run("scratch", -1, 0, 0.5, 1, 1)])
    with pytest.raises(ValueError, match="lacks"):
        summarize([{"strategy": "scratch", "shots": 5, "seed": 0}])
    with pytest.raises(ValueError, match="share seed 0"):
        summarize([_grid_run("scratch", 5, 0, 0.5, 1, 1), _grid_run("scratch", 5, 0, 0.6, 1, 1)])
