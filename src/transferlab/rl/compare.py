"""`compare --env`: strategies × target budgets (environment steps) × seeds for an RL agent, resumably.

Each run is one `finetune_agent` (scratch included: same network, random initialisation, same
hyperparameters, same evaluation episodes). Runs land in `runs.sqlite` one transaction each, so a
killed comparison started again skips every finished run and redoes only the one that was cut off.
Verdicts are paired by seed against scratch at the same budget, on a declared metric (default `auc`,
the area under the learning curve) — the same statistics as every other comparison.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..compare.grid import ComparisonResult
from ..errors import ConfigError
from .metrics import METRICS, label  # (label re-exported)

STORE = "runs.sqlite"


@dataclass
class RLCompareConfig:
    """What a comparison runs; everything here must match for a folder's finished runs to be reused."""

    pretrained: str
    env: str
    env_options: dict[str, Any] = field(default_factory=dict)
    strategies: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "full", "options": {}}])
    steps: list[int] = field(default_factory=lambda: [20_000])
    seeds: int = 5
    metric: str = "auc"
    eval_episodes: int = 10
    eval_points: int = 10
    algo_options: dict[str, Any] = field(default_factory=dict)
    keep_source_head: bool | None = None
    threshold: float | None = None
    margin: float = 0.0  # largest |Δ| (in --metric units: returns) called no-difference; changes no run

    def __post_init__(self) -> None:
        import math

        if self.metric not in METRICS:
            raise ConfigError(f"--metric {self.metric!r} is not one of {list(METRICS)}")
        if not isinstance(self.margin, (int, float)) or not math.isfinite(self.margin) or self.margin < 0:
            raise ConfigError(f"--margin must be a number ≥ 0 in {self.metric} units (returns), e.g. --margin 10; "
                              f"got {self.margin!r}")
        self.margin = float(self.margin)
        if self.seeds < 2:
            raise ConfigError(f"--seeds must be ≥ 2 (a verdict needs a spread over seeds); got {self.seeds}")
        if not self.steps or any(int(s) < 1 for s in self.steps):
            raise ConfigError(f"--steps takes comma-separated whole numbers ≥ 1, e.g. 10000,20000; got {self.steps}")
        self.steps = sorted({int(s) for s in self.steps})
        names = [s["name"] for s in self.strategies]
        if "scratch" not in names:
            self.strategies = [{"name": "scratch", "options": {}}, *self.strategies]

    def to_dict(self) -> dict[str, Any]:
        return {"task_kind": "rl", **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Cell:
    strategy: dict[str, Any]
    steps: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (label(self.strategy), str(self.steps), self.seed)


def run_cell(config: RLCompareConfig, cell: Cell, threads: int, source: Any = None) -> dict[str, Any]:
    """One fine-tuning run as a JSON-able record (status "failed" with the error if it fails)."""
    from ..errors import TransferlabError
    from .api import finetune_agent

    record: dict[str, Any] = {"strategy": label(cell.strategy), "name": cell.strategy["name"], "shots": str(cell.steps),
                              "steps": cell.steps, "seed": cell.seed}
    try:
        r = finetune_agent(config.pretrained, config.env, env_options=config.env_options,
                           strategy=cell.strategy["name"], strategy_options=cell.strategy.get("options"),
                           steps=cell.steps, seed=cell.seed, keep_source_head=config.keep_source_head,
                           algo_options=config.algo_options, eval_episodes=config.eval_episodes,
                           eval_points=config.eval_points, quiet=True, threads=threads, source=source)
    except TransferlabError as err:
        return record | {"status": "failed", "error": str(err)}
    return record | {"status": "finished", "curve": r.to_json()["curve"], "metrics": r.metrics, "heads": r.heads,
                     "episodes": r.episodes, "train_seconds": r.train_seconds, "cpu_seconds": r.cpu_seconds,
                     "trainable_parameters": r.trainable_parameters}


_SOURCE: Any = None


def _run_in_worker(config: RLCompareConfig, cell: Cell, threads: int) -> dict[str, Any]:
    global _SOURCE
    if _SOURCE is None:
        from .folder import load_agent_folder

        _SOURCE = load_agent_folder(config.pretrained)
    return run_cell(config, cell, threads, _SOURCE)


# An RL grid ends like any comparison: where it lives, its summary, the finished runs and the counts.
RLComparison = ComparisonResult


def compare_agents(config: RLCompareConfig, out: str | Path, *, jobs: int = 1, threads: int | None = None,
                   force: bool = False, on_cell: Callable[[Cell, dict[str, Any] | None, int, int], None] | None = None
                   ) -> RLComparison:
    """Run every unfinished cell into `out` (runs.sqlite, results.csv, summary.json, report.html).

    `out` must be new, empty, or hold only what compare wrote there: a user's files are refused, never replaced.

    Example:
        >>> cfg = RLCompareConfig("models/cartpole", "CartPole-v1", {"length": 1.0},
        ...                       strategies=[{"name": "full", "options": {}}], steps=[10_000], seeds=5)
        >>> compare_agents(cfg, "cmp-rl", jobs=2).summary["cells"][0]["verdict"]  # doctest: +SKIP
    """
    # long: checks every input (folder, env, strategies, stored config) before the grid, then runs and reports it
    from ..compare.run_store import RunStore
    from .api import _env_spec
    from .folder import load_agent_folder
    from .report import write_rl_outputs

    if jobs < 1:
        raise ConfigError(f"--jobs must be a whole number ≥ 1; got {jobs}")
    from ..compare.folder import claim_folder

    out = claim_folder(out)  # new, empty, or compare's own: a user's files there are refused, never replaced
    source = load_agent_folder(config.pretrained)
    config.env_options = _env_spec(config.env, config.env_options).options  # validated and typed
    from ..strategies import create_strategy
    from .api import RL_STRATEGIES

    for spec in config.strategies:  # every strategy and option is checked before a run starts
        if spec["name"] not in RL_STRATEGIES:
            from ..strategies import strategy_class

            strategy_class(spec["name"])
            raise ConfigError(f"strategy {spec['name']!r} does not apply to an RL agent; RL strategies are "
                              f"{list(RL_STRATEGIES)}")
        create_strategy(spec["name"], **spec.get("options", {}))
    # The margin only names verdicts (it changes no run): it is not part of what a resumed comparison must match,
    # so the same runs can be judged again with another --margin.
    identity = {k: v for k, v in config.to_dict().items() if k != "margin"} | {
        "pretrained_sha256": source.config["weights"]["sha256"]}
    store_path = out / STORE
    if force and store_path.exists():
        for name in (STORE, f"{STORE}-wal", f"{STORE}-shm", "results.csv", "summary.json", "report.html"):
            (out / name).unlink(missing_ok=True)
    if store_path.exists():
        with RunStore(store_path) as store:
            stored = store.get_meta("config")
        if stored is not None and stored != identity:
            changes = [f"{k}: {stored.get(k)!r} → {identity.get(k)!r}" for k in sorted(set(stored) | set(identity))
                       if stored.get(k) != identity.get(k)]
            raise ConfigError(f"{out} holds a comparison with a different config ({'; '.join(changes)}); use another "
                              "--out, or --force to discard its runs and start anew")
    from ..engine.runtime import resolve_threads

    per_job = resolve_threads(threads)
    cells = [Cell(s, steps, seed) for steps in config.steps for seed in range(config.seeds) for s in config.strategies]
    out.mkdir(parents=True, exist_ok=True)
    from ..artifacts.ownership import record

    record(out, {STORE, f"{STORE}-wal", f"{STORE}-shm", f"{STORE}-journal", "results.csv", "summary.json",
                 "report.html"})  # before they are written: all --force or a rerun may replace
    with RunStore(store_path) as store:
        store.set_meta("config", identity)
        done_keys = store.finished()
        todo = [c for c in cells if c.key not in done_keys]
        skipped, failed, done = len(cells) - len(todo), 0, len(cells) - len(todo)
        for cell, run in _execute(todo, config, jobs, per_job, source, on_cell, done, len(cells)):
            store.record(run)
            failed += run["status"] != "finished"
        runs = store.runs(status=None)  # failed runs too: the report names them
    summary = write_rl_outputs(out, runs, identity | {"margin": config.margin})
    return RLComparison(out=out, summary=summary, runs=runs, ran=len(todo), skipped=skipped, failed=failed)


def _execute(todo: list[Cell], config: RLCompareConfig, jobs: int, threads: int, source: Any, on_cell, done, total):
    if jobs == 1 or len(todo) <= 1:
        for cell in todo:
            if on_cell:
                on_cell(cell, None, done, total)
            run = run_cell(config, cell, threads, source)
            done += 1
            if on_cell:
                on_cell(cell, run, done, total)
            yield cell, run
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        pending = {pool.submit(_run_in_worker, config, cell, threads): cell for cell in todo}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = pending.pop(future)
                    run = future.result()
                    done += 1
                    if on_cell:
                        on_cell(cell, run, done, total)
                    yield cell, run
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
