"""Benchmark: does `advise` pick a strategy compare finds best, and do `rank` scores order what fine-tuning finds?

1. Advice vs compare. On the demo pair (cnn pretrained on MNIST-5k → UCI digits framed 28×28) and
   MNIST-5k → USPS, for every label budget of the comparisons benchmarks/strategies.py wrote under
   bench-out/strategies/ (reused when present and made from the same pretrained weights; otherwise a
   small comparison is run here), `advise` is asked for a strategy; it *matches* when the advised
   strategy's mean test accuracy lies within the 95% CI of the best strategy's (compare's own
   "within its CI" pool). An advised strategy the comparison lacks (e.g. `partial --freeze 1`) is run
   here with the same seeds (so the same labelled examples) and placed against the same CI.
   A third pair the advice rule was not written with in view — MNIST-5k digits 0-4 → digits 5-9 —
   is a held-out check.
2. Model ranking vs fine-tuning. Six backbones pretrained on MNIST-5k (cnn and mlp variants) are
   ranked by `rank` on each target at 10 labels per class, and each is fine-tuned by a small
   comparison (linear-probe, full, lp-ft; 3 seeds): Kendall τ of every score against the best mean
   test accuracy, and how much less time scoring took than the comparison's training.
3. Layer ranking vs freeze depth: τ of each block's scores against the accuracy of cutting there
   (partial --freeze 1, 2 and linear-probe).

    python benchmarks/advise.py [--seeds 3] [--out bench-out/advise] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USPS = ROOT.parent / "shared" / "data" / "usps" / "usps.npz"
STRATEGIES_OUT = ROOT / "bench-out" / "strategies"
FRAME = {"image_size": 28, "image_margin": 4}
PAIRS = {  # name: (target data, task options, folder of benchmarks/strategies.py)
    "digits": ("digits", FRAME, "digits"),
    "usps": (str(USPS), FRAME, "usps"),
}
HELD_OUT = ("mnist5k", {"classes": "5-9"})
MODELS = {  # name: (backbone, backbone config, pretraining epochs, source classes)
    "cnn-5ep": ("cnn", {}, 5, None),
    "cnn-1ep": ("cnn", {}, 1, None),
    "cnn-small-3ep": ("cnn", {"channels": [8, 16], "hidden": 64}, 3, None),
    "cnn-0to4-5ep": ("cnn", {}, 5, "0-4"),
    "mlp-5ep": ("mlp", {"hidden": [128]}, 5, None),
    "mlp-tanh-3ep": ("mlp", {"hidden": [256, 128], "activation": "tanh"}, 3, None),
}
RANK_SHOTS = 10
CONSTANT_ADVICE = ("lp-ft", "full", "linear-probe")  # baselines: the same advice every time


def _pretrain(out: Path, name: str) -> Path:
    from transferlab.api import pretrain
    from transferlab.artifacts.model_folder import CONFIG
    from transferlab.engine import TrainConfig

    backbone, config, epochs, classes = MODELS[name]
    folder = out / "models" / name
    if not (folder / CONFIG).is_file():
        pretrain("mnist5k", classes=classes, backbone=backbone, backbone_config=config, out=folder,
                 train=TrainConfig(epochs=epochs))
    return folder


def _compare(pretrained: Path, data: str, task: dict[str, Any], strategies: list, shots: list, seeds: int, out: Path,
             train: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    from transferlab.compare import CompareConfig, run_comparison

    config = CompareConfig(pretrained=str(pretrained), data=data, strategies=strategies, shots=shots, seeds=seeds,
                           train=dict(train or {}), **task)
    return run_comparison(config, out).runs  # an existing folder with this config resumes: finished runs are kept


def _cells(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(shots, label): cell} with strategy name and options taken from the runs."""
    from transferlab.compare.statistics import summarize

    meta = {r["strategy"]: (r.get("strategy_name"), r.get("options") or {}) for r in runs}
    cells = {}
    for c in summarize(runs)["cells"]:
        name, options = meta[c["strategy"]]
        cells[(str(c["shots"]), c["strategy"])] = c | {"name": name, "options": options}
    return cells


