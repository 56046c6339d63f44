"""Training checkpoints: everything a run needs to continue bit-identically after a kill.

A checkpoint holds the model, optimiser and scheduler state, the loop position (epoch, step, this
epoch's data order and losses so far), the early-stopping state, the history and timings, and every
RNG state (torch, numpy, python, the data-order generator, and CUDA's when a GPU ran). It is written with `torch.save` to a
temporary file, fsynced and renamed, and read back with `weights_only=True` (CVE-2025-32434): only
tensors and plain containers, never code.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.files import atomic_write
from ..errors import ConfigError

CHECKPOINT = "checkpoint.pt"
# What a checkpoint holds; each component is needed to resume exactly (tests drop each in turn).
COMPONENTS = ("model", "optimizer", "scheduler", "loop", "early_stopping", "history", "rng_torch", "rng_numpy",
              "rng_python", "rng_order")


@dataclass
class LoopState:
    """The training loop's position and bookkeeping (what `fit` carries from step to step)."""

    epoch: int = 1
    position: int = 0  # index into this epoch's order where the next batch starts
    steps: int = 0
    perm: torch.Tensor | None = None
    losses: list[torch.Tensor] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    trained: set[str] = field(default_factory=set)
    best_score: float = -float("inf")
    best_value: float = float("nan")
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"]))


def save_checkpoint(path: Path, *, config: dict[str, Any], state: LoopState, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, order: torch.Generator,
                    unlabeled_order: torch.Generator | None = None) -> None:
    """Write a checkpoint atomically (temporary file in the same folder, fsync, rename)."""
    parts: dict[str, Any] = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "loop": {"epoch": state.epoch, "position": state.position, "steps": state.steps, "perm": state.perm,
                 "losses": list(state.losses), "train_seconds": state.train_seconds,
                 "eval_seconds": state.eval_seconds, "trained": sorted(state.trained)},
        "early_stopping": {"score": state.best_score, "value": state.best_value, "epoch": state.best_epoch,
                           "state": state.best_state},
        "history": state.history,
        "rng_torch": torch.get_rng_state(),
        "rng_numpy": _numpy_state(),
        "rng_python": random.getstate(),
        "rng_order": order.get_state(),
    }
    payload = {"format": "transferlab.checkpoint", "version": 1, "config": config,
               **{k: v for k, v in parts.items() if k in COMPONENTS}}
    if unlabeled_order is not None:  # the unlabeled stream of a strategy that needs one
        payload["rng_unlabeled"] = unlabeled_order.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # dropout on a GPU draws from the CUDA generators
        payload["rng_cuda"] = torch.cuda.get_rng_state_all()  # (not in COMPONENTS: CPU tests can't miss it)
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path, *, config: dict[str, Any], state: LoopState, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, order: torch.Generator,
                    unlabeled_order: torch.Generator | None = None) -> None:
    """Restore everything `save_checkpoint` wrote; refuse a checkpoint of a different configuration."""
    # weights_only=True is explicit, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn the unpickler back on
    # (torch ≥ 2.6 lets that variable override only calls that leave weights_only unset; a test checks it).
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text suggests weights_only=False: never repeat that advice
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        refused = next((line for line in lines if "GLOBAL" in line), None)
        if refused is not None:
            raise ConfigError(f"{path} holds Python objects no transferlab checkpoint contains ({refused}); it was "
                              "not loaded, since unpickling it could run code — delete it to start the run anew") from None
        detail = next((line for line in lines if not line.startswith(("Weights only", "Please file", "Check the"))), "")
        raise ConfigError(f"{path} is not a readable transferlab checkpoint (UnpicklingError: {detail}); "
                          "delete it to start the run anew") from None
    except Exception as err:  # noqa: BLE001 — any unreadable file is the same user-facing problem
        reason = (str(err).splitlines() or [""])[0] or "the file is empty or truncated"
        raise ConfigError(f"{path} is not a readable transferlab checkpoint ({type(err).__name__}: {reason}); "
                          "delete it to start the run anew") from None
    if not isinstance(payload, dict) or payload.get("format") != "transferlab.checkpoint" \
            or not isinstance(payload.get("config"), dict):
        raise ConfigError(f"{path} is not a transferlab checkpoint; delete it to start the run anew")
    try:
        _restore(payload, path, config, state, model, optimizer, scheduler, order)
        if unlabeled_order is not None and "rng_unlabeled" in payload:
            unlabeled_order.set_state(payload["rng_unlabeled"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{path} is a damaged transferlab checkpoint ({type(err).__name__}: "
                          f"{(str(err).splitlines() or [''])[0]}); delete it to start the run anew") from None


def _restore(payload: dict[str, Any], path: Path, config: dict[str, Any], state: LoopState, model: torch.nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: Any, order: torch.Generator) -> None:
    if payload["config"] != config:
        changed = sorted(k for k in set(config) | set(payload["config"]) if config.get(k) != payload["config"].get(k))
        raise ConfigError(f"{path} was written by a run with other settings (changed: {changed}); resume with the "
                          "same settings, or drop --resume to start anew")
    if "model" in payload:
        model.load_state_dict(payload["model"])
    if "optimizer" in payload:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload.get("scheduler") is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if "loop" in payload:
        loop = payload["loop"]
        state.epoch, state.position, state.steps = loop["epoch"], loop["position"], loop["steps"]
        state.perm, state.losses = loop["perm"], list(loop["losses"])
        state.train_seconds, state.eval_seconds = loop["train_seconds"], loop["eval_seconds"]
        state.trained = set(loop["trained"])
    if "early_stopping" in payload:
        es = payload["early_stopping"]
        state.best_score, state.best_value, state.best_epoch, state.best_state = es["score"], es["value"], es["epoch"], es["state"]
    if "history" in payload:
        state.history = list(payload["history"])
    if "rng_torch" in payload:
        torch.set_rng_state(payload["rng_torch"])
    if "rng_numpy" in payload:
        _set_numpy_state(payload["rng_numpy"])
    if "rng_python" in payload:
        random.setstate(payload["rng_python"])
    if "rng_order" in payload:
        order.set_state(payload["rng_order"])
    if payload.get("rng_cuda") is not None and torch.cuda.is_available() \
            and len(payload["rng_cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(payload["rng_cuda"])
