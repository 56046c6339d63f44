"""Agents: stable-baselines3's PPO (policy gradient) and DQN (deep Q-learning) on a transferlab backbone.

The network is built so that transfer has the same parts as everywhere else in transferlab:

- the **backbone** is a registered `mlp` backbone (its blocks `fc1`, `fc2`, … are what `--freeze N`
  counts), used as SB3's features extractor and shared by the actor and the critic
  (`share_features_extractor=True`, `net_arch=dict(pi=[], vf=[])`);
- the **heads** are SB3's output layers: PPO's `action_net` (logits, one per action) and `value_net`
  (the state value); DQN's Q layer (one value per action).

SB3 is only the training algorithm: weights go in and out as plain tensors, never through SB3's own
zip/pickle format (`model.save`/`load` unpickle and are not used for anything a user can hand over).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .envs import EnvSpec, make_env


@dataclass(frozen=True)
class Algorithm:
    """An SB3 algorithm with defaults tuned for the classic-control tasks (rl-baselines3-zoo's CartPole-v1)."""

    name: str
    sb3_class: str
    n_envs: int
    hidden: tuple[int, ...]
    activation: str
    defaults: dict[str, Any] = field(default_factory=dict)


ALGORITHMS = {
    "ppo": Algorithm("ppo", "PPO", n_envs=8, hidden=(64, 64), activation="tanh", defaults=dict(
        learning_rate=1e-3, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
        clip_range=0.2, ent_coef=0.0)),
    "a2c": Algorithm("a2c", "A2C", n_envs=8, hidden=(64, 64), activation="tanh", defaults=dict(ent_coef=0.0)),
    "dqn": Algorithm("dqn", "DQN", n_envs=1, hidden=(256, 256), activation="relu", defaults=dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
        target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04)),
}
# SB3 arguments that are not hyperparameters a user sets here.
_NOT_OPTIONS = {"self", "policy", "env", "policy_kwargs", "seed", "device", "verbose", "tensorboard_log",
                "_init_setup_model", "rollout_buffer_class", "rollout_buffer_kwargs", "replay_buffer_class",
                "replay_buffer_kwargs", "stats_window_size", "use_sde", "sde_sample_freq"}


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown --algo {name!r}; choose one of {sorted(ALGORITHMS)} "
                          "(ppo, a2c: policy gradient; dqn: deep Q-learning)")
    return ALGORITHMS[name]


def _sb3_class(algo: Algorithm) -> type:
    import stable_baselines3

    return getattr(stable_baselines3, algo.sb3_class)


def algo_option_names(algo: Algorithm) -> list[str]:
    params = inspect.signature(_sb3_class(algo).__init__).parameters
    return sorted({*params} - _NOT_OPTIONS | {"n_envs"})


def resolve_algo_options(algo: Algorithm, options: dict[str, Any] | None) -> dict[str, Any]:
    """The algorithm's defaults updated with `options` (strings from the CLI typed like the defaults)."""
    valid = algo_option_names(algo)
    options = dict(options or {})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"--algo {algo.name} has no option(s) {unknown}; valid options are {valid}")
    params = inspect.signature(_sb3_class(algo).__init__).parameters
    merged = {**algo.defaults, "n_envs": algo.n_envs}
    for key, raw in options.items():
        default = merged.get(key, params[key].default if key in params else None)
        merged[key] = _typed_algo_option(key, raw, default)
    return merged