def _stored_comparison(pair: str, seeds: int, out: Path) -> tuple[Path, list[dict[str, Any]], dict[str, Any], str]:
    """(pretrained, runs, train settings, where from): benchmarks/strategies.py's, or a small one run here."""
    from transferlab.api import load
    from transferlab.compare import StrategySpec
    from transferlab.compare.run_store import RunStore

    data, task, folder = PAIRS[pair]
    store, pretrained = STRATEGIES_OUT / folder / "runs.sqlite", STRATEGIES_OUT / "pretrained"
    if store.is_file() and (pretrained / "config.json").is_file():
        with RunStore(store) as s:
            config, runs = s.get_meta("config") or {}, s.runs()
        if config.get("pretrained_sha256") == load(pretrained).config["weights"]["sha256"] and runs:
            return pretrained, runs, dict(config.get("train") or {}), f"reused {store.relative_to(ROOT)}"
    pretrained = _pretrain(out, "cnn-5ep")
    strategies = ["linear-probe", StrategySpec("partial", {"freeze": 1}, "partial-1"),
                  StrategySpec("partial", {"freeze": 2}, "partial-2"), "full", "lp-ft", "l2-sp"]
    runs = _compare(pretrained, data, task, strategies, [1, 5, 10, 50], seeds, out / "compare" / pair)
    return pretrained, runs, {}, "run here (no reusable bench-out/strategies store)"


def _advice_rows(pair: str, pretrained: Path, data: str, task: dict[str, Any], runs: list[dict[str, Any]],
                 train: dict[str, Any], seeds: int, out: Path) -> list[dict[str, Any]]:
    from transferlab.analysis import advise
    from transferlab.compare import StrategySpec

    cells = _cells(runs)
    rows = []
    for shots in sorted({s for s, _ in cells}, key=lambda s: (s == "all", int(s) if s != "all" else 0)):
        advice = advise(pretrained, data, shots=None if shots == "all" else int(shots), **task)
        here = [c for (s, _), c in cells.items() if s == shots]
        best = max(here, key=lambda c: c["mean"])
        found = [c for c in here if c["name"] == advice.strategy and c["options"] == advice.options]
        source = "comparison"
        if found:
            mean = found[0]["mean"]
        else:  # the same seeds draw the same labelled examples: comparable to the stored cells
            folder = out / "extra" / f"{pair}-{advice.label.replace(' ', '')}-{shots}".replace("/", "_")
            extra = _compare(pretrained, data, task, [StrategySpec(advice.strategy, advice.options, advice.label)],
                             [shots if shots == "all" else int(shots)], seeds, folder, train)
            mean = [c for c in _cells(extra).values() if c["strategy"] == advice.label][0]["mean"]
            source = "run here"
        lo, hi = best["ci_low"], best["ci_high"]

        def within(m: float) -> bool:
            return m == best["mean"] if lo is None else lo <= m <= hi

        # the same check for advice that never changes: always one strategy, whatever the data
        constant = {name: within(c["mean"]) for name in CONSTANT_ADVICE
                    for c in here if c["name"] == name and not c["options"]}
        seconds = {c["name"]: c["train_seconds_mean"] for c in here if not c["options"]}
        rows.append({"pair": pair, "shots": shots, "advice": advice.label, "advice_mean": mean, "source": source,
                     "best": best["strategy"], "best_mean": best["mean"], "best_ci": [lo, hi], "match": within(mean),
                     "exact": advice.label == best["strategy"] or (found and found[0]["strategy"] == best["strategy"]),
                     "constant_match": constant, "advice_train_seconds": seconds.get(advice.strategy) if not advice.options
                     else None, "lp_ft_train_seconds": seconds.get("lp-ft"),
                     "gap": advice.domain_gap, "gap_level": advice.gap_level, "best_block": advice.best_block,
                     "advise_seconds": advice.seconds})
    return rows


