"""compare: paired grids, resume, refusals, verdicts on constructed helps/hurts cases, outputs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner
from conftest import kill_after_runs

import transferlab
from transferlab.cli import app
from transferlab.compare import CompareConfig, rebuild, run_comparison
from transferlab.compare.config import resolve_config
from transferlab.compare.statistics import CELL_KEYS
from transferlab.errors import ConfigError

runner = CliRunner()


def _patches(n_per_class: int, seed: int, noise: float = 1.0, amp: float = 0.25, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """8×8 images: class c adds a faint 3×3 patch at one of four places to strong noise (hard with 1 label)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.uniform(0, noise, size=(len(y), 8, 8)).astype(np.float32)
    corners = [(0, 0), (0, 5), (5, 0), (5, 5)]
    for i, c in enumerate(y):
        r, k = corners[c]
        x[i, r : r + 3, k : k + 3] += amp
    return np.clip(x, 0, 1), y


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cmp")
    x, y = _patches(150, seed=0)
    np.savez(root / "source.npz", x=x, y=y)
    x, y = _patches(40, seed=1)
    np.savez(root / "target.npz", x=x, y=y)
    cfg = transferlab.TrainConfig(epochs=20, lr=3e-3)
    transferlab.pretrain(str(root / "source.npz"), backbone="mlp", backbone_config={"hidden": [32], "dropout": 0.0},
                         out=root / "related", train=cfg)
    rng = np.random.default_rng(5)
    noise = rng.uniform(0, 1, size=(400, 8, 8)).astype(np.float32)
    np.savez(root / "noise.npz", x=noise, y=rng.integers(0, 4, 400))
    transferlab.pretrain(str(root / "noise.npz"), backbone="mlp", backbone_config={"hidden": [32], "dropout": 0.0},
                         out=root / "noise", train=transferlab.TrainConfig(epochs=30, lr=1e-2))
    return {"root": root, "target": root / "target.npz", "related": root / "related", "noise": root / "noise"}


def _config(setup, pretrained="related", **kw) -> CompareConfig:
    base = dict(pretrained=str(setup[pretrained]), data=str(setup["target"]), strategies=["scratch", "linear-probe"],
                shots=[1], seeds=2, train={"epochs": 20, "lr": 1e-2})
    return CompareConfig(**(base | kw))


def test_transfer_from_a_related_task_helps(setup, tmp_path):
    # 1 label per class: a linear head needs enough steps to converge on 4 examples
    result = run_comparison(_config(setup, shots=[1], seeds=5, train={"epochs": 150, "lr": 1e-2}), tmp_path / "c")
    cell = next(c for c in result.summary["cells"] if c["strategy"] == "linear-probe")
    assert cell["verdict"] == "helps", cell
    assert set(CELL_KEYS) <= set(cell)
    assert result.ran == 10 and result.failed == 0


def test_a_backbone_pretrained_on_noise_never_helps(setup, tmp_path):
    result = run_comparison(_config(setup, pretrained="noise", shots=["all"], seeds=3), tmp_path / "c")
    cell = next(c for c in result.summary["cells"] if c["strategy"] == "linear-probe")
    assert cell["verdict"] != "helps", cell  # hurts, no-difference or inconclusive: never a false gain
    assert cell["delta_vs_scratch"] < 0


