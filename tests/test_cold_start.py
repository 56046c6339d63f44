"""Cold start: `evaluate` and `predict` on an image model import no heavy optional library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from transferlab import api
from transferlab.engine import TrainConfig

HEAVY = ("torchmetrics", "scipy", "sklearn", "matplotlib", "transformers", "sentence_transformers")


def test_evaluate_and_predict_import_nothing_heavy(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.integers(0, 255, (60, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    api.pretrain(str(tmp_path / "d.npz"), backbone="cnn", out=tmp_path / "src", train=TrainConfig(epochs=1), progress=False)
    api.finetune(tmp_path / "src", str(tmp_path / "d.npz"), out=tmp_path / "tgt", train=TrainConfig(epochs=1),
                 progress=False)
    env = dict(os.environ, PYTHONPATH=str(Path(api.__file__).parents[1]))
    for args in (["evaluate", str(tmp_path / "tgt")], ["predict", str(tmp_path / "tgt"), str(tmp_path / "d.npz")]):
        run = subprocess.run([sys.executable, "-X", "importtime", "-m", "transferlab", *args, "--quiet"], env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in run.stderr.splitlines() if "|" in line}
        assert "torch" in imported and not imported & set(HEAVY), sorted(imported & set(HEAVY))
