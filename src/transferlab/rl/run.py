"""One RL run: train an agent for N environment steps, evaluating it on fixed seeds along the way.

The learning curve is measured on separate evaluation episodes: `eval_episodes` fresh environments,
reset with the fixed seeds 10_000, 10_001, … at every evaluation point, played greedily (argmax of
the action logits or Q values). Evaluation draws no random numbers from the training run (greedy
actions, its own environments), so evaluating does not change what training does, and every run,
strategy and seed is scored on the same episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .envs import EnvSpec, make_env

EVAL_SEED = 10_000
MAX_EVAL_STEPS = 10_000  # per evaluation episode, when the environment sets no max_episode_steps


class Evaluator:
    """Greedy returns over fixed-seed evaluation episodes, all played in lockstep (one batched forward per step)."""

    def __init__(self, env: EnvSpec, episodes: int) -> None:
        from ..errors import ConfigError

        if episodes < 1:
            raise ConfigError(f"--eval-episodes must be a whole number ≥ 1; got {episodes}")
        self.envs = [make_env(env) for _ in range(episodes)]
        # An environment without a time limit could run forever under a policy that never fails: cap it.
        self.max_steps = int(getattr(self.envs[0].spec, "max_episode_steps", None) or MAX_EVAL_STEPS)

    def __call__(self, model: Any) -> list[float]:
        n = len(self.envs)
        obs = np.stack([e.reset(seed=EVAL_SEED + i)[0] for i, e in enumerate(self.envs)])
        returns = np.zeros(n)
        done = np.zeros(n, dtype=bool)
        for _ in range(self.max_steps):
            if done.all():
                break
            actions, _ = model.predict(obs, deterministic=True)
            for i in np.nonzero(~done)[0]:
                o, r, term, trunc, _ = self.envs[i].step(int(actions[i]))
                obs[i] = o
                returns[i] += float(r)
                done[i] = term or trunc
        return returns.tolist()


def eval_points(steps: int, points: int) -> list[int]:
    """Evaluation steps: 0, steps/points, …, steps (rounded to whole steps, no repeats)."""
    return sorted({round(steps * k / points) for k in range(points + 1)})


def _curve_callback(evaluator: Evaluator, points: list[int], on_progress: Callable[[dict[str, Any]], None] | None,
                    checkpoint: Checkpointing | None = None, keep_best: bool = False):
    # long: a factory whose length is the stable-baselines3 callback class it defines (its methods share the closure)
    from stable_baselines3.common.callbacks import BaseCallback

    class CurveCallback(BaseCallback):
        """Evaluate at each scheduled step; count episodes; report progress; checkpoint at rollout starts.

        With `keep_best`, the weights at the best evaluation so far are kept (`best`: step, return and a copy of
        the policy's state): the last of equally good evaluations, so a run that ends at its best keeps its end.
        """

        def __init__(self) -> None:
            super().__init__()
            self.curve: list[dict[str, Any]] = []
            self.episodes = 0
            self.next = 0
            self._reported = 0
            self._start, self._cpu = time.perf_counter(), time.process_time()
            self._seconds_before, self._cpu_before = 0.0, 0.0  # from before a resume
            self._last_checkpoint = 0
            self.best: dict[str, Any] | None = None

        def seconds_so_far(self) -> float:
            return self._seconds_before + time.perf_counter() - self._start

        def cpu_so_far(self) -> float:
            return self._cpu_before + time.process_time() - self._cpu

        def restore(self, state: dict[str, Any], steps_done: int) -> None:
            self.curve, self.episodes, self.next = list(state["curve"]), int(state["episodes"]), int(state["next"])
            self._seconds_before, self._cpu_before = float(state["seconds"]), float(state["cpu"])
            self._last_checkpoint = steps_done
            self.best = state.get("best")

        def _on_rollout_start(self) -> None:
            if checkpoint is None or self.num_timesteps - self._last_checkpoint < checkpoint.every:
                return
            from .checkpoint import save_checkpoint

            save_checkpoint(checkpoint.folder, identity=checkpoint.identity, model=self.model, callback=self)
            self._last_checkpoint = self.num_timesteps

        def _evaluate(self, step: int) -> None:
            returns = evaluator(self.model)
            mean = float(np.mean(returns))
            self.curve.append({"step": step, "return": mean, "returns": returns})
            self.next += 1
            if keep_best and (self.best is None or mean >= self.best["return"]):
                self.best = {"step": step, "return": mean,
                             "policy": {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}}

        def _on_training_start(self) -> None:
            if self.next == 0 and points and points[0] == 0:
                self._evaluate(0)  # the jumpstart: the policy before any target training

        def _on_step(self) -> bool:
            self.episodes += int(np.sum(self.locals.get("dones", 0)))
            # The last point waits for learn() to return: the update after the final rollout is part of the run.
            while self.next < len(points) - 1 and self.num_timesteps >= points[self.next]:
                self._evaluate(points[self.next])
            if on_progress and (self.num_timesteps - self._reported >= 256 or self.next == len(points)):
                self._reported = self.num_timesteps
                recent = [ep["r"] for ep in list(self.model.ep_info_buffer or [])[-20:]]
                on_progress({"step": self.num_timesteps, "episodes": self.episodes,
                             "train_return": float(np.mean(recent)) if recent else None,
                             "eval_return": self.curve[-1]["return"] if self.curve else None})
            return True

        def finish(self) -> None:
            while self.next < len(points):  # the final point (and any learn() stopped short of): the trained agent
                self._evaluate(points[self.next])

    return CurveCallback()


@dataclass
class Checkpointing:
    """Where and how often a run writes its checkpoint (rl/checkpoint.py), and what identifies the run."""

    folder: Any
    identity: dict[str, Any]
    every: int


@dataclass
class TrainedAgent:
    model: Any
    curve: list[dict[str, Any]]
    episodes: int
    train_seconds: float
    steps_done: int
    cpu_seconds: float  # CPU time of this process while training (what the run costs on an idle core)
    kept: dict[str, Any] | None = None  # with keep_best: {"rule", "step", "return"} of the weights the model holds


def train(model: Any, *, steps: int, evaluator: Evaluator, points: int, quiet: bool, description: str,
          checkpoint: Checkpointing | None = None, resume_from: dict[str, Any] | None = None, seed: int = 0,
          keep_best: bool = False) -> TrainedAgent:
    """Run `model.learn(steps)` with evaluation at `points` + 1 fixed steps (0 included) and a progress bar.

    With `checkpoint`, the run's state is saved at rollout starts every `checkpoint.every` steps; with
    `resume_from` (a loaded checkpoint), it continues from there (rl/checkpoint.py says what is restored).
    With `keep_best`, the model ends holding the weights of its best evaluation point (the last of equal ones)
    instead of its last weights — what SB3's EvalCallback(best_model_save_path=…) keeps in rl-baselines3-zoo:
    value-based agents such as DQN often lose a solved policy later in training.
    """
    check_budget(steps, points)
    with _progress(description, steps, enabled=not quiet) as on_progress:
        callback = _curve_callback(evaluator, eval_points(steps, points), on_progress, checkpoint, keep_best)
        remaining, fresh = steps, True
        if resume_from is not None:
            from .checkpoint import restore

            restore(model, resume_from, seed)
            callback.restore(resume_from["curve"], int(model.num_timesteps))
            remaining, fresh = steps - int(model.num_timesteps), False
        model.learn(total_timesteps=remaining, callback=callback, progress_bar=False, reset_num_timesteps=fresh)
        callback.finish()
    kept = None
    if keep_best and callback.best is not None:
        model.policy.load_state_dict(callback.best["policy"])
        kept = {"rule": "best", "step": callback.best["step"], "return": callback.best["return"]}
    return TrainedAgent(model=model, curve=callback.curve, episodes=callback.episodes,
                        train_seconds=callback.seconds_so_far(), steps_done=int(model.num_timesteps),
                        cpu_seconds=callback.cpu_so_far(), kept=kept)


def check_budget(steps: int, points: int) -> None:
    from ..errors import ConfigError

    if steps < 1:
        raise ConfigError(f"--steps must be a whole number ≥ 1; got {steps}")
    if points < 1:
        raise ConfigError(f"--eval-points must be a whole number ≥ 1; got {points}")


class _progress:
    """A rich bar over environment steps with episodes, recent training return and the last evaluation return."""

    def __init__(self, description: str, total: int, *, enabled: bool) -> None:
        self.description, self.total, self.enabled = description, total, enabled

    def __enter__(self) -> Callable[[dict[str, Any]], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=Console(stderr=True),
                            transient=True)
        self.bar.__enter__()
        task = self.bar.add_task(self.description, total=self.total, status="")

        def update(p: dict[str, Any]) -> None:
            parts = [f"episodes {p['episodes']}"]
            if p["train_return"] is not None:
                parts.append(f"train return {p['train_return']:.1f}")
            if p["eval_return"] is not None:
                parts.append(f"eval return {p['eval_return']:.1f}")
            self.bar.update(task, completed=min(p["step"], self.total), status="  ".join(parts))

        return update

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