def test_cells_are_paired_and_outputs_written(setup, tmp_path):
    out = tmp_path / "c"
    result = run_comparison(_config(setup, shots=[1, 3], seeds=2, strategies=["linear-probe", "full"]), out)
    assert sorted(p.name for p in out.iterdir()) == [".transferlab-manifest.json", "config.yaml", "report.html", "results.csv",
                                                     "runs.sqlite", "summary.json"]
    runs = result.runs
    assert len(runs) == 3 * 2 * 2  # scratch added automatically
    by_pair: dict = {}
    for r in runs:
        by_pair.setdefault((r["shots"], r["seed"]), set()).add(r["n_train"])
    assert all(len(v) == 1 for v in by_pair.values())  # all strategies saw the same number of examples
    summary = json.loads((out / "summary.json").read_text())
    assert [(c["strategy"], c["shots"]) for c in summary["cells"]][:3] == [("scratch", 1), ("linear-probe", 1), ("full", 1)]
    assert set(summary["recommendation"]) == {"1", "3"}
    assert (out / "results.csv").read_text().count("\n") == 1 + len(runs)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["seeds"] == 2 and len(saved["pretrained_sha256"]) == 64
    for r in runs:
        assert r["train_flops"] > 0 and r["history"] and "elapsed_seconds" in r["history"][0]
    lp = next(r for r in runs if r["strategy"] == "linear-probe")
    full = next(r for r in runs if r["strategy"] == "full" and r["shots"] == lp["shots"] and r["seed"] == lp["seed"])
    assert lp["trainable_params"] < full["trainable_params"] == full["total_params"]


def test_restart_skips_finished_runs_and_refuses_a_changed_config(setup, tmp_path):
    out = tmp_path / "c"
    first = run_comparison(_config(setup), out)
    again = run_comparison(_config(setup), out)
    assert (again.ran, again.skipped) == (0, first.ran)
    with sqlite3.connect(out / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == first.ran
    with pytest.raises(ConfigError, match=r"holds a comparison with a different config \(seeds: 2 → 3\); use another --out, or --force"):
        run_comparison(_config(setup, seeds=3), out)
    more = run_comparison(_config(setup, seeds=3), out, force=True)
    assert more.ran == 6 and more.skipped == 0


def test_report_command_rebuilds_from_the_store(setup, tmp_path):
    out = tmp_path / "c"
    run_comparison(_config(setup), out)
    (out / "report.html").unlink()
    (out / "summary.json").unlink()
    summary = rebuild(out)
    assert (out / "report.html").is_file() and json.loads((out / "summary.json").read_text()) == summary
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "holds no comparison (runs.sqlite is missing)" in result.stderr


def test_yaml_config_and_flags(setup, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "pretrained": str(setup["related"]), "data": str(setup["target"]), "shots": "1,all", "seeds": 4,
        "strategies": ["linear-probe", {"name": "partial", "options": {"freeze": 1}, "label": "partial-1"}],
        "train": {"epochs": 3}, "jobs": 2,
    }))
    config, execution = resolve_config(exp, {"seeds": 2, "pretrained": None}, {}, {"lr": 0.05})
    assert config.seeds == 2 and config.shots == [1, "all"] and execution == {"jobs": 2}
    assert [s.label for s in config.strategies] == ["scratch", "linear-probe", "partial-1"]
    assert config.train == {"epochs": 3, "lr": 0.05}
    config, _ = resolve_config(None, {"pretrained": "p", "data": "d", "strategies": "partial,add-layers"},
                               {"freeze": 2, "hidden": [16]}, {})
    assert [(s.name, s.options) for s in config.strategies] == [
        ("scratch", {}), ("partial", {"freeze": 2}), ("add-layers", {"hidden": [16]})]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"bogus": 1}, r"unknown setting\(s\) \['bogus'\]"),
        ({"strategies": ["dora"]}, "unknown strategy 'dora'"),
        ({"strategies": [{"name": "partial", "options": {"freeze": 0}}]}, "--freeze must be a whole number ≥ 1; got 0"),
        ({"strategies": ["full", {"name": "full"}]}, r"strategy labels must be unique; \['full'\] appear twice"),
        ({"seeds": 0}, "--seeds must be a whole number ≥ 1; got 0"),
        ({"seeds": "many"}, r"--seeds must be a whole number ≥ 1; got 'many' \(or 'auto'"),
        ({"seeds": "auto", "max_seeds": 1}, "--max-seeds must be a whole number ≥ 2"),
        ({"metric": "f1"}, "--metric 'f1' is not known; allowed: accuracy, balanced-accuracy, macro-f1"),
        ({"correction": "bonferroni"}, "--correction 'bonferroni' is not known; allowed: holm, bh, none"),
        ({"margin": 2}, "--margin 2 must be a number between 0 and 1"),
        ({"shots": "1,x"}, "shots must be a whole number of examples per class"),
        ({"train": {"seed": 3}}, r"train settings \['seed'\] are not allowed in a comparison"),
    ],
)
def test_config_errors(settings, message, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"pretrained": "p", "data": "d", **settings}))
    with pytest.raises(ConfigError, match=message):
        resolve_config(exp, {}, {}, {})