def _rank_vs_finetune(models: dict[str, Path], data: str, task: dict[str, Any], seeds: int,
                      out: Path) -> dict[str, Any]:
    from transferlab.analysis import rank

    folders = []
    for name, folder in models.items():
        target = out / "rank-compare" / f"{Path(data).stem}-{name}"
        _compare(folder, data, task, ["linear-probe", "full", "lp-ft"], [RANK_SHOTS], seeds, target)
        folders.append(target)
    start = time.perf_counter()
    result = rank(list(models.values()), data, shots=RANK_SHOTS, compare=folders, **task)
    seconds = time.perf_counter() - start
    # the scores describe frozen features: also read them against the linear probe's accuracy
    from transferlab.analysis.validation import kendall
    from transferlab.compare.run_store import RunStore

    probe = {}
    for name, folder in zip(models, folders):
        with RunStore(folder / "runs.sqlite") as store:
            accs = [r["test_accuracy"] for r in store.runs() if r["strategy"] == "linear-probe"]
        probe[str(models[name])] = sum(accs) / len(accs)
    scored = [m for m in result.models if m.model in probe]
    vs_probe = {score: kendall([getattr(m, score) for m in scored], [probe[m.model] for m in scored]).to_json()
                for score in ("logme", "leep", "hscore", "probe_accuracy")}
    return {"seconds": seconds, **result.to_json(), "linear_probe_accuracy": probe, "tau_vs_linear_probe": vs_probe}


