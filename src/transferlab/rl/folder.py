"""RL agents as transferlab model folders: config.json + model.safetensors (+ source_head.safetensors) + README.md.

config.json carries the usual keys (architecture of the `mlp` backbone, input spec, blocks, checksums)
and, under `"rl"`: the algorithm and its hyperparameters, the network, the observation and action
spaces, and where each head sits in the packed output layer (`"heads": {"action": [0, 2], "value": [2, 3]}`).
`source_task` / `target_task` name the environment and its options. Loading verifies every checksum and
rebuilds the agent from these records; nothing is unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .envs import EnvSpec, describe_space


@dataclass
class LoadedAgent:
    path: Path
    config: dict[str, Any]
    backbone_state: dict[str, torch.Tensor]
    head: nn.Module | None  # the packed output layer: the source head (pretrained) or the head (fine-tuned)

    @property
    def env(self) -> EnvSpec:
        task = self.config.get("target_task") if self.config["kind"] == "finetuned" else self.config.get("source_task")
        return EnvSpec.from_dict(task["env"])


def _head_ranges(model: Any) -> dict[str, list[int]]:
    from .agent import heads_of

    ranges, start = {}, 0
    for name, layer in heads_of(model).items():
        n = int(layer.weight.shape[0])
        ranges[name] = [start, start + n]
        start += n
    return ranges


def save_agent_folder(out: Path, model: Any, *, kind: str, algo: Any, algo_options: dict[str, Any],
                      network: dict[str, Any], env: EnvSpec, result: Any, overwrite: bool,
                      source: LoadedAgent | None = None) -> Path:
    """Write an agent as a pretrained (backbone + source head) or fine-tuned (backbone + head) folder."""
    from ..artifacts.model_folder import save_model_folder
    from .agent import backbone_of, packed_head

    head, spec = packed_head(model)
    ranges = _head_ranges(model)
    names = [f"{name}:{i}" if hi - lo > 1 or name != "value" else "value"
             for name, (lo, hi) in ranges.items() for i in range(hi - lo)]
    task = {"kind": "rl", "env": env.to_dict(), "algorithm": algo.name, "steps": result.steps, "seed": result.seed}
    rl = {
        "algorithm": algo.name,
        "algo_options": algo_options,
        "network": network,
        "observation_space": describe_space(model.observation_space),
        "action_space": describe_space(model.action_space),
        "heads": ranges,
        "learning_curve": [{"step": p["step"], "return": p["return"]} for p in result.curve],
        "eval": {"episodes": len(result.curve[0]["returns"]) if result.curve else 0, "seed": 10_000,
                 "policy": "greedy"},
    }
    if getattr(result, "kept", None):  # pretraining: which evaluation point the saved weights are
        rl["kept"] = dict(result.kept)
    info: dict[str, Any] = {"task_kind": "rl", "rl": rl, "metrics": result.metrics,
                            "preprocessing": {"observations": "as the environment returns them"}}
    if kind == "pretrained":
        info |= {"source_task": task, "label_names": [],
                 "training": {"steps": result.steps, "seed": result.seed, "episodes": result.episodes,
                              "train_seconds": result.train_seconds, "cpu_seconds": result.cpu_seconds}}
        return save_model_folder(out, backbone=backbone_of(model), head=None, head_spec=None, info=info,
                                 overwrite=overwrite, source_head=head, source_head_spec=spec)
    assert source is not None
    info |= {"source_task": source.config.get("source_task"), "target_task": task, "label_names": names,
             "training": {"strategy": result.strategy, "strategy_options": result.strategy_options,
                          "heads": result.heads, "steps": result.steps, "seed": result.seed,
                          "episodes": result.episodes, "train_seconds": result.train_seconds,
                          "pretrained": str(source.path),
                          "pretrained_sha256": source.config["weights"]["sha256"]}}
    return save_model_folder(out, backbone=backbone_of(model), head=head, head_spec=spec, info=info,
                             overwrite=overwrite)


def load_agent_folder(ref: str | Path) -> LoadedAgent:
    """Load an RL model folder (path or store name), checksums verified; refuse a folder that holds no agent."""
    from ..artifacts import load_model_folder, resolve_model

    path = resolve_model(ref)
    loaded = load_model_folder(path)
    config = loaded.config
    if config.get("task_kind") != "rl" or not isinstance(config.get("rl"), dict):
        task = (config.get("source_task") or {}).get("data", "a dataset")
        raise ConfigError(f"{ref} is not an RL agent (it was trained on {task}, not an environment); pretrain one "
                          "with `transferlab pretrain --env CartPole-v1 --algo ppo --out DIR`")
    state = {k: v.detach().clone() for k, v in loaded.backbone.state_dict().items()}
    head = loaded.source_head if config["kind"] == "pretrained" else loaded.model.head
    return LoadedAgent(path=path, config=config, backbone_state=state, head=head)
