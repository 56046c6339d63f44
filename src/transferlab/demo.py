"""`transferlab demo`: the seed's scenario (seed §4) done right, offline, in a few minutes on 2 cores.

Pretrain `cnn` on MNIST-5k, then compare transfer to the UCI 8×8 digits framed like MNIST (a domain
shift: other writers, scanner and resolution) with 1, 5, 10 and all labels per class, by every seed
strategy and from scratch, over 3 seeds. Unlike the seed's example, nothing is ever trained on the
test split. The comparison's report, CSV, summary and seed-0 models are saved under `out`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .api import pretrain
from .compare import CompareConfig, ComparisonResult, StrategySpec
from .cli_compare import print_summary, run_with_progress
from .engine import TrainConfig

DEMO_STRATEGIES = [
    StrategySpec("scratch"),
    StrategySpec("linear-probe"),
    StrategySpec("partial", {"freeze": 2}, label="partial --freeze 2"),
    StrategySpec("add-layers", {"hidden": [128]}, label="add-layers --hidden 128"),
    StrategySpec("full"),
]
DEMO_SHOTS: list[int | str] = [1, 5, 10, "all"]


def demo(
    out: str | Path = "demo-out", *, seeds: int = 3, jobs: int = 1, threads: int | None = None, quiet: bool = False
) -> ComparisonResult:
    """Pretrain, then compare every strategy against scratch; print the summary unless `quiet`.

    Example:
        >>> result = demo("demo-out", seeds=3)  # doctest: +SKIP
        >>> result.summary["recommendation"]["1"]["best"]  # doctest: +SKIP
    """
    import contextlib

    from .compare.grid import GridWorkers

    out = Path(out)
    say = (lambda *a: None) if quiet else print
    # --jobs N: the grid's worker processes start now, while pretraining leaves the other cores idle
    with GridWorkers(jobs) if jobs > 1 else contextlib.nullcontext() as workers:
        return _demo(out, seeds, jobs, threads, quiet, say, workers)


def _demo(out: Path, seeds: int, jobs: int, threads: int | None, quiet: bool, say: Any, workers: Any) -> ComparisonResult:
    say("1. pretrain cnn on mnist5k (the source task: 10 digits, 28×28); saved without its output layer")
    pre = pretrain("mnist5k", out=out / "pretrained", backbone="cnn", train=TrainConfig(epochs=5, threads=threads),
                   overwrite=True, quiet=quiet)
    say(f"   source val accuracy {pre.val_accuracy:.3f}, test accuracy {pre.test_accuracy:.3f}, "
        f"{pre.train_seconds:.1f}s → {pre.out}")
    say("2. compare on digits (UCI 8×8 framed like MNIST: --image-size 28 --image-margin 4), "
        f"shots {','.join(map(str, DEMO_SHOTS))}, {seeds} seeds; the fixed test split is never trained on")
    config = CompareConfig(pretrained=str(out / "pretrained"), data="digits", image_size=28, image_margin=4,
                           strategies=[StrategySpec(s.name, dict(s.options), s.label) for s in DEMO_STRATEGIES],
                           shots=list(DEMO_SHOTS), seeds=seeds)
    # force: the pretrained model was just retrained, so earlier runs in this folder no longer apply
    result = run_with_progress(config, out / "compare", quiet=quiet, jobs=jobs, threads=threads, force=True,
                               save_models=True, workers=workers)
    if not quiet:
        print_summary(result)
    return result