def _layers_vs_freeze(pretrained: Path, data: str, task: dict[str, Any], seeds: int, out: Path) -> dict[str, Any]:
    from transferlab.analysis import rank
    from transferlab.compare import StrategySpec

    strategies = [StrategySpec("partial", {"freeze": 1}, "partial-1"), StrategySpec("partial", {"freeze": 2}, "partial-2"),
                  "linear-probe"]
    folder = out / "layer-compare" / Path(data).stem
    _compare(pretrained, data, task, strategies, [RANK_SHOTS], seeds, folder)
    return rank([pretrained], data, shots=RANK_SHOTS, layers=True, compare=[folder], **task).to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "advise"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from transferlab.analysis import rank
    from transferlab.compare import StrategySpec

    out = Path(args.out)
    start = time.perf_counter()
    report: dict[str, Any] = {"advice": [], "rank": {}, "layers": {}, "sources": {}}
    for pair in PAIRS:
        data, task, _ = PAIRS[pair]
        if pair == "usps" and not USPS.is_file():
            print(f"skipped usps: {USPS} not found")
            continue
        pretrained, runs, train, where = _stored_comparison(pair, args.seeds, out)
        report["sources"][pair] = where
        report["advice"] += _advice_rows(pair, pretrained, data, task, runs, train, args.seeds, out)
    # held out: a cnn pretrained on digits 0-4 of MNIST-5k, transferred to its digits 5-9
    held = _pretrain(out, "cnn-0to4-5ep")
    data, task = HELD_OUT
    strategies = ["linear-probe", StrategySpec("partial", {"freeze": 1}, "partial-1"),
                  StrategySpec("partial", {"freeze": 2}, "partial-2"), "full", "lp-ft", "l2-sp"]
    runs = _compare(held, data, task, strategies, [1, 5, 10, 50], args.seeds, out / "compare" / "mnist-0to4-5to9")
    report["sources"]["mnist 0-4 → 5-9 (held out)"] = "run here"
    report["advice"] += _advice_rows("mnist 0-4 → 5-9 (held out)", held, data, task, runs, {}, args.seeds, out)

    models = {name: _pretrain(out, name) for name in MODELS if MODELS[name][3] is None}
    for pair in PAIRS:
        data, task, _ = PAIRS[pair]
        if pair == "usps" and not USPS.is_file():
            continue
        report["rank"][pair] = _rank_vs_finetune(models, data, task, args.seeds, out)
        report["layers"][pair] = _layers_vs_freeze(models["cnn-5ep"], data, task, args.seeds, out)
    report["layers"]["mnist 0-4 → 5-9 (held out)"] = rank([held], data="mnist5k", shots=RANK_SHOTS, layers=True,
                                                          compare=[out / "compare" / "mnist-0to4-5to9"],
                                                          classes="5-9").to_json()
    report["seconds"] = time.perf_counter() - start
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, default=str))
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    def f(x: Any, digits: int = 3) -> str:
        return "—" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)

    print("\n### advise vs compare: does the advice fall within the best strategy's 95% CI?\n")
    print("| pair | labels/class | gap (level) | advice | its mean | best (mean [95% CI]) | match |")
    print("|---|---:|---|---|---:|---|:---:|")
    for r in report["advice"]:
        lo, hi = r["best_ci"]
        print(f"| {r['pair']} | {r['shots']} | {f(r['gap'], 2)} ({r['gap_level']}) | {r['advice']}"
              f"{' (run here)' if r['source'] == 'run here' else ''} | {f(r['advice_mean'])} | {r['best']} "
              f"({f(r['best_mean'])} [{f(lo)}, {f(hi)}]) | {'yes' if r['match'] else 'no'} |")
    for pair in dict.fromkeys(r["pair"] for r in report["advice"]):
        rows = [r for r in report["advice"] if r["pair"] == pair]
        print(f"- {pair}: {sum(r['match'] for r in rows)}/{len(rows)} match")
    named = [r for r in report["advice"] if "held out" not in r["pair"]]
    rows = report["advice"]
    print(f"- demo pair + USPS: {sum(r['match'] for r in named)}/{len(named)}; all pairs: "
          f"{sum(r['match'] for r in rows)}/{len(rows)} within the CI, {sum(bool(r['exact']) for r in rows)}/{len(rows)} "
          f"exactly the best; sources: {report['sources']}")
    for name in CONSTANT_ADVICE:
        got = [r["constant_match"][name] for r in rows if name in r["constant_match"]]
        print(f"- baseline 'always {name}': {sum(got)}/{len(got)} within the CI")
    cheaper = [(r["advice_train_seconds"], r["lp_ft_train_seconds"]) for r in rows
               if r["advice_train_seconds"] is not None and r["lp_ft_train_seconds"] and r["advice"] != "lp-ft"]
    if cheaper:
        print(f"- where the advice is not lp-ft ({len(cheaper)} budgets), it trains in "
              + ", ".join(f"{a:.2f}s vs {b:.2f}s" for a, b in cheaper) + " (lp-ft)")
    for pair, r in report["rank"].items():
        print(f"\n### rank vs fine-tuning on {pair} ({RANK_SHOTS} labels/class, {len(r['models'])} models)\n")
        acc = {a["model"]: a for a in r["validation"]["accuracies"]}
        print("| model | LogME | LEEP | H-score | probe acc. | score s | best fine-tuned acc. (strategy) | compare train s |")
        print("|---|---:|---:|---:|---:|---:|---|---:|")
        for m in r["models"]:
            a = acc.get(m["model"], {})
            print(f"| {Path(m['model']).name} | {f(m['logme'])} | {f(m['leep'])} | {f(m['hscore'], 2)} | "
                  f"{f(m['probe_accuracy'])} | {f(m['seconds'], 2)} | {f(a.get('accuracy'))} ({a.get('strategy')}) | "
                  f"{f(a.get('finetune_seconds'), 1)} |")
        taus = r["validation"]["kendall_tau"]
        print("- Kendall τ vs best fine-tuned accuracy: " + ", ".join(
            f"{k} {f(v['tau'], 2)} (p={f(v['p_value'], 2)}, n={v['n']})" for k, v in taus.items()))
        print("- Kendall τ vs linear-probe accuracy (frozen features): " + ", ".join(
            f"{k} {f(v['tau'], 2)} (p={f(v['p_value'], 2)}, n={v['n']})" for k, v in r["tau_vs_linear_probe"].items()))
        ratios = [a["speedup"] for a in r["validation"]["accuracies"] if a.get("speedup")]
        if ratios:
            print(f"- scoring took {min(ratios):.0f}–{max(ratios):.0f}× less time than the comparison's training")
    for pair, r in report["layers"].items():
        taus = r["validation"]["kendall_tau"]
        cuts = ", ".join(f"{a['block']} {a['accuracy']:.3f}" for a in r["validation"]["accuracies"])
        logmes = ", ".join(f"{l['block']} {l['logme']:.3f}" for l in r["layers"])
        print(f"\n- layers on {pair}: LogME {logmes}; accuracy when cut there: {cuts}; suggestion {r['suggestion']}; "
              f"τ LogME {f(taus['logme']['tau'], 2)}, probe {f(taus['probe_accuracy']['tau'], 2)} (n={taus['logme']['n']})")
    print(f"\ntotal {report['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
