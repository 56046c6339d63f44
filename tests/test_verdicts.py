"""Verdicts that decide: bounded intervals with seed and test-split noise, inconclusive vs no-difference,
seeds needed, multiple comparisons, imbalance-aware metrics and the sequential design of --seeds auto."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from transferlab.compare import intervals
from transferlab.compare.metrics import default_metric, example_weights, run_metrics, seed_mean_replicates
from transferlab.compare.statistics import mean_ci, paired_delta, summarize

RNG = np.random.default_rng(0)
LABELS = np.repeat(np.arange(4), 50)  # a balanced test split of 200 examples


def predictions(accuracy: float, seed: int, labels: np.ndarray = LABELS) -> list[int]:
    """Predicted classes that are right on about `accuracy` of the examples (wrong ones: the next class)."""
    rng = np.random.default_rng(seed)
    right = rng.random(len(labels)) < accuracy
    return np.where(right, labels, (labels + 1) % (labels.max() + 1)).tolist()


def run(strategy: str, seed: int, preds: list[int], labels: np.ndarray = LABELS, shots=5) -> dict:
    m = run_metrics(preds, labels)
    return {"strategy": strategy, "shots": shots, "seed": seed, "test_accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "balanced_accuracy": m["balanced_accuracy"], "majority_rate": m["majority_rate"],
            "test_predictions": preds, "test_labels": labels.tolist(), "train_seconds": 1.0, "train_flops": 1e6}


@pytest.mark.parametrize("seed", range(3))
def test_run_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 5, 300))
    m = run_metrics(p, y)
    assert m["accuracy"] == pytest.approx((p == y).mean())
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["majority_rate"] == pytest.approx(np.bincount(y).max() / 300)


@pytest.mark.parametrize("metric", ["accuracy", "balanced-accuracy", "macro-f1"])
def test_unit_weights_reproduce_the_seed_mean_and_resampling_varies_it(metric):
    preds = np.array([predictions(0.7, s) for s in range(4)])
    mean = np.mean([run_metrics(p, LABELS)[metric.replace("-", "_")] for p in preds])
    ones = np.ones((1, len(LABELS)), dtype=np.float32)
    assert seed_mean_replicates(metric, preds, LABELS, ones, 4)[0] == pytest.approx(mean, abs=1e-6)
    reps = seed_mean_replicates(metric, preds, LABELS, example_weights(len(LABELS), 300), 4)
    # four seeds' independent hits on 200 examples: the bootstrap SD is about sqrt(0.21 / 800) ≈ 0.016
    assert 0.01 < reps.std() < 0.025


def test_intervals_never_leave_the_metric_range():
    # the two-seed case: 0.890 [0.128, 1.652] — seeds 0.35 and 1.0 apart
    runs = [run("scratch", s, predictions(a, s)) for s, a in enumerate([0.35, 1.0])]
    runs += [run("linear-probe", s, predictions(a, 10 + s)) for s, a in enumerate([1.0, 0.35])]
    cells = summarize(runs)["cells"]
    for c in cells:
        assert 0.0 <= c["ci_low"] <= c["mean"] <= c["ci_high"] <= 1.0
    probe = cells[1]
    assert -1.0 <= probe["delta_ci_low"] and probe["delta_ci_high"] <= 1.0
    assert probe["verdict"] == "inconclusive" and probe["decided"] is False


def test_test_split_noise_widens_an_interval_that_seeds_alone_call_exact():
    same = predictions(0.8, 0)
    runs = [run("scratch", s, same) for s in range(3)]  # three seeds, identical predictions: no seed spread
    runs += [run("other", s, predictions(0.8, 1)) for s in range(3)]
    _, lo, hi = mean_ci([r["test_accuracy"] for r in runs[:3]])
    assert lo == hi  # the old interval: no spread between seeds, so no uncertainty at all
    cell = summarize(runs)["cells"][0]
    assert cell["ci_high"] - cell["ci_low"] > 0.05  # 200 test examples: about ±0.055 at 95%


def test_paired_by_test_example_a_consistent_small_gain_is_decided():
    base = [predictions(0.7, s) for s in range(5)]
    better = []
    for p in base:  # the strategy fixes the same 10 wrong examples in every seed, changes nothing else
        q = list(p)
        wrong = [i for i in range(len(q)) if q[i] != LABELS[i]][:10]
        for i in wrong:
            q[i] = int(LABELS[i])
        better.append(q)
    runs = [run("scratch", s, base[s]) for s in range(5)] + [run("fix", s, better[s]) for s in range(5)]
    cell = summarize(runs)["cells"][1]
    assert cell["delta_vs_scratch"] == pytest.approx(0.05)
    assert cell["verdict"] == "helps" and cell["delta_ci_low"] > 0


def test_no_difference_only_when_the_interval_excludes_effects_beyond_the_margin():
    preds = [predictions(0.75, s) for s in range(6)]
    runs = [run("scratch", s, preds[s]) for s in range(6)] + [run("same", s, preds[s]) for s in range(6)]
    noisy = [run("noisy", s, predictions(0.75, 100 + s)) for s in range(6)]
    cells = {c["strategy"]: c for c in summarize(runs + noisy)["cells"]}
    assert cells["same"]["verdict"] == "no-difference" and cells["same"]["decided"] is True
    assert cells["noisy"]["verdict"] == "inconclusive"  # independent predictions: ±0.05 not ruled out
    assert cells["noisy"]["seeds_needed"] is None or cells["noisy"]["seeds_needed"] > 6
    wide = summarize(runs + noisy, margin=0.2)["cells"]
    assert {c["strategy"]: c["verdict"] for c in wide}["noisy"] == "no-difference"


def test_seeds_needed_estimates_how_many_seeds_decide():
    est = intervals.Estimate(value=0.05, n=3, seed_s2=0.003, test_var=0.0)
    needed = est.seeds_needed(0.95, 0.02)
    assert needed is not None and needed > 3
    assert intervals.Estimate(0.05, needed, 0.003, 0.0).interval(0.95, -1, 1)[0] > 0
    assert intervals.Estimate(0.05, needed - 1, 0.003, 0.0).interval(0.95, -1, 1)[0] <= 0
    # the test split alone is too noisy: no number of seeds decides it
    assert intervals.Estimate(0.01, 3, 0.001, 0.01).seeds_needed(0.95, 0.02) is None


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, None, 0.005]
    holm = intervals.adjust(p, "holm")  # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then running max
    assert holm == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06), None, pytest.approx(0.02)]
    bh = intervals.adjust(p, "bh")  # p·m/rank: 0.02, 0.02, 0.04, 0.04 (monotone from the top)
    assert bh == [pytest.approx(0.02), pytest.approx(0.04), pytest.approx(0.04), None, pytest.approx(0.02)]
    assert intervals.adjust(p, "none") == p
    with pytest.raises(ValueError, match="allowed: holm, bh, none"):
        intervals.adjust(p, "sidak")


def test_the_report_states_the_correction_and_it_changes_verdicts():
    base = [predictions(0.7, s) for s in range(4)]
    runs = [run("scratch", s, base[s]) for s in range(4)]
    for k in range(6):  # six strategies with a small, borderline gain
        runs += [run(f"s{k}", s, predictions(0.76, 50 * k + s)) for s in range(4)]
    none = summarize(runs, correction="none")
    holm = summarize(runs, correction="holm")
    assert holm["analysis"]["correction"] == "holm" and "Holm" in holm["analysis"]["correction_name"]
    helps = lambda out: sum(c["verdict"] == "helps" for c in out["cells"])  # noqa: E731
    assert helps(holm) <= helps(none)
    for a, b in zip(none["cells"][1:], holm["cells"][1:]):
        assert b["p_adjusted"] >= a["p_value"]


def test_imbalanced_split_defaults_to_balanced_accuracy_and_warns_below_the_majority_class():
    labels = np.array([0] * 174 + [1] * 26)  # 87% "ham"
    always_ham = [0] * 200
    noisy = [int(v) for v in np.where(np.random.default_rng(1).random(200) < 0.8, labels, 1 - labels)]
    runs = [run("scratch", s, always_ham, labels) for s in range(3)]
    runs += [run("linear-probe", s, noisy, labels) for s in range(3)]
    out = summarize(runs)
    assert out["analysis"]["metric"] == "balanced-accuracy" and "imbalanced" in out["analysis"]["metric_reason"]
    probe = out["cells"][1]
    assert probe["metric"] == "balanced-accuracy" and probe["majority_rate"] == pytest.approx(0.87)
    assert probe["accuracy_mean"] < 0.87 and probe["below_majority"] is True
    assert probe["balanced_accuracy"] > 0.7 and probe["mean"] == pytest.approx(probe["balanced_accuracy"])
    assert any("linear-probe" in w and "majority-class rate 0.870" in w for w in out["warnings"])
    assert summarize(runs, metric="accuracy")["analysis"]["metric"] == "accuracy"
    assert default_metric(LABELS)[0] == "accuracy"
    with pytest.raises(ValueError, match="allowed: accuracy, balanced-accuracy, macro-f1"):
        summarize(runs, metric="f1")


def test_looks_and_alpha_spending():
    assert intervals.looks(20) == [3, 5, 10, 20]
    assert intervals.looks(8) == [3, 5, 8]
    assert intervals.looks(3) == [3]
    from transferlab.compare.verdicts import Analysis

    assert Analysis(max_seeds=20).look_confidence == pytest.approx(1 - 0.05 / 4)


def test_sequential_stops_a_clear_cell_at_the_first_look_and_keeps_an_unclear_one_open():
    base = [predictions(0.5, s) for s in range(20)]
    runs = [run("scratch", s, base[s]) for s in range(20)]
    runs += [run("clear", s, predictions(0.9, 100 + s)) for s in range(20)]
    runs += [run("unclear", s, predictions(0.5, 200 + s)) for s in range(5)]
    cells = {c["strategy"]: c for c in summarize(runs, max_seeds=20)["cells"]}
    assert cells["clear"]["verdict"] == "helps" and cells["clear"]["n_paired_seeds"] == 3  # decided at look 1
    assert cells["clear"]["stopped"] is True
    unclear = cells["unclear"]
    assert unclear["decided"] is False and unclear["stopped"] is False and unclear["n_paired_seeds"] == 5


def test_summary_with_predictions_is_json_safe_and_keeps_the_old_keys():
    runs = [run("scratch", s, predictions(0.6, s)) for s in range(3)] + [
        run("probe", s, predictions(0.8, 9 + s)) for s in range(3)]
    out = summarize(runs)
    json.dumps(out, allow_nan=False)
    for key in ("mean", "ci_low", "ci_high", "delta_vs_scratch", "delta_ci_low", "delta_ci_high", "verdict",
                "macro_f1_mean", "decided", "seeds_needed", "metric", "majority_rate", "balanced_accuracy"):
        assert key in out["cells"][1]
    assert out["recommendation"]["5"]["decided"] is True


def test_old_runs_without_predictions_fall_back_to_seed_noise():
    runs = [{"strategy": s, "shots": 5, "seed": k, "test_accuracy": a + 0.01 * k}
            for s, a in [("scratch", 0.6), ("probe", 0.8)] for k in range(3)]
    out = summarize(runs)
    assert "seed noise only" in out["analysis"]["interval_method"]
    d, lo, hi = paired_delta([0.8, 0.81, 0.82], [0.6, 0.61, 0.62])
    assert out["cells"][1]["delta_vs_scratch"] == pytest.approx(d)
    with pytest.raises(ValueError, match="use --metric accuracy"):
        summarize(runs, metric="balanced-accuracy")


def test_an_interval_excluding_zero_only_before_the_correction_is_flagged_and_its_seeds_count_the_correction():
    # six strategies, each +0.04 over scratch with a small spread over three seeds: alone each interval
    # excludes 0 (p ≈ 0.02), but Holm over six comparisons does not decide any of them
    scratch = [0.50, 0.52, 0.48]
    runs = [{"strategy": "scratch", "shots": 5, "seed": s, "test_accuracy": a} for s, a in enumerate(scratch)]
    for k in range(6):
        runs += [{"strategy": f"s{k}", "shots": 5, "seed": s, "test_accuracy": a + d}
                 for s, (a, d) in enumerate(zip(scratch, [0.03, 0.05, 0.04]))]
    cells = [c for c in summarize(runs)["cells"] if c["strategy"] != "scratch"]
    for c in cells:
        assert c["delta_ci_low"] > 0 and c["verdict"] == "inconclusive"
        assert c["excludes_zero_uncorrected"] is True and c["comparisons_corrected_for"] == 6
        lo, _ = intervals.Estimate(0.04, c["seeds_needed"], 0.0001, 0.0).interval(1 - 0.05 / 6, -1, 1)
        assert lo > 0  # at that many seeds even the Bonferroni interval excludes 0: the verdict would be decided
    alone_runs = runs[:6]  # one strategy alone: no correction, decided
    (single,) = [c for c in summarize(alone_runs)["cells"] if c["strategy"] != "scratch"]
    assert single["verdict"] == "helps" and single["excludes_zero_uncorrected"] is False


def test_the_terminal_table_marks_such_a_verdict_and_says_why(capsys, tmp_path):
    from transferlab.cli_compare import print_summary
    from transferlab.compare.grid import ComparisonResult

    scratch = [0.50, 0.52, 0.48]
    runs = [{"strategy": "scratch", "shots": 5, "seed": s, "test_accuracy": a} for s, a in enumerate(scratch)]
    for k in range(6):
        runs += [{"strategy": f"s{k}", "shots": 5, "seed": s, "test_accuracy": a + d}
                 for s, (a, d) in enumerate(zip(scratch, [0.03, 0.05, 0.04]))]
    summary = summarize(runs)
    print_summary(ComparisonResult(tmp_path, summary, runs, ran=len(runs), skipped=0, failed=0))
    out = capsys.readouterr().out
    assert "inconclusive* (~" in out
    assert "* the interval excludes 0 on its own, but not after the correction for the grid's 6 comparisons" in out
