"""Benchmark: ImageNet EfficientNet-Lite0 vs the MNIST-5k cnn vs scratch on Fashion-MNIST, on a CPU.

Parts (`--parts`, comma-separated; each prints a markdown table):
- `sizes`: the accuracy/time trade-off of the input resolution: frozen-feature extraction images/s and a
  linear probe at 10 labels/class (cached features) at `--sizes` (default 64, 96, 128).
- `grid`: `compare` on Fashion-MNIST at `--image-size` (default 64): efficientnet-lite0 with linear-probe,
  partial-7 (stem…stage6 frozen and cached; stage7 and the head conv train) and scratch (the same network
  from random weights, a fixed `--uncached-epochs` budget).
- `cnn`: `compare` from a `cnn` pretrained on MNIST-5k (linear-probe, partial, full, lp-ft, scratch).
- `summary`: both grids again (finished runs are read back, not rerun) and the issue's goals at 10 labels/class.
- `large`: 1,000 labels/class, linear-probe, linear-probe-multi and partial-7 from efficientnet-lite0.
- `probes`: the same cached strategies at `--probe-shots` (10) labels/class, `--seeds` seeds, on `--test-per-class`
  test images per class (1000: Fashion-MNIST's whole test split), with a 95% CI over the seeds.
- linear-probe-multi: linear-probe with `--feature-blocks` (`--probe-blocks`, default stage4…conv_head), its head
  fitted full-batch (`--probe-batch-size`) with Adam's L2 weight decay: `--probe-weight-decay` 1.0 at ≤ 100 training
  images, `--large-probe-weight-decay` 0.01 at 10,000 (chosen on held-out training images, docs/vision.md).
- linear-probe-grid: linear-probe with `--feature-blocks` (`--grid-blocks`, default stage5,stage6) and `--feature-grid`
  (`--grid-size`, default 4: each block's map pooled to a 4×4 grid of averages), full batch, `--grid-weight-decay` 3.0
  at ≤ 100 training images, `--large-grid-weight-decay` 0.1 at 10,000 (held-out training images, docs/vision.md).
- add-layers-grid: the same grid features (frozen backbone, cached) feeding a hidden layer (`--mlp-hidden`, ReLU,
  `--mlp-dropout`) instead of a linear head: add-layers --freeze-backbone --feature-blocks --feature-grid (`--mlp-*`).
- partial-6: partial --freeze 6 (stem…stage5 frozen and cached; stage6, stage7, conv_head and the head train), Adam with
  `--partial6-backbone-lr` / `--partial6-lr`, cosine schedule, batch 32, `--partial6-epochs`, last weights.
- `speed`: images/s of frozen feature extraction (transferlab's cache vs a plain eager loop) and of a
  fine-tuning step (transferlab's `fit` vs a plain eager loop with torch's default Adam), same model and
  batch, same process, alternating; steps are timed in steady state (from the end of the first step to the
  end of the last: fit's setup and the first step's one-off allocations and imports are not per-step
  costs); and onnxruntime on the exported model.

CPU budget: Fashion-MNIST's own splits are 60,000 / 10,000 images; on a 2-core machine a forward pass of
EfficientNet-Lite0 runs at roughly 50–100 images/s at 64 px, so the benchmark draws a stratified subset of
each split (first N per class; `--pool-per-class`, `--test-per-class`) and writes it as .npz in `--out`.
The data stay at 28×28 in memory; the network crops and resizes every batch itself.

    python benchmarks/vision_transfer.py [--parts sizes,grid,large,speed] [--image-size 64] [--seeds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FMNIST = ROOT.parent / "shared" / "data" / "fashion_mnist"
STRATEGIES = {"linear-probe": ("linear-probe", {}), "partial-7": ("partial", {"freeze": 7})}
# linear-probe on pooled outputs of several stages (`--feature-blocks`), its head fitted full-batch with an L2 penalty
# (Adam's weight decay): label -> the blocks; the training options come from --probe-* (docs/vision.md: chosen on a
# validation split of Fashion-MNIST's training images, never on the test split)
MULTI = "linear-probe-multi"
# linear-probe-multi with each block's map pooled to a grid of averages (`--feature-grid`, `--grid-blocks`, `--grid-size`),
# its penalty `--grid-weight-decay` / `--large-grid-weight-decay` (chosen on held-out training images, docs/vision.md)
GRID = "linear-probe-grid"
# the grid features with a hidden layer instead of a linear head: add-layers --freeze-backbone --feature-blocks/--feature-grid
# (`--mlp-*` flags; chosen on held-out training images, docs/vision.md)
MLP = "add-layers-grid"
# partial fine-tuning with stem…stage5 frozen and cached: stage6, stage7, conv_head and the head train (`--partial6-*`)
PARTIAL6 = "partial-6"


def strategies_of(args, labels: list[str]) -> dict:
    """{label: (strategy, options, train overrides)} for `labels` (partial-7, linear-probe, linear-probe-multi,
    linear-probe-grid)."""
    table = {label: (name, options, {}) for label, (name, options) in STRATEGIES.items()}
    table[MULTI] = ("linear-probe", {"feature_blocks": args.probe_blocks.split(",")},
                    {"weight_decay": args.large_probe_weight_decay, "lr": args.large_probe_lr,
                     "batch_size": args.probe_batch_size, "epochs": args.probe_epochs})
    table[GRID] = ("linear-probe", {"feature_blocks": args.grid_blocks.split(","), "feature_grid": args.grid_size},
                   {"weight_decay": args.large_grid_weight_decay, "lr": args.large_probe_lr,
                    "batch_size": args.probe_batch_size, "epochs": args.probe_epochs,
                    "restore_best": args.grid_restore_best})
    table[MLP] = ("add-layers", {"hidden": [args.mlp_hidden], "dropout": args.mlp_dropout, "freeze_backbone": True,
                                 "feature_blocks": args.grid_blocks.split(","), "feature_grid": args.grid_size},
                  {"weight_decay": args.mlp_weight_decay, "lr": args.mlp_lr, "batch_size": args.mlp_batch_size,
                   "epochs": args.mlp_epochs, "restore_best": False})
    table[PARTIAL6] = ("partial", {"freeze": 6},
                       {"lr": args.partial6_lr, "backbone_lr": args.partial6_backbone_lr, "epochs": args.partial6_epochs,
                        "schedule": "cosine", "batch_size": 32, "restore_best": False})
    unknown = [label for label in labels if label not in table]
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose from {sorted(table)}")
    return {label: table[label] for label in labels}


def fmnist_subset(out: Path, pool_per_class: int, test_per_class: int) -> Path:
    """The first N images per class of Fashion-MNIST's own train and test splits, as uint8 .npz."""
    from transferlab.data.idx import read_idx_images

    def labels(name: str) -> np.ndarray:
        with gzip.open(FMNIST / name) as f:
            return np.frombuffer(f.read()[8:], np.uint8).astype(np.int64)

    def first(y: np.ndarray, n: int) -> np.ndarray:
        return np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)]))

    path = out / f"fmnist-{pool_per_class}-{test_per_class}.npz"
    if path.is_file():
        return path
    xtr, ytr = read_idx_images(FMNIST / "train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")
    xte, yte = read_idx_images(FMNIST / "t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")
    tr, te = first(ytr, pool_per_class), first(yte, test_per_class)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=xtr[tr], y_train=ytr[tr], x_test=xte[te], y_test=yte[te])
    return path