def _typed_algo_option(key: str, raw: Any, default: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if isinstance(default, int):
            return int(raw)
        if raw.lower() == "none":
            return None
        return float(raw)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else "a whole number" if isinstance(default, int) else "a number"
        raise ConfigError(f"--algo-option {key}={raw}: {key} takes {kind}") from None


def _extractor_class() -> type:
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    global _BackboneExtractor
    if _BackboneExtractor is None:

        class BackboneExtractor(BaseFeaturesExtractor):
            """SB3's features extractor = a transferlab backbone (the layers actor and critic share)."""

            def __init__(self, observation_space: Any, hidden: list[int], activation: str) -> None:
                from ..data.task import InputSpec
                from ..models import create_backbone

                spec = InputSpec("vector", tuple(int(s) for s in observation_space.shape))
                backbone = create_backbone("mlp", spec, hidden=list(hidden), activation=activation, dropout=0.0)
                super().__init__(observation_space, backbone.feature_dim)
                self.backbone = backbone

            def forward(self, obs: torch.Tensor) -> torch.Tensor:
                return self.backbone.features(obs)  # (B, obs_dim) -> (B, feature_dim)

        _BackboneExtractor = BackboneExtractor
    return _BackboneExtractor


_BackboneExtractor: type | None = None


def make_vec_env(env: EnvSpec, n_envs: int) -> Any:
    """`n_envs` copies of the environment stepped together in this process (each with a Monitor for returns)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    if n_envs < 1:
        raise ConfigError(f"--algo-option n_envs={n_envs}: it must be a whole number ≥ 1")
    make_env(env)  # validate once, with a clean error, before the vector env builds its copies
    return DummyVecEnv([lambda: Monitor(make_env(env)) for _ in range(n_envs)])


def build_agent(algo: Algorithm, env: EnvSpec, *, seed: int, hidden: list[int], activation: str,
                options: dict[str, Any]) -> Any:
    """A fresh SB3 model whose network is backbone → heads (random weights, seeded)."""
    options = dict(options)
    venv = make_vec_env(env, int(options.pop("n_envs", algo.n_envs)))
    policy_kwargs: dict[str, Any] = {
        "features_extractor_class": _extractor_class(),
        "features_extractor_kwargs": {"hidden": list(hidden), "activation": activation},
    }
    if algo.name in ("ppo", "a2c"):  # actor-critic: one backbone, two heads
        # One shared backbone; the heads sit directly on it. Layers keep the backbone's own (Glorot) init, so
        # the scratch baseline (which re-initialises the backbone) is the same network as a fresh agent.
        policy_kwargs |= {"net_arch": dict(pi=[], vf=[]), "share_features_extractor": True, "ortho_init": False}
    else:
        policy_kwargs |= {"net_arch": []}
    try:
        return _sb3_class(algo)("MlpPolicy", venv, seed=seed, device="cpu", policy_kwargs=policy_kwargs, verbose=0,
                                **options)
    except (ValueError, AssertionError, TypeError) as err:
        raise ConfigError(f"--algo {algo.name} refused its options {options}: {err}") from None


def backbone_of(model: Any) -> nn.Module:
    """The transferlab Backbone inside an SB3 model (the one the optimiser trains)."""
    policy = model.policy
    extractor = policy.features_extractor if hasattr(policy, "action_net") else policy.q_net.features_extractor
    return extractor.backbone


def heads_of(model: Any) -> nn.ModuleDict:
    """The output layers: PPO {action, value}; DQN {q}."""
    policy = model.policy
    if hasattr(policy, "action_net"):
        return nn.ModuleDict({"action": policy.action_net, "value": policy.value_net})
    return nn.ModuleDict({"q": policy.q_net.q_net[-1]})


def packed_head(model: Any) -> tuple[nn.Sequential, Any]:
    """The heads as one output layer (the saved head): PPO rows = action logits then the value; DQN rows = Q values.

    Stacking PPO's two linear outputs into one Linear(feature_dim, n_actions + 1) is exact (each row is one
    output), so the model folder keeps transferlab's one-head format.
    """
    from ..models.head import HeadSpec, build_head

    layers = list(heads_of(model).values())
    weight = torch.cat([layer.weight.detach() for layer in layers])
    bias = torch.cat([layer.bias.detach() for layer in layers])
    spec = HeadSpec(num_outputs=int(weight.shape[0]))
    head = build_head(weight.shape[1], spec)
    with torch.no_grad():
        head.out.weight.copy_(weight)
        head.out.bias.copy_(bias)
    return head, spec


def load_packed_head(model: Any, head: nn.Module) -> None:
    """Copy a packed head (see `packed_head`) into the model's output layers."""
    out = head.out if hasattr(head, "out") else head[-1]
    start = 0
    with torch.no_grad():
        for layer in heads_of(model).values():
            n = layer.weight.shape[0]
            layer.weight.copy_(out.weight[start:start + n])
            layer.bias.copy_(out.bias[start:start + n])
            start += n


def adapt(model: Any, strategy: Any, *, source_backbone: dict[str, torch.Tensor] | None,
          source_head: nn.Module | None) -> SimpleNamespace:
    """Put the pretrained weights in (as the strategy says) and let the registry's strategy decide what trains.

    `strategy.prepare` runs unchanged on (backbone, heads): scratch re-initialises, partial/linear-probe
    freeze blocks, lora injects adapters, l2-sp remembers the start. Then the optimiser is rebuilt over
    the final parameters (lora adds some) and, for l2-sp, the strategy's own regulariser is added to the
    gradients right before every optimiser step (SB3 has no loss hook; the gradient is the same as
    adding the term to the loss, except that SB3's gradient-norm clipping sees only the RL loss).
    """
    backbone = backbone_of(model)
    heads = heads_of(model)
    if strategy.uses_pretrained_weights and source_backbone is not None:
        backbone.load_state_dict(source_backbone, strict=True)
        if source_head is not None:
            load_packed_head(model, source_head)
    shim = SimpleNamespace(backbone=backbone, head=heads)
    strategy.prepare(shim)
    policy = model.policy
    if hasattr(policy, "q_net_target"):  # DQN: the target network starts as a copy of the adapted Q network
        policy.q_net_target = copy.deepcopy(policy.q_net)
        policy.q_net_target.set_training_mode(False)
        model.q_net_target = policy.q_net_target
        params = policy.q_net.parameters()
    else:
        params = policy.parameters()
    policy.optimizer = policy.optimizer_class(params, lr=model.lr_schedule(1.0), **policy.optimizer_kwargs)
    if strategy.has_regularizer:
        def add_regularizer(optimizer: Any, args: Any, kwargs: Any) -> None:
            with torch.enable_grad():
                strategy.regularizer(shim).backward()

        policy.optimizer.register_step_pre_hook(add_regularizer)
    return shim


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters of the network the optimiser updates."""
    policy = model.policy
    net = policy.q_net if hasattr(policy, "q_net") else policy
    params = list(net.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
