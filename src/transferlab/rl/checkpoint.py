"""Checkpoints of an RL run: continue a killed `pretrain/finetune --env --out DIR` with `--resume`.

A checkpoint is written beside the run's `--out`, in its run-private folder `.NAME.run/checkpoint.pt`
(artifacts/model_folder.run_dir; atomically, removed with the folder once the model is saved) at the start of a
rollout, every `checkpoint_every` environment steps. It holds everything the learner owns: the network
(adapters included), the optimiser, SB3's counters (steps, updates, DQN's target-update clock and
exploration rate), DQN's replay buffer, the episode statistics, the learning curve so far, and every RNG
(torch, numpy, python, the action space) and, for a run that keeps its best evaluated policy, that policy's
weights. It is saved with `torch.save` and read with `weights_only=True`:
tensors and plain containers only, never code — SB3's own zip/pickle format is not used.

What is **not** restored, and why: the simulator state of each environment in the middle of its episode.
Saving it would mean pickling the environment objects (a user's environment may hold anything), which
transferlab refuses to load. So a resumed run **restarts its current rollout**: the environments are reset
(with seeds derived from the run seed and the step count, so a resume is itself deterministic) and the
episodes that were in flight when the run was killed are abandoned. For PPO/A2C nothing else is lost
(checkpoints sit at rollout boundaries, where the rollout buffer is empty); for DQN the replay buffer keeps
every transition collected before the checkpoint. The learning curve up to the checkpoint is identical to
an uninterrupted run's; after it, the run continues from the same weights on different episodes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ArtifactError, ConfigError

CHECKPOINT = "checkpoint.pt"
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _np_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def save_checkpoint(folder: Path, *, identity: dict[str, Any], model: Any, callback: Any) -> None:
    """Write `folder/checkpoint.pt` atomically (the previous one stays loadable until the rename)."""
    from ..artifacts.files import atomic_write

    payload: dict[str, Any] = {
        "identity": identity,
        "policy": {k: v.detach().clone() for k, v in model.policy.state_dict().items()},
        "optimizer": model.policy.optimizer.state_dict(),
        "counters": {"num_timesteps": int(model.num_timesteps), "n_updates": int(getattr(model, "_n_updates", 0)),
                     "n_calls": int(getattr(model, "_n_calls", 0)),
                     "episode_num": int(getattr(model, "_episode_num", 0)),
                     "exploration_rate": float(getattr(model, "exploration_rate", 0.0))},
        "episodes_info": [dict(e) for e in (model.ep_info_buffer or [])],
        "curve": {"curve": callback.curve, "episodes": callback.episodes, "next": callback.next,
                  "seconds": callback.seconds_so_far(), "cpu": callback.cpu_so_far(),
                  "best": getattr(callback, "best", None)},
        "rng": {"torch": torch.get_rng_state(), "numpy": _np_state(), "python": list(random.getstate()[1]),
                "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
                "action_space": model.action_space.np_random.bit_generator.state},
    }
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None:
        payload["replay_buffer"] = {"pos": int(buffer.pos), "full": bool(buffer.full),
                                    **{k: torch.from_numpy(np.ascontiguousarray(getattr(buffer, k)))
                                       for k in _BUFFER_ARRAYS}}

    def write(f: Any) -> None:
        torch.save(payload, f)

    atomic_write(folder / CHECKPOINT, write)


def load_checkpoint(folder: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Read `folder/checkpoint.pt` (tensors and plain containers only) and check it belongs to this run."""
    path = folder / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"--resume: {folder} holds no RL checkpoint ({CHECKPOINT}); run without --resume to start "
                          "(a run keeps its checkpoint beside --out, in this folder)")
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001  (a truncated or foreign file)
        raise ArtifactError(f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                            "run without --resume to start anew") from None
    stored = payload.get("identity")
    if stored != identity:
        changes = [f"{k}: {stored.get(k)!r} → {identity.get(k)!r}" for k in sorted(set(stored or {}) | set(identity))
                   if (stored or {}).get(k) != identity.get(k)]
        raise ConfigError(f"--resume: the checkpoint in {folder} is of a different run ({'; '.join(changes)}); "
                          "resume with the same options, or start anew without --resume")
    return payload


def restore(model: Any, payload: dict[str, Any], seed: int) -> None:
    """Put a checkpoint's learner state into a freshly built (and adapted) model; reset the environments."""
    model.policy.load_state_dict(payload["policy"])
    model.policy.optimizer.load_state_dict(payload["optimizer"])
    c = payload["counters"]
    model.num_timesteps = c["num_timesteps"]
    model._n_updates = c["n_updates"]
    if hasattr(model, "_n_calls"):
        model._n_calls = c["n_calls"]
    if hasattr(model, "_episode_num"):
        model._episode_num = c["episode_num"]
    if hasattr(model, "exploration_rate"):
        model.exploration_rate = c["exploration_rate"]
    from collections import deque

    model.ep_info_buffer = deque(payload["episodes_info"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)
    buffer = payload.get("replay_buffer")
    if buffer is not None:
        rb = model.replay_buffer
        for k in _BUFFER_ARRAYS:
            setattr(rb, k, buffer[k].numpy().copy())
        rb.pos, rb.full = buffer["pos"], buffer["full"]
    rng = payload["rng"]
    torch.set_rng_state(rng["torch"])
    s = rng["numpy"]
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"]))
    random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))
    model.action_space.np_random.bit_generator.state = rng["action_space"]
    # The episodes in flight at the kill are not restored (see the module docstring): fresh, seeded ones.
    model.env.seed(seed + 7919 * c["num_timesteps"])
    model._last_obs = None