def _probe_runs(task, size: int, strategies: dict, shots: int, seeds: int, first_seed: int = 0) -> tuple[dict, float, int]:
    """Strategies with a frozen prefix from efficientnet-lite0 at `size`, features shared by every run.

    Returns ({label: [test accuracy per seed]}, seconds spent extracting features, images extracted).
    """
    from transferlab.api import load
    from transferlab.data import split_task
    from transferlab.engine import FeatureCache, TrainConfig
    from transferlab.engine.feature_cache import cacheable_prefix
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    cache, seconds, images, counted = FeatureCache(), 0.0, 0, set()
    accs: dict = {label: [] for label in strategies}
    cuts = []
    for name, options, _ in strategies.values():
        backbone = load("efficientnet-lite0").backbone
        strategy = create_strategy(name, **options)
        strategy.configure_backbone(backbone)
        cuts.append(cacheable_prefix(backbone, strategy.frozen_blocks(backbone)))
    if len(set(cuts)) > 1:  # the shallowest cut first: every other prefix continues from it (one pass of the stem)
        backbone = load("efficientnet-lite0").backbone
        backbone.set_resolution(size)
        start = time.perf_counter()
        for part, x in (("pool", task.x_pool), ("test", task.x_test)):
            cache.features(f"effnet-{size}", backbone, min(cuts), f"{task.name}:{part}", x)
            images += len(x)
            counted.add(part)
        seconds += time.perf_counter() - start
    for seed in range(first_seed, first_seed + seeds):
        split = split_task(task, shots=shots, seed=seed)
        for label, (name, options, train) in strategies.items():
            backbone = load("efficientnet-lite0").backbone
            backbone.set_resolution(size)
            strategy = create_strategy(name, **options)
            strategy.configure_backbone(backbone)
            k = cacheable_prefix(backbone, strategy.frozen_blocks(backbone))
            for part, x in (("pool", task.x_pool), ("test", task.x_test)):
                before, start = len(cache), time.perf_counter()
                cache.features(f"effnet-{size}", backbone, k, f"{task.name}:{part}", x)  # computed once per k
                if len(cache) > before:  # a deeper prefix continues from a cached one: its images count once
                    seconds += time.perf_counter() - start
                    images += 0 if part in counted else len(x)
                    counted.add(part)
            _, _, metrics = train_run(backbone, split, strategy, TrainConfig(seed=seed, threads=1, **train), cache=cache,
                                      cache_key=f"effnet-{size}")
            accs[label].append(metrics["accuracy"])
            print(f"  {label}, seed {seed}: test accuracy {metrics['accuracy']:.4f}", flush=True)  # kept if the run stops
    return accs, seconds, images


