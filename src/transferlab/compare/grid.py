"""`compare`: run a grid of (strategy, shots, seed) cells, resumably, and summarise it honestly."""

from __future__ import annotations

import contextlib
import dataclasses

import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .cells import Cell, CellRunner
from .config import CompareConfig
from .folder import OUTPUTS, claim_folder  # (claim_folder re-exported: the --out check, in folder.py)
from .run_store import RunStore

from .run_store import STORE  # noqa: E402  (re-exported: the run store file of a comparison folder)


@dataclass
class ComparisonResult:
    """The outcome: where it lives, the summary (cells + recommendation) and the finished runs."""

    out: Path
    summary: dict[str, Any]
    runs: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: int
    # Where the wall time went (time.time() stamps, comparable across processes on one machine): "phases" of
    # this process {name: [start, end]} and one span per cell run here {pid, cell, start, end, ready}, where
    # "ready" is when that process could start its first cell (docs/compare_speed.md).
    timeline: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "ran": self.ran, "skipped": self.skipped, "failed": self.failed, **self.summary}


ANALYSIS_KEYS = ("metric", "correction", "margin")  # how verdicts are read: runs stay valid when they change


def _identity(config: CompareConfig, source_sha: str) -> dict[str, Any]:
    """What must match for a folder's finished runs to be reused (execution details like jobs and the
    verdicts' metric, correction and margin excluded; max_seeds only under --seeds auto)."""
    d = {k: v for k, v in config.to_dict().items() if k not in ANALYSIS_KEYS}
    if config.seeds != "auto":
        d.pop("max_seeds", None)
    return d | {"pretrained_sha256": source_sha}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _per_job_threads(jobs: int, threads: int | None) -> int:
    if threads is not None:
        return threads
    from ..engine.runtime import resolve_threads

    # Parallel jobs already fill the cores; more threads per job would oversubscribe them.
    return resolve_threads(None) if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def _prepare_folder(out: Path, identity: dict[str, Any], force: bool) -> None:
    from ..artifacts.ownership import MANIFEST, read_manifest, remove_owned

    store_path = out / STORE
    if force and store_path.exists():
        # claim_folder found nothing foreign in `out`: what the manifest lists is all compare's own
        for rel in sorted(p for p in (read_manifest(out) or set()) if "/" not in p and p != MANIFEST):
            remove_owned(out, rel)
    if store_path.exists():
        with RunStore(store_path) as store:
            stored = store.get_meta("config")
        if stored is not None and stored != identity:
            raise ConfigError(
                f"{out} holds a comparison with a different config ({'; '.join(_changes(stored, identity))}); "
                "use another --out, or --force to discard its runs and start anew"
            )


_WORKER: CellRunner | None = None  # one per worker process, made at its first cell of a grid
_WORKER_SETUP: tuple[Any, ...] | None = None  # what _WORKER was made for
_READY: float | None = None  # when this worker process could start its first cell of that grid


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl PR_SET_PDEATHSIG).

    A comparison killed with SIGKILL cannot stop its workers itself; without this they would train on,
    orphaned, holding hundreds of MB each. A worker's parent is the fork server (GridWorkers), which exits
    as soon as the comparison's process `parent_pid` is gone (or, where workers are spawned, that process
    itself). If it is already gone, exit now. Elsewhere than Linux there is no such call: the pool's own
    shutdown on a normal exit or an exception still applies.
    """
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() == 1 or not _alive(parent_pid):  # the parent died before the request was made
        os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's (a reused pid): not ours, but not proof it died
        return True
    return True


def _init_worker(parent_pid: int) -> None:
    """A worker's start: die with the parent, and import what every cell needs (torch, the engine, the
    strategies) while the parent still prepares the grid (or, in `transferlab demo`, pretrains). Forked from
    the fork server, all of it is imported already (compare/worker_preload.py)."""
    _release_fork_server()
    die_with_parent(parent_pid)
    from . import worker_preload  # noqa: F401


def _release_fork_server() -> None:
    """Close this worker's copy of the descriptor by which the fork server learns that the comparison's process
    is gone (multiprocessing hands every forked child one). Held open here it would keep the server — and so,
    through die_with_parent, this worker — alive after the comparison's process is killed."""
    import multiprocessing.forkserver as forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _worker_context() -> Any:
    """How worker processes start: forked from a fork server that imported torch and transferlab once
    (compare/worker_preload.py), so N workers pay one start; where there is no fork server (Windows), spawned.
    Never forked from this process itself: it may hold OpenMP threads from its own training, which a forked
    child cannot use."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([f"{__package__}.worker_preload"])
    return ctx


def _prepare_worker(setup: tuple[Any, ...]) -> None:
    """Make this worker's runner for the grid `setup` = (config, threads, models_dir, checkpoints_dir) names:
    the data read and framed, the pretrained model loaded — once per grid, while the parent prepares too."""
    global _WORKER, _WORKER_SETUP, _READY
    if _WORKER is None or _WORKER_SETUP != setup:
        _WORKER, _WORKER_SETUP = _make_runner(*setup), setup
        _READY = time.time()


def _run_in_worker(setup: tuple[Any, ...], cell: Cell) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one cell in a worker (its runner made first if _prepare_worker has not made it)."""
    _prepare_worker(setup)
    assert _WORKER is not None
    return _timed_run(_WORKER, cell, _READY)


