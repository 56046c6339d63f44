"""--device and --precision: resolution, refusals naming the device, the device in the run record, and the GPU check script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.engine import TrainConfig
from transferlab.engine.device import autocast, resolve_device, to_device
from transferlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without a GPU")


def test_auto_is_the_best_available_device():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_device_and_precision_are_refused():
    with pytest.raises(ConfigError, match=r"--device 'tpu' is not one of \['auto', 'cpu', 'cuda', 'mps'\]"):
        TrainConfig(device="tpu")
    with pytest.raises(ConfigError, match=r"--precision 'fp8' is not one of \['fp32', 'bf16'\]"):
        TrainConfig(precision="fp8")


@no_gpu
def test_cuda_and_bf16_are_refused_without_a_gpu():
    with pytest.raises(ConfigError, match=r"--device cuda: no CUDA GPU is visible to torch .*; use --device cpu, "
                                          r"or --device auto to use a GPU only when there is one"):
        TrainConfig(device="cuda")
    with pytest.raises(ConfigError, match=r"--precision bf16 runs on CUDA only; the device is 'cpu' — use "
                                          r"--precision fp32, or --device cuda on a machine with a GPU"):
        TrainConfig(device="cpu", precision="bf16")
    if not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match=r"the device is 'auto' \(resolved to 'cpu' here\)"):
            TrainConfig(precision="bf16")
        with pytest.raises(ConfigError, match="--device mps: Apple's Metal backend is not available"):
            TrainConfig(device="mps")
    res = runner.invoke(app, ["pretrain", "--data", "digits", "--device", "cuda", "--out", "never"])
    assert res.exit_code == 2 and "--device cuda: no CUDA GPU is visible" in res.stderr
    assert not Path("never").exists()


def test_fp32_on_cpu_is_plain_and_tensors_stay_put():
    x = torch.ones(3)
    assert to_device(x, torch.device("cpu")) is x  # no copy on its own device
    with autocast(torch.device("cpu"), "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_run_record_holds_the_device(tmp_path, tiny_split):
    from transferlab.engine.run import train_run
    from transferlab.models import create_backbone
    from transferlab.strategies import create_strategy

    backbone = create_backbone("mlp", tiny_split.task.input_spec, hidden=[8])
    _, run, _ = train_run(backbone, tiny_split, create_strategy("full"), TrainConfig(epochs=1, device="auto"))
    assert run.config["device"] == resolve_device("auto").type and run.config["processes"] == 1
    assert run.config["precision"] == "fp32"


@no_gpu
def test_gpu_check_script_stops_with_a_clear_message_without_a_gpu():
    import sys

    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "gpu_check: no CUDA GPU is visible to torch" in done.stderr and "nothing was run" in done.stderr
    assert done.stdout == ""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3 and "run this on a machine with an NVIDIA GPU" in done.stderr