def part_sizes(args, data: Path) -> dict:
    """Linear probe at 10 labels/class and feature images/s at each resolution."""
    from transferlab.data import load_task

    task = load_task(str(data))
    rows = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        accs, seconds, images = _probe_runs(task, size, {"linear-probe": ("linear-probe", {}, {})}, 10, args.seeds)
        a = accs["linear-probe"]
        rows[size] = {"images_per_s": images / seconds, "feature_seconds": seconds, "images": images,
                      "lp10_mean": float(np.mean(a)), "lp10_sd": float(np.std(a))}
        print(f"size {size}: {images / seconds:.1f} images/s of features ({images} images, {seconds:.0f} s); linear "
              f"probe at 10 labels/class {np.mean(a):.3f} ± {np.std(a):.3f} over {args.seeds} seeds", flush=True)
    print("\n| image size | feature extraction, images/s | linear probe, 10 labels/class (mean ± sd) |\n|---:|---:|---:|")
    for size, r in rows.items():
        print(f"| {size} | {r['images_per_s']:.1f} | {r['lp10_mean']:.3f} ± {r['lp10_sd']:.3f} |")
    return rows


def _table(title: str, cells: list[dict]) -> None:
    shots = sorted({c["shots"] for c in cells}, key=lambda s: (isinstance(s, str), s))
    names = list(dict.fromkeys(c["strategy"] for c in cells))
    print(f"\n### {title}\n")
    print("| strategy | " + " | ".join(f"{s} labels/class" for s in shots) + " |")
    print("|---|" + "---:|" * len(shots))
    for name in names:
        row = []
        for s in shots:
            c = next((c for c in cells if c["shots"] == s and c["strategy"] == name), None)
            if c is None:
                row.append("–")
                continue
            verdict = {"helps": " ↑", "hurts": " ↓"}.get(c["verdict"], "")
            row.append(f"{c['mean']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]{verdict}")
        print(f"| {name} | " + " | ".join(row) + " |")