def _warm(hold: float = 0.0) -> int:
    """A worker's first task; `hold` keeps it busy a moment, so that the next task submitted starts another
    worker instead of waiting for this idle one (GridWorkers starts all of them at once)."""
    time.sleep(hold)
    return os.getpid()


class GridWorkers:
    """`jobs` worker processes for comparison grids, started ahead of the grid.

    A worker's start (torch and transferlab imported) takes seconds: the workers are forked from one fork
    server that imports them once (`_worker_context`), and started early that import overlaps the work before
    the grid — `transferlab demo` starts them before it pretrains, on the core pretraining leaves idle.
    Pass it to `run_comparison(..., workers=...)`; close it (or use `with`) after.

    Example:
        >>> with GridWorkers(2) as workers:  # doctest: +SKIP
        ...     pretrain(...)
        ...     run_comparison(config, "cmp", jobs=2, workers=workers)
    """

    def __init__(self, jobs: int) -> None:
        import threading

        if jobs < 2:
            raise ConfigError(f"worker processes are for --jobs 2 or more; got {jobs}")
        self.jobs = jobs
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context(), initializer=_init_worker,
                                        initargs=(os.getpid(),))
        # The pool starts a process per task submitted while none is idle: start them all now. A fork server
        # answers a start only once it has imported everything, so they are asked for from a thread of this
        # process, which goes on meanwhile (pretraining, the grid's setup).
        self._starting = threading.Thread(target=self._start, name="grid-workers-start", daemon=True)
        self._starting.start()

    def _start(self) -> None:
        try:
            for _ in range(self.jobs):
                self.pool.submit(_warm, 0.5)
        except RuntimeError:  # closed before they were all asked for
            pass

    def close(self) -> None:
        """Let the workers exit, dropping what they have not started (e.g. a grid that was already finished
        leaves its warm-up unused); this process does not wait for their exit (torch's teardown takes a
        while): they go while it writes the report."""
        self._starting.join()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "GridWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _timed_run(runner: CellRunner, cell: Cell, ready: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cell's run record and its span in the timeline."""
    start = time.time()
    run = runner.run(cell)
    return run, {"pid": os.getpid(), "cell": cell.describe(), "start": start, "end": time.time(), "ready": ready}


def _make_runner(config: CompareConfig, threads: int, models_dir: Path | None,
                 checkpoints_dir: Path | None = None, source: Any = None) -> CellRunner:
    """The runner of every cell in this process: the task read and framed, the pretrained model loaded
    (`source`: already loaded and checksummed by the caller), once for the whole grid."""
    from ..artifacts import load_model as load
    from ..data import check_input_fits

    from ..models.resolution import apply_image_size

    source = load(config.pretrained) if source is None else source
    options = dataclasses.replace(config.data_options, image_size=apply_image_size(source.backbone, config.data,
                                                                                  config.image_size))
    task = options.load(config.data)
    check_input_fits(task, source.input_spec, model_name=config.pretrained)
    adaptation = None
    if config.unlabeled_data is not None:
        from ..engine.adaptation import needs_source, prepare_adaptation
        from ..strategies import strategy_class

        with_source = any(needs_source(strategy_class(s.name)) for s in config.strategies or [])
        adaptation = prepare_adaptation(source, task, config.pretrained, unlabeled_data=config.unlabeled_data,
                                        source_data=config.source_data, with_source=with_source)
    return CellRunner(task=task, source=source, train=dict(config.train), threads=threads, models_dir=models_dir,
                      checkpoints_dir=checkpoints_dir, adaptation=adaptation)


