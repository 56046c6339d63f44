"""Data-parallel training with torch.distributed (2 CPU processes, gloo): ranks end identical, and match one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from transferlab.cli import app

HERE = Path(__file__).parent
runner = CliRunner()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    return env | {"OMP_NUM_THREADS": "1", "TRANSFERLAB_THREADS": "1"}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """tests/ddp_worker.py under torchrun with 2 processes: weights and records of each rank."""
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(HERE / "ddp_worker.py"), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "elapsed_seconds"} for h in history]


def test_both_ranks_end_with_identical_weights_and_metrics(two_ranks):
    sys.path.insert(0, str(HERE))
    from ddp_worker import CASES

    r0, r1 = (json.loads((two_ranks / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["world"], r1["world"]) == (2, 2)
    for name in CASES:
        w0, w1 = (load_file(str(two_ranks / f"{name}-rank{r}.safetensors")) for r in (0, 1))
        assert w0.keys() == w1.keys()
        assert all(torch.equal(w0[k], w1[k]) for k in w0), f"{name}: ranks differ"  # BatchNorm buffers too
        assert r0[name]["metrics"] == r1[name]["metrics"]  # reduced across ranks: the same numbers everywhere
        assert _without_times(r0[name]["history"]) == _without_times(r1[name]["history"])
        assert r0[name]["processes"] == 2


def test_two_processes_train_like_one_with_the_same_global_batch(two_ranks):
    """Each global batch is split between the ranks and gradients averaged: the same optimisation as one
    process, up to float summation order (no dropout; BatchNorm statistics are per rank, so cnn is looser)."""
    sys.path.insert(0, str(HERE))
    from ddp_worker import CASES, run_case

    ranked = json.loads((two_ranks / "rank0.json").read_text())
    for name in CASES:
        model, run, metrics = run_case(name)
        assert run.config["processes"] == 1
        dist_hist, single_hist = ranked[name]["history"], run.history
        tolerance = 0.05 if name.startswith("cnn") else 1e-4
        for d, s in zip(dist_hist, single_hist):
            assert d["train_loss"] == pytest.approx(s["train_loss"], abs=tolerance), name
        assert abs(ranked[name]["metrics"]["accuracy"] - metrics["accuracy"]) <= 0.01, name
        if not name.startswith("cnn"):  # the same weights, up to summation order
            dist_weights = load_file(str(two_ranks / f"{name}-rank0.safetensors"))
            for k, v in model.state_dict().items():
                assert torch.allclose(dist_weights[k], v, atol=1e-4), (name, k)


def test_indivisible_global_batch_is_refused(two_ranks):
    record = json.loads((two_ranks / "rank0.json").read_text())
    assert record["indivisible_batch"] == (
        "--batch-size 15 must be divisible by the number of processes (2): each process trains on batch_size / 2 "
        "examples of every batch; pass --batch-size 14 or 16"
    )


def test_cli_nproc_2_matches_one_process_on_digits(tmp_path):
    """`transferlab pretrain --nproc 2` starts torchrun: only rank 0 prints and writes; accuracy within 0.01."""
    from transferlab import TrainConfig, pretrain

    args = ["pretrain", "--data", "digits", "--backbone", "mlp", "--hidden", "64", "--dropout", "0", "--epochs", "3",
            "--batch-size", "32", "--seed", "0", "--device", "cpu"]
    done = subprocess.run([sys.executable, "-m", "transferlab", *args, "--out", str(tmp_path / "ddp"), "--nproc", "2",
                           "--json"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 1 printed nothing
    ddp = json.loads(lines[0])
    single = pretrain("digits", backbone="mlp", backbone_config={"hidden": [64], "dropout": 0.0}, out=tmp_path / "one",
                      train=TrainConfig(epochs=3, batch_size=32, seed=0, device="cpu"))
    print(f"digits mlp test accuracy: 2 processes {ddp['test_accuracy']:.4f}, 1 process {single.test_accuracy:.4f}")
    assert abs(ddp["test_accuracy"] - single.test_accuracy) <= 0.01
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["training"]["train"]["processes"] == 2 and config["training"]["train"]["device"] == "cpu"
    assert not (tmp_path / "ddp" / "checkpoint.pt").exists()


def test_launch_returns_the_exit_status_of_the_failed_process(monkeypatch):
    """A user error in a process (status 2) is the launcher's status; torchrun's own report stays quiet."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from transferlab.engine.distributed import launch

    calls = []

    def failing(args):
        calls.append((args.nproc_per_node, args.module, args.training_script, args.training_script_args))
        raise ChildFailedError("transferlab", {0: ProcessFailure(0, 123, 2, "<N/A>")})

    monkeypatch.setattr(torchrun, "run", failing)
    assert launch(2, ["pretrain", "--out", "m"]) == 2
    assert calls == [("2", True, "transferlab", ["pretrain", "--out", "m"])]
    monkeypatch.setattr(torchrun, "run", lambda args: None)
    assert launch(2, ["pretrain"]) == 0


def test_nproc_rebuilds_the_command_for_torchrun(tmp_path, monkeypatch):
    """The launcher passes the options given on the command line (not --nproc) to each process."""
    import transferlab.engine.distributed as distributed

    seen: list = []
    monkeypatch.setattr(distributed, "launch", lambda n, argv: seen.append((n, argv)) or 0)
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.invoke(app, ["finetune", "models/src", "--data", "digits", "--shots", "5", "--no-cache", "--nproc", "3",
                              "--batch-size", "48", "--lr", "0.01", "--json"])
    assert res.exit_code == 0, res.output
    assert seen == [(3, ["finetune", "models/src", "--data", "digits", "--no-cache", "--shots", "5", "--batch-size", "48",
                         "--lr", "0.01", "--json"])]


def test_nproc_errors(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.invoke(app, ["pretrain", "--data", "digits", "--nproc", "0"])
    assert res.exit_code == 2 and "--nproc must be a whole number ≥ 1; got 0" in res.stderr
    res = runner.invoke(app, ["pretrain", "--data", "digits", "--nproc", "2", "--batch-size", "33"])  # before launching
    assert res.exit_code == 2 and "--batch-size 33 must be divisible by the number of processes (2)" in res.stderr
    monkeypatch.setenv("WORLD_SIZE", "4")
    res = runner.invoke(app, ["pretrain", "--data", "digits", "--nproc", "2"])
    assert res.exit_code == 2 and "--nproc 2 but torchrun started 4 processes; drop --nproc under torchrun" in res.stderr
