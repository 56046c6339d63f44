"""RL tasks: a gymnasium environment id plus options that change its dynamics, rewards or action meaning.

An option is one of
- a keyword of the environment's constructor (`sutton_barto_reward` for CartPole, `goal_velocity` for
  MountainCar);
- a numeric physics attribute of the environment (`length`, `masspole`, `force_mag` for CartPole;
  `LINK_MASS_1`, `LINK_LENGTH_2` for Acrobot; `force`, `gravity` for MountainCar), set after construction
  (quantities derived from them, such as CartPole's `polemass_length`, are recomputed);
- one of transferlab's wrapper options: `reverse_actions` (discrete action i means action n−1−i: the
  classic "same task, action meaning reversed" negative-transfer pair), `reverse_observations` (the
  observation vector in reverse order: the same task read through re-wired sensors, so a pretrained
  network's features mislead) and `max_episode_steps`.

Unknown options are refused with the list of valid ones. A user's own environment works by its
registered id, or by entry point: `--env my_package.envs:MyEnv` registers and builds the class.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

WRAPPER_OPTIONS = {"reverse_actions": bool, "reverse_observations": bool, "max_episode_steps": int}
# Attributes that are not physics: rendering and bookkeeping.
_NOT_OPTIONS = {"screen_width", "screen_height", "screen_dim", "SCREEN_DIM", "isopen", "render_fps", "metadata", "np_random_seed"}
# Quantities an environment computes once in __init__ from other attributes: recomputed after options are set.
_DERIVED = {
    "CartPoleEnv": lambda env: (setattr(env, "total_mass", env.masspole + env.masscart),
                                setattr(env, "polemass_length", env.masspole * env.length)),
}
_DERIVED_NAMES = {"CartPoleEnv": {"total_mass", "polemass_length"}}


@dataclass(frozen=True)
class EnvSpec:
    """An RL task: an environment id (or `module:Class` entry point) and its options."""

    id: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnvSpec":
        return cls(id=str(d["id"]), options=dict(d.get("options") or {}))

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.id}({opts})" if opts else self.id


def require_rl() -> None:
    """Refuse with the install line when the `rl` extra (gymnasium, stable-baselines3) is missing."""
    import importlib

    for module, package in (("gymnasium", "gymnasium"), ("stable_baselines3", "stable-baselines3")):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"RL tasks need {package}, which is not installed: pip install 'transferlab[rl]'") from None


def parse_env_options(items: list[str] | None) -> dict[str, Any]:
    """`["length=1.0", "reverse_actions=true"]` → `{"length": 1.0, "reverse_actions": True}` (values typed later).

    Example:
        >>> parse_env_options(["length=1.0", "force_mag=5"])
        {'length': '1.0', 'force_mag': '5'}
    """
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-option takes KEY=VALUE, e.g. --env-option length=1.0; got {item!r}")
        options[key.strip()] = value.strip()
    return options


def _resolve_id(env_id: str) -> str:
    """A registered id as is; `module:Class` registered once under `module:Class` itself."""
    import gymnasium as gym

    if env_id in gym.registry:
        return env_id
    if ":" in env_id:
        if "user_" + re.sub(r"\W", "_", env_id) in gym.registry:
            return "user_" + re.sub(r"\W", "_", env_id)
        module, _, name = env_id.partition(":")
        import importlib

        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"--env {env_id!r}: cannot import module {module!r} ({err}); "
                              "pass a registered id such as CartPole-v1, or module.path:EnvClass") from None
        if name in gym.registry:  # the module registered it on import
            return name
        target = getattr(mod, name, None)
        if not (inspect.isclass(target) and issubclass(target, gym.Env)):
            raise ConfigError(f"--env {env_id!r}: {module}.{name} is not a gymnasium.Env subclass; pass "
                              "module.path:EnvClass or a registered id")
        registered = "user_" + re.sub(r"\W", "_", env_id)  # gym.make would read "module:Name" as an import
        if registered not in gym.registry:
            gym.register(id=registered, entry_point=target)
        return registered
    close = sorted(i for i in gym.registry if i.split("-")[0].lower() == env_id.split("-")[0].lower())[:5]
    classic = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
    raise ConfigError(f"unknown environment {env_id!r}; " + (f"did you mean {close}? " if close else "")
                      + f"offline classic-control ids include {classic}, or pass a module.path:EnvClass entry point")


def valid_options(env: Any) -> dict[str, Any]:
    """Every option this environment takes, with its current value (its type is the option's type)."""
    base = env.unwrapped
    opts: dict[str, Any] = {}
    for name, param in inspect.signature(type(base).__init__).parameters.items():
        if name in ("self", "render_mode") or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        opts[name] = param.default if param.default is not inspect.Parameter.empty else None
    derived = _DERIVED_NAMES.get(type(base).__name__, set())
    for name in dir(base):
        if name.startswith("_") or name in _NOT_OPTIONS or name in derived:
            continue
        try:
            value = getattr(base, name)
        except Exception:  # noqa: BLE001  (a property that needs state)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) or isinstance(value, bool) and name in vars(base):
            opts.setdefault(name, value)
    opts.update({"reverse_actions": False, "reverse_observations": False, "max_episode_steps": getattr(env.spec, "max_episode_steps", None)})
    return opts


def _typed(name: str, raw: Any, default: Any) -> Any:
    """Convert a CLI string to the option's type (the type of its current value)."""
    if not isinstance(raw, str):
        return raw
    kind = WRAPPER_OPTIONS.get(name) or (type(default) if default is not None else float)
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if kind is int:
            return int(raw)
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    except ValueError:
        allowed = "true or false" if kind is bool else ("a whole number" if kind is int else "a finite number")
        raise ConfigError(f"--env-option {name}={raw}: {name} takes {allowed}") from None


def make_env(spec: EnvSpec, *, check: bool = True) -> Any:
    """Build one environment of `spec`, options applied. Unknown options → the list of valid ones.

    Example:
        >>> env = make_env(EnvSpec("CartPole-v1", {"length": "1.0"}))
        >>> env.unwrapped.length, env.unwrapped.polemass_length
        (1.0, 0.1)
    """
    import gymnasium as gym

    env_id = _resolve_id(spec.id)
    probe = gym.make(env_id)
    valid = valid_options(probe)
    unknown = sorted(set(spec.options) - set(valid))
    if unknown:
        probe.close()
        raise ConfigError(f"{spec.id} has no option(s) {unknown}; valid options are {sorted(valid)} "
                          f"(e.g. --env-option {sorted(valid)[0]}=...)")
    options = {k: _typed(k, v, valid[k]) for k, v in spec.options.items()}
    ctor_params = inspect.signature(type(probe.unwrapped).__init__).parameters
    ctor = {k: v for k, v in options.items() if k in ctor_params}
    probe.close()
    limit = options.get("max_episode_steps")
    if limit is not None and limit < 1:
        raise ConfigError(f"--env-option max_episode_steps={limit}: it must be a whole number ≥ 1")
    env = gym.make(env_id, max_episode_steps=limit, **ctor)
    base = env.unwrapped
    for name, value in options.items():
        if name not in ctor and name not in WRAPPER_OPTIONS:
            setattr(base, name, value)
    if type(base).__name__ in _DERIVED:
        _DERIVED[type(base).__name__](base)
    if options.get("reverse_actions"):
        env = ReversedActions(env)
    if options.get("reverse_observations"):
        env = ReversedObservations(env)
    if check:
        check_spaces_supported(env, spec)
    return env


def check_spaces_supported(env: Any, spec: EnvSpec) -> None:
    """transferlab's agents take flat Box observations and Discrete actions (PPO and DQN both)."""
    from gymnasium import spaces

    obs, act = env.observation_space, env.action_space
    if not (isinstance(obs, spaces.Box) and len(obs.shape) == 1):
        raise ConfigError(f"{spec.id} observes {obs}; transferlab's RL agents take a flat Box observation "
                          "(a vector), such as the classic-control environments")
    if not isinstance(act, spaces.Discrete):
        raise ConfigError(f"{spec.id} acts in {act}; transferlab's PPO and DQN agents take a Discrete action "
                          "space (CartPole-v1, Acrobot-v1, MountainCar-v0)")


def describe_space(space: Any) -> dict[str, Any]:
    """A space as config.json records it: `{"type": "Box", "shape": [4]}` or `{"type": "Discrete", "n": 2}`."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape)}
    return {"type": type(space).__name__, "repr": str(space)}


def space_text(record: dict[str, Any]) -> str:
    if record.get("type") == "Discrete":
        return f"Discrete({record['n']})"
    if record.get("type") == "Box":
        return f"Box(shape={tuple(record['shape'])})"
    return record.get("repr", str(record))


@functools.lru_cache(maxsize=None)
def _reversed_actions_class():
    import gymnasium as gym

    class _ReversedActions(gym.ActionWrapper):
        """Discrete action i acts as n−1−i: the same task with the meaning of every action reversed."""

        def action(self, action: Any) -> int:
            return int(self.env.action_space.n) - 1 - int(action)

    return _ReversedActions


def ReversedActions(env: Any) -> Any:  # noqa: N802  (a wrapper class, built lazily so gymnasium loads on use)
    """Wrap `env` so that discrete action i means action n−1−i."""
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Discrete):
        raise ConfigError(f"--env-option reverse_actions=true needs a Discrete action space; this one is {env.action_space}")
    return _reversed_actions_class()(env)


@functools.lru_cache(maxsize=None)
def _reversed_observations_class():
    import gymnasium as gym
    import numpy as np

    class _ReversedObservations(gym.ObservationWrapper):
        """Observation component j is the original component d−1−j: the same task, its sensors re-wired."""

        def __init__(self, env: Any) -> None:
            super().__init__(env)
            box = env.observation_space
            self.observation_space = gym.spaces.Box(box.low[::-1].copy(), box.high[::-1].copy(), dtype=box.dtype)

        def observation(self, observation: Any) -> Any:
            return np.ascontiguousarray(np.asarray(observation)[::-1])

    return _ReversedObservations


def ReversedObservations(env: Any) -> Any:  # noqa: N802  (a wrapper class, built lazily so gymnasium loads on use)
    """Wrap `env` so that its (flat Box) observation vector comes in reverse order."""
    from gymnasium import spaces

    space = env.observation_space
    if not (isinstance(space, spaces.Box) and len(space.shape) == 1):
        raise ConfigError(f"--env-option reverse_observations=true needs a flat Box observation; this one is {space}")
    return _reversed_observations_class()(env)