def run_comparison(
    config: CompareConfig,
    out: str | Path,
    *,
    jobs: int = 1,
    threads: int | None = None,
    force: bool = False,
    save_models: bool = False,
    on_cell: Callable[[Cell, dict[str, Any] | None, int, int], None] | None = None,
    workers: GridWorkers | None = None,
) -> ComparisonResult:
    """Run every unfinished cell of `config` into `out` and write the summary, CSV and report.

    Restarted on the same folder it skips finished runs; a different config is refused unless
    `force`. `on_cell(cell, run_or_None, done, total)` reports progress (None: the cell started). With
    `jobs` > 1 the cells run in worker processes: `workers` (GridWorkers(jobs), started earlier by the
    caller, who closes it), else started here at once, so their start overlaps this process's preparation.

    Example:
        >>> cfg = CompareConfig(pretrained="models/src", data="digits", image_size=28, image_margin=4)
        >>> result = run_comparison(cfg, "cmp", jobs=2)  # doctest: +SKIP
        >>> result.summary["recommendation"]  # doctest: +SKIP
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be a whole number ≥ 1; got {jobs}")
    if workers is not None and workers.jobs != jobs:
        raise ConfigError(f"the worker processes given are {workers.jobs}, not --jobs {jobs}; start GridWorkers({jobs})")
    started = time.time()
    out = claim_folder(out)  # before anything is read or written: never a folder holding a user's files
    own = GridWorkers(jobs) if workers is None and jobs > 1 else None  # starting while this process prepares
    with own if own is not None else contextlib.nullcontext():
        return _run_grid(config, out, jobs, threads, force, save_models, on_cell, workers or own, started)


def _run_grid(config: CompareConfig, out: Path, jobs: int, threads: int | None, force: bool, save_models: bool,
              on_cell: Callable[[Cell, dict[str, Any] | None, int, int], None] | None, workers: GridWorkers | None,
              started: float) -> ComparisonResult:
    # long: one sequence: prepare (model, folder, data), record what it may write, run the rounds, summarise
    from ..artifacts import load_model as load

    spans: list[dict[str, Any]] = []
    per_job = _per_job_threads(jobs, threads)
    models_dir = out / "models" if save_models else None
    checkpoints_dir = out / "checkpoints"
    setup = (config, per_job, models_dir, checkpoints_dir)
    if workers is not None:  # each worker reads the data and loads the model while this process does the same
        for _ in range(workers.jobs):
            workers.pool.submit(_prepare_worker, setup)  # a failure here is this process's to report, below
    source = load(config.pretrained)
    identity = _identity(config, source.config["weights"]["sha256"])
    _prepare_folder(out, identity, force)
    runner = _make_runner(config, per_job, models_dir, checkpoints_dir, source)  # validates data before anything is written
    if runner.task.is_numeric:
        raise ConfigError("compare needs class labels (it counts labels per class); --target numeric is not supported")
    out.mkdir(parents=True, exist_ok=True)
    from ..artifacts.ownership import record
    from .cells import checkpoint_name, model_name
    from .outputs import grid_order, write_config

    record(out, {STORE, f"{STORE}-wal", f"{STORE}-shm", f"{STORE}-journal", *OUTPUTS, "checkpoints"})  # before writing
    write_config(out, identity)
    from .reference import SOURCE_ONLY, TFIDF

    references = [TFIDF] if runner.task.input_spec.kind == "text" else []  # a classic line to read against
    if config.unlabeled_data is not None and runner.source_only_applies():  # the model's own head, classes matched
        references.append(SOURCE_ONLY)
    analysis = config.analysis()

    def grid_cells(seeds: range) -> list[Cell]:
        return [cell for shots in config.shots for seed in seeds
                for cell in [*(Cell(spec, shots, seed) for spec in config.strategies or [] if runner.runs_at(spec, shots)),
                             *(Cell(None, shots, seed, reference=r) for r in references if shots != 0 or r == SOURCE_ONLY)]]

    every = grid_cells(range(analysis.max_seeds if analysis.looks else int(config.seeds)))  # all it may write
    record(out, {*(f"checkpoints/{checkpoint_name(c)}" for c in every if c.spec is not None),
                 *(("models", *(f"models/{model_name(c)}" for c in every if c.spec is not None and c.seed == 0))
                   if save_models else ())})
    cells_started = time.time()
    with RunStore(out / STORE) as store:
        store.set_meta("config", identity)
        store.set_meta("analysis", analysis.to_dict())
        plan = analysis.looks or [int(config.seeds)]
        ran = skipped = failed = 0
        seen = 0
        for n_look in plan:  # one round with a fixed --seeds; rounds at the planned looks with --seeds auto
            wanted = _wanted(config, references, store.runs(), analysis, seen)
            cells = [cell for cell in grid_cells(range(seen, n_look))
                     if wanted is None or (cell.label, str(cell.shots)) in wanted]
            seen = n_look
            if not cells:
                break  # every cell is decided
            done_keys = store.finished()
            todo = [c for c in cells if c.key not in done_keys]
            skipped += len(cells) - len(todo)
            done = len(cells) - len(todo)
            for run in _execute(todo, runner, setup, workers, on_cell, done, len(cells), spans):
                store.record(run)
                failed += run["status"] != "finished"
            ran += len(todo)
        runs = grid_order(store.runs(), identity)  # finished in any order (--jobs, resumed); shown in grid order
    if checkpoints_dir.is_dir() and not any(checkpoints_dir.iterdir()):
        checkpoints_dir.rmdir()  # every run finished: no partial state left to resume
    from .outputs import write_outputs

    cells_ended = time.time()
    summary = write_outputs(out, runs, identity, analysis.to_dict())
    timeline = {"jobs": jobs, "cells": spans, "phases": {"setup": [started, cells_started],
                                                           "cells": [cells_started, cells_ended],
                                                           "outputs": [cells_ended, time.time()]}}
    return ComparisonResult(out=out, summary=summary, runs=runs, ran=ran, skipped=skipped, failed=failed,
                            timeline=timeline)


def _wanted(config: CompareConfig, references: list[str], runs: list[dict[str, Any]], analysis: Any,
            seen: int) -> set[tuple[str, str]] | None:
    """(label, shots) of the cells the next round of --seeds auto runs: every undecided cell and its
    budget's baseline. None: every cell (a fixed --seeds, or the first round)."""
    if analysis.looks is None or seen == 0 or not runs:
        return None
    from .config import BASELINE
    from .reference import SOURCE_ONLY
    from .statistics import summarize

    summary = summarize(runs, baseline=BASELINE, **_summary_options(analysis))
    wanted = {(str(c["strategy"]), str(c["shots"])) for c in summary["cells"]
              if c["verdict"] != "baseline" and not c["decided"] and not c["stopped"]}
    budgets = {shots for _, shots in wanted}
    wanted |= {(base, shots) for shots in budgets for base in (BASELINE, SOURCE_ONLY)}  # 0 labels: source-only
    return wanted