def _effnet_grid(args, data: Path):
    from transferlab.compare import CompareConfig, StrategySpec, run_comparison

    # Scratch passes the whole network every step: a fixed budget of epochs, validated twice.
    few = {"epochs": args.uncached_epochs, "eval_every": max(1, args.uncached_epochs // 2)}
    # partial-7 first: its cached stage6 outputs are where the linear probe's features continue from
    specs = [StrategySpec("partial", {"freeze": 7}, label="partial-7"), StrategySpec("linear-probe"),
             StrategySpec("scratch", train=few)]
    for label, wd in ((MULTI, args.probe_weight_decay), (GRID, args.grid_weight_decay)):
        if args.multi:
            name, options, train = strategies_of(args, [label])[label]
            train = {**train, "weight_decay": wd, "lr": args.probe_lr}  # ~100 training images
            specs.insert(-1, StrategySpec(name, options, label=label, train=train))
    chosen = args.effnet_strategies.split(",")
    unknown = [c for c in chosen if c not in [s.label or s.name for s in specs]]
    if unknown:
        raise SystemExit(f"unknown --effnet-strategies {unknown}; choose from {[s.label or s.name for s in specs]}")
    specs = [s for s in specs if (s.label or s.name) in chosen]
    return run_comparison(CompareConfig(pretrained="efficientnet-lite0", data=str(data), image_size=args.image_size,
                                        strategies=specs, shots=args.shots, seeds=args.seeds),
                          Path(args.out) / "effnet-grid", threads=1)


def _cnn_grid(args, data: Path):
    from transferlab.api import pretrain
    from transferlab.compare import CompareConfig, StrategySpec, run_comparison
    from transferlab.engine import TrainConfig

    cnn = Path(args.out) / "cnn-mnist5k"
    if not (cnn / "config.json").is_file():
        pretrain("mnist5k", out=cnn, backbone="cnn", train=TrainConfig(epochs=args.cnn_epochs, augment="affine", threads=1))
    specs = [StrategySpec(n, {"freeze": 2} if n == "partial" else {}) for n in
             ("linear-probe", "partial", "full", "lp-ft", "scratch")]
    return run_comparison(CompareConfig(pretrained=str(cnn), data=str(data), strategies=specs, shots=args.cnn_shots,
                                        seeds=args.seeds), Path(args.out) / "cnn-grid", threads=1)


def part_grid(args, data: Path, which: str) -> dict:
    """`compare` grids; `which`: "effnet", "cnn" or "summary" (both, resumed from their folders, and the goals)."""
    report = {}
    if which in ("effnet", "summary"):
        start = time.perf_counter()
        effnet = _effnet_grid(args, data)
        report["effnet"] = effnet.summary["cells"]
        _table(f"efficientnet-lite0 (ImageNet) → Fashion-MNIST at {args.image_size} px, {args.seeds} seeds "
               f"({(time.perf_counter() - start) / 60:.1f} min this call)", effnet.summary["cells"])
    if which in ("cnn", "summary"):
        start = time.perf_counter()
        cnn = _cnn_grid(args, data)
        report["cnn"] = cnn.summary["cells"]
        _table(f"cnn (MNIST-5k) → Fashion-MNIST at 28 px, {args.seeds} seeds "
               f"({(time.perf_counter() - start) / 60:.1f} min this call)", cnn.summary["cells"])
    if which == "summary":
        at10 = [c for c in report["effnet"] if c["shots"] == 10 and c["verdict"] != "baseline"]
        best = max(at10, key=lambda c: c["mean"])
        cnn_best = max((c for c in report["cnn"] if c["shots"] == 10 and c["verdict"] != "baseline"),
                       key=lambda c: c["mean"])
        print(f"\n- 10 labels/class: best from efficientnet-lite0 {best['strategy']} {best['mean']:.3f} "
              f"[{best['ci_low']:.3f}, {best['ci_high']:.3f}], verdict vs scratch: {best['verdict']} (goal ≥ 0.80, helps)")
        print(f"- best from the MNIST-5k cnn: {cnn_best['strategy']} {cnn_best['mean']:.3f} "
              f"[{cnn_best['ci_low']:.3f}, {cnn_best['ci_high']:.3f}]; efficientnet's CI above it: "
              f"{'yes' if best['ci_low'] > cnn_best['ci_high'] else 'no'}")
    print("↑ / ↓: compare's verdict against scratch (95% CI of the paired difference above / below 0)")
    return report


def part_large(args, data: Path, shots: int = 1000, seeds: int | None = None, strategies: str | None = None,
               goal: float = 0.92) -> dict:
    """The cached strategies at `shots` labels/class (no scratch: at 1,000 it would train the whole network on
    10,000 images); `probes` runs it at 10 labels/class on the whole test split."""
    from scipy import stats

    from transferlab.data import load_task

    start = time.perf_counter()
    task = load_task(str(data))
    seeds = args.large_seeds if seeds is None else seeds
    chosen = strategies_of(args, (strategies or args.large_strategies).split(","))
    if shots <= 100:  # few labels: the multi-stage probes' L2 penalty for ~100 training images
        few = {MULTI: args.probe_weight_decay, GRID: args.grid_weight_decay}
        chosen = {k: (n, o, t if k not in few else {**t, "weight_decay": few[k], "lr": args.probe_lr})
                  for k, (n, o, t) in chosen.items()}
    accs, seconds, images = _probe_runs(task, args.image_size, chosen, shots, seeds, args.first_seed)
    print(f"\n### efficientnet-lite0 → Fashion-MNIST, {shots} labels/class at {args.image_size} px, {seeds} "
          f"seed(s), test {len(task.x_test)} images ({(time.perf_counter() - start) / 60:.1f} min; features "
          f"{images / seconds:.1f} images/s)\n")
    print("| strategy | test accuracy, mean [95% CI over seeds] | per seed |\n|---|---:|---|")
    for label, a in accs.items():
        half = stats.t.ppf(0.975, len(a) - 1) * np.std(a, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
        print(f"| {label} | {np.mean(a):.3f} [{np.mean(a) - half:.3f}, {np.mean(a) + half:.3f}] | "
              f"{', '.join(f'{v:.3f}' for v in a)} |")
    best = max(accs, key=lambda k: np.mean(accs[k]))
    print(f"\n- {shots} labels/class: best {best} {np.mean(accs[best]):.3f} (goal ≥ {goal})")
    return {label: [float(v) for v in a] for label, a in accs.items()}


def part_speed(args, data: Path) -> dict:
    """transferlab vs a plain eager loop (alternating, same process), and onnxruntime."""
    import torch
    import torch.nn.functional as F

    from transferlab.api import finetune, load
    from transferlab.data import load_task, split_task
    from transferlab.engine import TrainConfig
    from transferlab.engine.feature_cache import prefix_features
    from transferlab.engine.train import fit
    from transferlab.models import TransferModel
    from transferlab.models.head import HeadSpec
    from transferlab.strategies import create_strategy

    torch.set_num_threads(1)
    task = load_task(str(data))
    x = task.x_test[: args.speed_images]
    backbone = load("efficientnet-lite0").backbone.eval()
    backbone.set_resolution(args.image_size)
    xt = torch.from_numpy(x)
    n_blocks = len(backbone.blocks)

    def ours_features() -> float:
        start = time.perf_counter()
        prefix_features(backbone, n_blocks, x)
        return time.perf_counter() - start

    def plain_features() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            torch.cat([backbone(xt[i : i + 256]) for i in range(0, len(xt), 256)])
        return time.perf_counter() - start

    # One fine-tuning step: full fine-tuning, batch 32, Adam, same model and batch.
    split = split_task(task, shots=10, seed=0)
    xb, yb = torch.from_numpy(split.x_train[:32]), torch.from_numpy(split.y_train[:32])

    def fresh() -> TransferModel:
        b = load("efficientnet-lite0").backbone
        b.set_resolution(args.image_size)
        return TransferModel(b, HeadSpec(num_outputs=10))

    steps = args.speed_steps

    # Steady state: the time from the end of the first step to the end of the last, per step, for both (the first
    # step pays one-off allocations; fit's setup — optimizer, data on the device — is not a per-step cost).
    def ours_step() -> float:
        model = fresh()
        strategy = create_strategy("full")
        strategy.prepare(model)
        cfg = TrainConfig(epochs=steps, batch_size=32, threads=1, eval_every=10 ** 6, restore_best=False)
        ends: list[float] = []
        fit(model, strategy, xb, yb, xb[:0], yb[:0], cfg, on_step=lambda step, per_epoch: ends.append(time.perf_counter()))
        return (ends[-1] - ends[0]) / (len(ends) - 1)

    def plain_step() -> float:
        model = fresh()
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # torch's default Adam, as a plain loop would write it
        ends = []
        for _ in range(steps):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ends.append(time.perf_counter())
        return (ends[-1] - ends[0]) / (len(ends) - 1)

    feats, stepping = {"ours": [], "plain": []}, {"ours": [], "plain": []}
    for _ in range(args.repeats):  # alternating: both see the same machine load
        feats["ours"].append(ours_features())
        feats["plain"].append(plain_features())
        stepping["ours"].append(ours_step())
        stepping["plain"].append(plain_step())
    f_ours, f_plain = len(x) / min(feats["ours"]), len(x) / min(feats["plain"])
    s_ours, s_plain = 32 / min(stepping["ours"]), 32 / min(stepping["plain"])
    report = {"features_ours": f_ours, "features_plain": f_plain, "step_ours": s_ours, "step_plain": s_plain}
    ort = None
    try:
        import onnxruntime as rt

        from transferlab.export import export as export_model

        model_dir = Path(args.out) / "speed-model"
        if not (model_dir / "config.json").is_file():
            finetune("efficientnet-lite0", str(data), strategy="linear-probe", shots=10, image_size=args.image_size,
                     out=model_dir, overwrite=True, train=TrainConfig(threads=1))
        onnx_path = Path(args.out) / "speed-model.onnx"
        export_model(model_dir, onnx_path, format="onnx", overwrite=True)
        opts = rt.SessionOptions()
        opts.intra_op_num_threads = 1
        session = rt.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for i in range(0, len(x), 256):
                session.run(None, {name: x[i : i + 256]})
            times.append(time.perf_counter() - start)
        ort = len(x) / min(times)
        report["onnxruntime"] = ort
    except ImportError as err:
        print(f"onnxruntime part skipped: {err}")
    print(f"\n### Throughput at {args.image_size} px, 1 thread (best of {args.repeats}, alternating)\n")
    print("| what | transferlab, images/s | plain eager PyTorch, images/s | ratio | onnxruntime, images/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| frozen feature extraction (the cache) | {f_ours:.1f} | {f_plain:.1f} | {f_ours / f_plain:.2f} | "
          f"{'' if ort is None else f'{ort:.1f} (whole model)'} |")
    print(f"| fine-tuning step (full, batch 32, Adam; steady state over {steps - 1} steps) | {s_ours:.1f} | {s_plain:.1f} | "
          f"{s_ours / s_plain:.2f} | |")
    ratios = [o / p for o, p in zip(stepping["plain"], stepping["ours"])]  # per repeat: plain seconds / ours
    print(f"\nfine-tuning step ratio per alternating repeat: {', '.join(f'{r:.2f}' for r in ratios)} "
          f"(median {float(np.median(ratios)):.2f})")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="sizes,grid,cnn,large,probes,speed,summary")
    parser.add_argument("--sizes", default="64,96,128")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--large-seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the `large` and `probes` parts run seeds first-seed… (continue a run in another process)")
    parser.add_argument("--large-strategies", default="partial-7,linear-probe,linear-probe-multi",
                        help="of partial-7, linear-probe, linear-probe-multi, linear-probe-grid, add-layers-grid, "
                             "partial-6")
    parser.add_argument("--multi", action=argparse.BooleanOptionalAction, default=True,
                        help="add linear-probe-multi and linear-probe-grid to the efficientnet grid")
    parser.add_argument("--effnet-strategies", default="partial-7,linear-probe,linear-probe-multi,linear-probe-grid,scratch",
                        help="the efficientnet grid's strategies (scratch is the verdicts' baseline)")
    parser.add_argument("--probe-blocks", default="stage4,stage5,stage6,stage7,conv_head",
                        help="linear-probe-multi's --feature-blocks")
    parser.add_argument("--probe-weight-decay", type=float, default=1.0, help="linear-probe-multi's L2 penalty (Adam)")
    parser.add_argument("--probe-lr", type=float, default=1e-3, help="linear-probe-multi's learning rate")
    parser.add_argument("--probe-batch-size", type=int, default=16384,
                        help="linear-probe-multi's batch (≥ the training set: one full-batch step per epoch)")
    parser.add_argument("--probe-epochs", type=int, default=300, help="linear-probe-multi's epochs (full-batch steps)")
    parser.add_argument("--large-probe-weight-decay", type=float, default=0.01,
                        help="linear-probe-multi's L2 penalty at 1,000 labels/class (10,000 images)")
    parser.add_argument("--large-probe-lr", type=float, default=0.01, help="linear-probe-multi's lr at 1,000 labels/class")
    parser.add_argument("--grid-blocks", default="stage5,stage6", help="linear-probe-grid's --feature-blocks")
    parser.add_argument("--grid-size", type=int, default=4, help="linear-probe-grid's --feature-grid")
    parser.add_argument("--grid-weight-decay", type=float, default=3.0, help="linear-probe-grid's L2 penalty (Adam)")
    parser.add_argument("--grid-restore-best", action=argparse.BooleanOptionalAction, default=False,
                        help="linear-probe-grid keeps the weights of its best validation pass (default: its last "
                             "weights; on held-out training images its accuracy rises through all 300 steps, and the "
                             "pool's 5 validation images per class pick earlier, weaker weights)")
    parser.add_argument("--large-grid-weight-decay", type=float, default=0.1,
                        help="linear-probe-grid's L2 penalty at 1,000 labels/class (10,000 images)")
    parser.add_argument("--mlp-hidden", type=int, default=1024, help="add-layers-grid's hidden layer width")
    parser.add_argument("--mlp-dropout", type=float, default=0.5, help="add-layers-grid's dropout after the hidden layer")
    parser.add_argument("--mlp-weight-decay", type=float, default=1e-4, help="add-layers-grid's L2 penalty (Adam)")
    parser.add_argument("--mlp-lr", type=float, default=1e-3, help="add-layers-grid's learning rate")
    parser.add_argument("--mlp-batch-size", type=int, default=256, help="add-layers-grid's batch")
    parser.add_argument("--mlp-epochs", type=int, default=18, help="add-layers-grid's epochs (its last weights are kept)")
    parser.add_argument("--partial6-lr", type=float, default=1e-3, help="partial-6's head learning rate")
    parser.add_argument("--partial6-backbone-lr", type=float, default=3e-4,
                        help="partial-6's learning rate of stage6, stage7 and conv_head")
    parser.add_argument("--partial6-epochs", type=int, default=5,
                        help="partial-6's epochs (cosine schedule, batch 32, its last weights are kept)")
    parser.add_argument("--probe-shots", type=int, default=10, help="labels/class of the `probes` part")
    parser.add_argument("--probe-pool-per-class", type=int, default=50, help="pool per class of the `probes` part")
    parser.add_argument("--probe-strategies", default="linear-probe,linear-probe-multi,partial-7",
                        help="strategies of the `probes` part")
    parser.add_argument("--shots", default="1,5,10", help="label budgets of the efficientnet-lite0 grid")
    parser.add_argument("--cnn-epochs", type=int, default=40, help="pretraining epochs of the cnn on MNIST-5k")
    parser.add_argument("--cnn-shots", default="1,5,10,50", help="label budgets of the MNIST-5k cnn grid")
    parser.add_argument("--uncached-epochs", type=int, default=10, help="epochs of scratch and full (whole network per step)")
    parser.add_argument("--pool-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--large-pool-per-class", type=int, default=1120)
    parser.add_argument("--speed-images", type=int, default=512)
    parser.add_argument("--speed-steps", type=int, default=6, help="steps per timed run (the first is not counted)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "vision"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not FMNIST.is_dir():
        raise SystemExit(f"{FMNIST} not found: the benchmark needs Fashion-MNIST there (see its README)")
    import os

    os.environ.setdefault("TRANSFERLAB_HOME", str(Path(args.out) / "store"))
    out = Path(args.out)
    few = fmnist_subset(out, args.pool_per_class, args.test_per_class)
    report: dict = {}
    for part in args.parts.split(","):
        start = time.perf_counter()
        if part == "sizes":
            report[part] = part_sizes(args, few)
        elif part in ("grid", "cnn", "summary"):
            report[part] = part_grid(args, few, {"grid": "effnet"}.get(part, part))
        elif part == "large":
            report[part] = part_large(args, fmnist_subset(out, args.large_pool_per_class, args.test_per_class))
        elif part == "probes":  # cached strategies at --probe-shots, 5 seeds, on --test-per-class (1000: the whole split)
            report[part] = part_large(args, fmnist_subset(out, args.probe_pool_per_class, args.test_per_class),
                                      shots=args.probe_shots, seeds=args.seeds, strategies=args.probe_strategies, goal=0.80)
        elif part == "speed":
            report[part] = part_speed(args, few)
        else:
            raise SystemExit(f"unknown part {part!r}; parts are sizes, grid, cnn, large, probes, speed, summary")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        print(f"[{part}: {(time.perf_counter() - start) / 60:.1f} min; peak RSS so far {peak:.2f} GiB]", flush=True)
    if args.json:
        print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
