"""compare --jobs N: the same runs, results and outputs as --jobs 1 (cells seeded one by one, taken by the
workers longest first, reported in the grid's order), a timeline of where the wall time went, and resume
at cell granularity after a kill."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import kill_after_runs

import transferlab
from transferlab.compare import CompareConfig, ComparisonResult, StrategySpec, run_comparison
from transferlab.compare.cells import Cell
from transferlab.compare.grid import longest_first
from transferlab.compare.outputs import grid_order


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """4 classes of 8×8 images (a bright bar per class in noise) and a tiny cnn pretrained on a related task."""
    root = tmp_path_factory.mktemp("jobs")
    for name, seed, n in (("source", 0, 60), ("target", 1, 30)):
        rng = np.random.default_rng(seed)
        y = np.repeat(np.arange(4), n)
        x = rng.uniform(0, 0.5, size=(len(y), 8, 8)).astype(np.float32)
        for i, c in enumerate(y):
            x[i, 2 * c : 2 * c + 2] += 0.4 + 0.1 * seed
        np.savez(root / f"{name}.npz", x=x, y=y)
    transferlab.pretrain(str(root / "source.npz"), backbone="cnn", backbone_config={"channels": [4, 8], "hidden": 16},
                         out=root / "src", train=transferlab.TrainConfig(epochs=3, threads=1))
    return {"root": root, "src": root / "src", "target": root / "target.npz"}


def _config(world) -> CompareConfig:
    return CompareConfig(pretrained=str(world["src"]), data=str(world["target"]),
                         strategies=[StrategySpec("scratch"), StrategySpec("linear-probe"),
                                     StrategySpec("partial", {"freeze": 1}, label="partial --freeze 1"),
                                     StrategySpec("full")],
                         shots=[1, 5, "all"], seeds=2, train={"epochs": 4})


@pytest.fixture(scope="module")
def grids(world, tmp_path_factory) -> dict[int, tuple[ComparisonResult, Path]]:
    """The same grid with --jobs 1 and --jobs 2 (models saved), each run once for the tests that read them."""
    root = tmp_path_factory.mktemp("grids")
    return {jobs: (run_comparison(_config(world), root / f"j{jobs}", jobs=jobs, threads=1, save_models=True),
                   root / f"j{jobs}") for jobs in (1, 2)}


def test_jobs_2_gives_the_runs_and_outputs_of_jobs_1(grids):
    (one, one_dir), (two, two_dir) = grids[1], grids[2]
    assert one.ran == two.ran == 4 * 3 * 2 and one.failed == two.failed == 0
    # the same runs, seed by seed: accuracies and every test prediction
    key = lambda r: (r["strategy"], str(r["shots"]), r["seed"])  # noqa: E731
    assert [key(r) for r in one.runs] == [key(r) for r in two.runs]  # both in the grid's order
    for a, b in zip(one.runs, two.runs):
        assert a["test_accuracy"] == b["test_accuracy"] and a["test_predictions"] == b["test_predictions"], key(a)
    # the same summary and the same results.csv rows in the same order (times aside)
    assert [(c["strategy"], c["shots"], c["verdict"], c["mean"]) for c in one.summary["cells"]] == \
           [(c["strategy"], c["shots"], c["verdict"], c["mean"]) for c in two.summary["cells"]]

    def rows(folder: Path) -> list[tuple[str, ...]]:
        with open(folder / "results.csv") as f:
            return [(r["strategy"], r["shots"], r["seed"], r["test_accuracy"]) for r in csv.DictReader(f)]

    assert rows(one_dir) == rows(two_dir)
    assert [r[:3] for r in rows(two_dir)[:4]] == [(s, "1", "0") for s in
                                                           ("scratch", "linear-probe", "partial --freeze 1", "full")]
    # the report's measures of the saved models are the same
    one_t = json.loads((one_dir / "what_transferred.json").read_text())
    two_t = json.loads((two_dir / "what_transferred.json").read_text())
    assert len(one_t["models"]) == 3 * 3 and one_t["source_accuracy_before"] is not None  # scratch left out
    assert one_t == two_t


def test_the_timeline_says_where_each_cell_ran_and_when(world, grids):
    for jobs in (1, 2):
        result = grids[jobs][0]
        t = result.timeline
        spans, phases = t["cells"], t["phases"]
        assert t["jobs"] == jobs and len(spans) == result.ran == 24
        assert sorted(s["cell"] for s in spans) == sorted(Cell(s, sh, seed).describe() for s in _config(world).strategies
                                                          for sh in (1, 5, "all") for seed in (0, 1))
        assert phases["setup"][0] <= phases["setup"][1] <= phases["cells"][0] <= phases["cells"][1] \
            <= phases["outputs"][0] <= phases["outputs"][1]
        assert all(phases["cells"][0] <= s["start"] <= s["end"] <= phases["cells"][1] for s in spans)
        pids = {s["pid"] for s in spans}
        if jobs == 1:
            assert pids == {os.getpid()} and all(s["ready"] is None for s in spans)
        else:
            assert os.getpid() not in pids and 1 <= len(pids) <= 2
            assert all(phases["cells"][0] <= s["ready"] <= s["start"] for s in spans)
            first = min(spans, key=lambda s: s["start"])
            assert "all shots" in first["cell"]  # the longest cells first


def test_longest_first_takes_the_largest_label_budgets_first_and_keeps_the_grid_order_within_one():
    specs = [StrategySpec("scratch"), StrategySpec("full")]
    cells = [Cell(spec, shots, seed) for shots in (1, 10, "all", 5) for seed in (0, 1) for spec in specs]
    ordered = longest_first(cells)
    assert [c.shots for c in ordered] == ["all"] * 4 + [10] * 4 + [5] * 4 + [1] * 4
    assert [(c.seed, c.label) for c in ordered[:4]] == [(0, "scratch"), (0, "full"), (1, "scratch"), (1, "full")]
    assert sorted(map(repr, ordered)) == sorted(map(repr, cells))
    zero = [Cell(specs[0], 1, 0), Cell(specs[0], 0, 0)]  # 0 labels: trains on the whole unlabeled pool
    assert [c.shots for c in longest_first(zero)] == [0, 1]


def test_grid_order_sorts_runs_finished_in_any_order():
    config = {"shots": [1, "all"], "strategies": [{"name": "scratch", "label": "scratch"},
                                                  {"name": "full", "label": "full"}]}
    runs = [{"strategy": s, "shots": sh, "seed": k} for sh in ("all", 1) for k in (1, 0) for s in ("full", "scratch")]
    runs.append({"strategy": "tfidf", "shots": 1, "seed": 0})  # a reference baseline: after its seed's strategies
    runs.insert(0, {"strategy": "full", "shots": 7, "seed": 0})  # a budget the config does not name: last
    ordered = [(r["strategy"], r["shots"], r["seed"]) for r in grid_order(runs, config)]
    assert ordered == [("scratch", 1, 0), ("full", 1, 0), ("tfidf", 1, 0), ("scratch", 1, 1), ("full", 1, 1),
                       ("scratch", "all", 0), ("full", "all", 0), ("scratch", "all", 1), ("full", "all", 1),
                       ("full", 7, 0)]


def _marked_processes(mark: str) -> list[str]:
    """Command lines of the live processes whose environment holds TEST_GRID_MARK=mark (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"TEST_GRID_MARK={mark}".encode() not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # ended, not yet reaped
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {command[:120]}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_a_killed_jobs_2_compare_resumes_with_exactly_one_run_per_cell(world, tmp_path):
    out = tmp_path / "c"
    args = [sys.executable, "-m", "transferlab", "compare", str(world["src"]), "--data", str(world["target"]),
            "--strategies", "linear-probe,full", "--shots", "1,5,all", "--seeds", "3", "--epochs", "40",
            "--jobs", "2", "--threads", "1", "--out", str(out), "--quiet"]
    mark = f"grid-jobs-kill-{os.getpid()}-{time.time_ns()}"  # in the environment of every process it starts
    _, alive = kill_after_runs(args, out / "runs.sqlite", 3, timeout=180, env=os.environ | {"TEST_GRID_MARK": mark})
    assert alive, "compare finished before it could be killed; make the runs longer"
    if sys.platform.startswith("linux"):  # its workers and their fork server end with it, not train on orphaned
        deadline = time.monotonic() + 20
        while _marked_processes(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _marked_processes(mark), f"processes of the killed compare still run: {_marked_processes(mark)}"
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "runs.sqlite") as db:
        rows = db.execute("SELECT strategy, shots, seed, status FROM runs").fetchall()
    assert len(rows) == 3 * 3 * 3 == len(set(rows))  # scratch (the baseline, added), linear-probe, full
    assert {r[3] for r in rows} == {"finished"}
    with open(out / "results.csv") as f:  # reported in the grid's order, whatever order the cells finished in
        assert [(r["shots"], r["seed"], r["strategy"]) for r in csv.DictReader(f)] == \
               [(sh, str(k), s) for sh in ("1", "5", "all") for k in range(3) for s in ("scratch", "linear-probe", "full")]


def test_workers_started_ahead_run_grid_after_grid_each_with_its_own_data(world, grids, tmp_path):
    """What `transferlab demo --jobs 2` does: the workers start first; each grid's data and model are loaded
    in them for that grid (a second grid on other data gets its own, never the first grid's)."""
    from transferlab.compare.grid import GridWorkers

    configs = {"target": _config(world), "source": _config(world)}
    configs["source"].data = str(world["root"] / "source.npz")
    with GridWorkers(2) as workers:
        ahead = {name: run_comparison(cfg, tmp_path / f"w-{name}", jobs=2, threads=1, workers=workers)
                 for name, cfg in configs.items()}
        assert workers.pool.submit(os.getpid).result() != os.getpid()  # still open: the caller closes it
    for name, cfg in configs.items():  # each against the grid in one process (the target's: the fixture's)
        alone = grids[1][0] if name == "target" else run_comparison(cfg, tmp_path / f"one-{name}", jobs=1, threads=1)
        assert [(r["strategy"], r["shots"], r["seed"], r["test_predictions"]) for r in ahead[name].runs] == \
               [(r["strategy"], r["shots"], r["seed"], r["test_predictions"]) for r in alone.runs], name
    assert ahead["target"].runs[0]["n_test"] != ahead["source"].runs[0]["n_test"]


def test_workers_of_another_count_or_fewer_than_two_are_refused(world, tmp_path):
    from transferlab.compare.grid import GridWorkers
    from transferlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"worker processes are for --jobs 2 or more; got 1"):
        GridWorkers(1)
    with GridWorkers(2) as workers:
        with pytest.raises(ConfigError, match=r"the worker processes given are 2, not --jobs 3; start GridWorkers\(3\)"):
            run_comparison(_config(world), tmp_path / "c", jobs=3, workers=workers)
    assert not (tmp_path / "c").exists()  # refused before anything was written


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads parent processes from /proc")
def test_workers_are_forked_from_one_fork_server_not_from_the_comparison():
    """One server imports torch and transferlab for every worker (docs/compare_speed.md); the comparison's own
    process, which may hold OpenMP threads from its training, is never forked."""
    from transferlab.compare.grid import GridWorkers, _warm

    def parent(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    with GridWorkers(2) as workers:
        pids = set()
        for _ in range(20):  # both started, whichever takes each task
            pids |= {f.result(timeout=120) for f in [workers.pool.submit(_warm, 0.2) for _ in range(2)]}
            if len(pids) == 2:
                break
        assert len(pids) == 2
        parents = {parent(pid) for pid in pids}
        assert len(parents) == 1 and os.getpid() not in parents
        with open(f"/proc/{parents.pop()}/cmdline", "rb") as f:
            assert b"forkserver" in f.read()