def test_option_flag_for_no_listed_strategy_is_refused():
    with pytest.raises(ConfigError, match=r"--freeze applies to no strategy in \['full'\]"):
        resolve_config(None, {"pretrained": "p", "data": "d", "strategies": "full"}, {"freeze": 2}, {})


def test_cli_json_and_jobs(setup, tmp_path):
    result = runner.invoke(app, ["compare", str(setup["related"]), "--data", str(setup["target"]), "--strategies",
                                 "linear-probe", "--shots", "1", "--seeds", "2", "--epochs", "5", "--jobs", "2",
                                 "--out", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ran"] == 4 and payload["failed"] == 0 and len(payload["cells"]) == 2
    with sqlite3.connect(tmp_path / "c" / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(DISTINCT strategy || shots || seed) FROM runs").fetchone()[0] == 4


def test_killed_compare_resumes_with_exactly_one_run_per_cell(setup, tmp_path):
    out = tmp_path / "c"
    args = [sys.executable, "-m", "transferlab", "compare", str(setup["related"]), "--data", str(setup["target"]),
            "--strategies", "linear-probe,full", "--shots", "1,5", "--seeds", "3", "--epochs", "60", "--out", str(out),
            "--quiet"]
    env = dict(os.environ, TRANSFERLAB_THREADS="1")
    _, alive = kill_after_runs(args, out / "runs.sqlite", 4, timeout=120, env=env)
    assert alive, "compare finished before it could be killed; make the runs longer"
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "runs.sqlite") as db:
        rows = db.execute("SELECT strategy, shots, seed, status FROM runs").fetchall()
    assert len(rows) == 3 * 2 * 3 == len(set(rows))
    assert {r[3] for r in rows} == {"finished"}


def test_seeds_auto_adds_seeds_only_while_undecided_and_resumes(setup, tmp_path):
    out = tmp_path / "auto"
    args = ["compare", str(setup["related"]), "--data", str(setup["target"]), "--out", str(out),
            "--strategies", "scratch,linear-probe", "--shots", "1", "--seeds", "auto", "--max-seeds", "5",
            "--epochs", "150", "--lr", "0.01", "--correction", "bh", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["analysis"]["seeds"] == "auto" and summary["analysis"]["looks"] == [3, 5]
    assert summary["analysis"]["correction"] == "bh" and "Benjamini" in summary["analysis"]["correction_name"]
    probe = next(c for c in summary["cells"] if c["strategy"] == "linear-probe")
    assert probe["decided"] or probe["n_seeds"] == 5  # stopped early only when decided
    assert probe["n_seeds"] in (3, 5) and summary["ran"] == 2 * probe["n_seeds"]
    with sqlite3.connect(out / "runs.sqlite") as db:
        records = [json.loads(r[0]) for r in db.execute("SELECT record FROM runs")]
    assert all(len(r["test_predictions"]) == len(r["test_labels"]) > 0 for r in records)
    again = run_comparison(_config(setup, shots=[1], seeds="auto", max_seeds=5, metric="macro-f1",
                                   train={"epochs": 150, "lr": 1e-2}), out)
    assert again.ran == 0 and again.summary["analysis"]["metric"] == "macro-f1"  # verdicts re-read, no new runs
    rebuilt = rebuild(out)
    assert rebuilt["analysis"]["metric"] == "macro-f1" and rebuilt["analysis"]["seeds"] == "auto"
