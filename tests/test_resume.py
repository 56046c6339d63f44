"""Exact resume: a run interrupted anywhere and resumed ends bit-identical to one never interrupted."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from transferlab.engine import TrainConfig, fit, seed_everything
from transferlab.engine import checkpoint as ckpt
from transferlab.errors import ConfigError
from transferlab.models import HeadSpec, TransferModel, create_backbone
from transferlab.strategies.seed_strategies import Full


class Interrupted(Exception):
    pass


class Jitter(Full):
    """Full fine-tuning whose loss term draws from python's and numpy's global RNGs each step, as user code may."""

    name = "jitter"
    has_regularizer = True

    def regularizer(self, model):
        return torch.tensor(1e-3 * random.random() + 1e-3 * float(np.random.rand()))


CFG = TrainConfig(epochs=6, batch_size=8, lr=5e-3, schedule="cosine", seed=3, threads=1)


def _run(split, path=None, *, stop_at=None, resume=False, every=None):
    seed_everything(CFG.seed)
    model = TransferModel(create_backbone("mlp", split.task.input_spec, hidden=[16], dropout=0.3), HeadSpec(3))
    strategy = Jitter()
    strategy.prepare(model)
    calls = {"n": 0}

    def on_step(step, per_epoch):
        calls["n"] += 1
        if stop_at is not None and calls["n"] == stop_at:
            raise Interrupted

    tensors = [torch.from_numpy(a) for a in (split.x_train, split.y_train, split.x_val, split.y_val)]
    run = fit(model, strategy, *tensors, CFG, on_step=on_step, checkpoint=path, checkpoint_every=every, resume=resume)
    return model, run


def _outcome(model, run):
    return ({k: v.clone() for k, v in model.state_dict().items()}, run.history, run.best_epoch, run.val_value,
            run.steps)


def _same(a, b) -> bool:
    sa, sb = a[0], b[0]
    weights = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    history = [{k: v for k, v in h.items() if k != "elapsed_seconds"} for h in a[1]] == \
              [{k: v for k, v in h.items() if k != "elapsed_seconds"} for h in b[1]]
    return weights and history and a[2:] == b[2:]


def _interrupted(split, path, stops, every=3):
    """Interrupt at each of `stops` (steps counted from each restart), resuming every time; then finish."""
    for stop in stops:
        with pytest.raises(Interrupted):
            _run(split, path, stop_at=stop, resume=True, every=every)
    return _outcome(*_run(split, path, resume=True, every=every))


def test_resume_after_interruptions_is_bit_identical(tiny_split, tmp_path):
    reference = _outcome(*_run(tiny_split))
    rng = np.random.default_rng(0)
    stops = [int(s) for s in rng.integers(1, 12, size=6)]  # 6 interruptions at random steps
    assert _same(_interrupted(tiny_split, tmp_path / ckpt.CHECKPOINT, stops), reference)


@pytest.mark.parametrize("component", ckpt.COMPONENTS)
def test_leaving_any_component_out_breaks_exact_resume(component, tiny_split, tmp_path, monkeypatch):
    reference = _outcome(*_run(tiny_split))
    monkeypatch.setattr(ckpt, "COMPONENTS", tuple(c for c in ckpt.COMPONENTS if c != component))
    # interrupt late (after the best epoch so far) and mid-epoch, so every component is live
    assert not _same(_interrupted(tiny_split, tmp_path / ckpt.CHECKPOINT, [40], every=1), reference)


def test_a_checkpoint_of_other_settings_is_refused(tiny_split, tmp_path):
    path = tmp_path / ckpt.CHECKPOINT
    with pytest.raises(Interrupted):
        _run(tiny_split, path, stop_at=5, every=2)
    global CFG
    saved, CFG = CFG, TrainConfig(epochs=6, batch_size=8, lr=1e-2, schedule="cosine", seed=3, threads=1)
    try:
        with pytest.raises(ConfigError, match=r"was written by a run with other settings \(changed: \['lr'\]\)"):
            _run(tiny_split, path, resume=True)
    finally:
        CFG = saved
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="is not a readable transferlab checkpoint"):
        _run(tiny_split, path, resume=True)


def _cli(*args):
    import sys

    return [sys.executable, "-m", "transferlab", *map(str, args)]


def test_sigkill_at_random_points_then_resume_gives_identical_weights(tmp_path):
    """The command line: kill a finetune five times at random moments, resume each time, compare."""
    import os
    import signal
    import subprocess
    import time

    from safetensors.torch import load_file

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 60)
    x = rng.uniform(0, 0.3, size=(len(y), 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 2 * c : 2 * c + 3] += 0.5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    env = dict(os.environ, TRANSFERLAB_THREADS="1")
    subprocess.run(_cli("pretrain", "--data", tmp_path / "d.npz", "--backbone", "mlp", "--hidden", "32", "--epochs", "2",
                        "--out", tmp_path / "src", "-q"), check=True, env=env, capture_output=True)
    args = ["finetune", tmp_path / "src", "--data", tmp_path / "d.npz", "--strategy", "full", "--epochs", "40",
            "--schedule", "cosine", "--batch-size", "8", "--checkpoint-every", "3", "--seed", "5", "-q"]
    subprocess.run(_cli(*args, "--out", tmp_path / "whole"), check=True, env=env, capture_output=True)

    out = tmp_path / "killed"
    kills = 0
    for attempt in range(30):
        proc = subprocess.Popen(_cli(*args, "--out", out, "--resume"), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        checkpoint = tmp_path / ".killed.run" / "checkpoint.pt"  # beside --out, never inside it
        seen = checkpoint.stat().st_mtime_ns if checkpoint.exists() else 0
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:  # wait for progress, then kill at a random moment
            if checkpoint.exists() and checkpoint.stat().st_mtime_ns != seen:
                time.sleep(float(rng.uniform(0, 0.05)))
                break
            time.sleep(0.005)
        if proc.poll() is not None:
            break  # it finished before we killed it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if kills == 5:
            break
    assert kills == 5, "the run finished too fast to be killed five times; make it longer"
    done = subprocess.run(_cli(*args, "--out", out, "--resume"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (out / "checkpoint.pt").exists() and not (tmp_path / ".killed.run").exists()  # finished: nothing left
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_errors(tmp_path):
    import subprocess

    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((30, 4)), y=np.repeat(np.arange(3), 10))
    subprocess.run(_cli("pretrain", "--data", tmp_path / "d.npz", "--backbone", "mlp", "--epochs", "1", "--out",
                        tmp_path / "m", "-q"), check=True, capture_output=True)
    done = subprocess.run(_cli("pretrain", "--data", tmp_path / "d.npz", "--backbone", "mlp", "--epochs", "1", "--out",
                               tmp_path / "m", "--resume"), capture_output=True, text=True)
    assert done.returncode == 2 and "holds a finished model; there is nothing to resume" in done.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"x")
    done = subprocess.run(_cli("pretrain", "--data", tmp_path / "d.npz", "--backbone", "mlp", "--epochs", "1", "--out",
                               tmp_path / "run"), capture_output=True, text=True)
    assert done.returncode == 2 and "holds an unfinished run (checkpoint.pt); pass --resume" in done.stderr