def _summary_options(analysis: Any) -> dict[str, Any]:
    return {"metric": analysis.metric, "correction": analysis.correction, "margin": analysis.margin,
            "max_seeds": analysis.max_seeds}


def longest_first(cells: list[Cell]) -> list[Cell]:
    """The cells in the order worker processes should take them: the largest label budgets first ('all', and
    0 labels — those train on the whole unlabeled pool), so the grid ends on short cells and no process waits
    long for the last one. Within a budget the grid's order is kept. The order changes no result: every cell
    is seeded on its own."""
    return sorted(cells, key=lambda c: -(float("inf") if c.shots in ("all", 0) else int(c.shots)))


def _execute(todo, runner, setup, workers, on_cell, done, total, spans):
    """Yield finished run records as cells complete (serially here, or in the `workers` processes, longest
    first); append each cell's span (where and when it ran) to `spans`."""
    if workers is None:
        for cell in todo:
            if on_cell:
                on_cell(cell, None, done, total)
            run, span = _timed_run(runner, cell, None)
            spans.append(span)
            done += 1
            if on_cell:
                on_cell(cell, run, done, total)
            yield run
        return
    pending = {workers.pool.submit(_run_in_worker, setup, cell): cell for cell in longest_first(todo)}
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                cell = pending.pop(future)
                run, span = future.result()
                spans.append(span)
                done += 1
                if on_cell:
                    on_cell(cell, run, done, total)
                yield run
    except BaseException:
        for future in pending:
            future.cancel()
        raise
