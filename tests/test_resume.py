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
