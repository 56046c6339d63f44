"""Reinforcement learning as a task kind: environments instead of datasets, returns instead of accuracy.

Pretrain an agent (stable-baselines3 PPO or DQN) on a source environment, adapt it to a target one with
the strategy registry, and compare against learning from scratch on transfer metrics (jumpstart,
asymptotic return, area under the learning curve, time to threshold, transfer ratio). Importing this
package is light: gymnasium, stable-baselines3 and torch load when a function runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnvSpec", "compare_agents", "finetune_agent", "load_agent_folder", "pretrain_agent"]


def __getattr__(name: str) -> Any:
    if name in ("pretrain_agent", "finetune_agent"):
        from . import api

        return getattr(api, name)
    if name == "load_agent_folder":
        from .folder import load_agent_folder

        return load_agent_folder
    if name == "EnvSpec":
        from .envs import EnvSpec

        return EnvSpec
    if name == "compare_agents":
        from .compare import compare_agents

        return compare_agents
    raise AttributeError(name)
