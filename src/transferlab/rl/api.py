"""The Python API of RL transfer: pretrain an agent on a source environment, fine-tune it on a target one.

Both save model folders like every other transferlab model (config.json + model.safetensors + README.md):
the backbone is the network the actor and critic (or the Q function) share; the heads are packed into
one output layer — the **source head** of a pretrained folder (`source_head.safetensors`), the head of
a fine-tuned one. Folders never hold SB3's zip/pickle format; agents are rebuilt from config + tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .envs import EnvSpec, describe_space, make_env, require_rl, space_text
from .metrics import curve_metrics

# Strategies of the registry that apply to an SB3 agent: those that act through `prepare` (what trains,
# where the weights start) or a regulariser. Strategies that need their own head layers (add-layers),
# per-group learning rates (discriminative-lr) or epoch phases (gradual-unfreeze, lp-ft) do not map onto
# SB3's single-rate optimiser and are refused.
RL_STRATEGIES = ("scratch", "full", "partial", "linear-probe", "l2-sp", "lora", "bitfit")


@dataclass
class AgentResult:
    """One RL run: its learning curve (evaluation returns at fixed steps), metrics and where it was saved."""

    algo: str
    env: EnvSpec
    steps: int
    seed: int
    curve: list[dict[str, Any]]
    metrics: dict[str, Any]
    episodes: int
    train_seconds: float
    out: Path | None = None
    strategy: str | None = None
    strategy_options: dict[str, Any] = field(default_factory=dict)
    heads: str | None = None  # "source" (the pretrained output layers kept) or "new"
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    cpu_seconds: float | None = None  # CPU time of training and evaluation in this process
    kept: dict[str, Any] | None = None  # pretraining: {"rule": "best"|"last", "step", "return"} of the saved weights

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out) if self.out else None, "algo": self.algo, "env": self.env.id,
            "env_options": self.env.options, "strategy": self.strategy, "strategy_options": self.strategy_options,
            "heads": self.heads, "steps": self.steps, "seed": self.seed, "episodes": self.episodes,
            "train_seconds": self.train_seconds, "cpu_seconds": self.cpu_seconds, "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters, "metrics": self.metrics, "kept": self.kept,
            "curve": [{"step": p["step"], "return": p["return"]} for p in self.curve],
        }


def _env_spec(env: str | EnvSpec, options: dict[str, Any] | None) -> EnvSpec:
    require_rl()
    spec = env if isinstance(env, EnvSpec) else EnvSpec(str(env), dict(options or {}))
    probe = make_env(spec)  # unknown options and unsupported spaces are refused before anything trains
    typed = {k: _current(probe, k, v) for k, v in spec.options.items()}
    probe.close()
    return EnvSpec(spec.id, typed)


def _current(env: Any, name: str, raw: Any) -> Any:
    """The typed value an option took (so config.json and the run store record 1.0, not "1.0")."""
    from .envs import WRAPPER_OPTIONS, _typed, valid_options

    return _typed(name, raw, valid_options(env).get(name) if name not in WRAPPER_OPTIONS else None)


def pretrain_agent(
    env: str | EnvSpec,
    *,
    env_options: dict[str, Any] | None = None,
    algo: str = "ppo",
    steps: int = 50_000,
    seed: int = 0,
    hidden: list[int] | None = None,
    activation: str | None = None,
    algo_options: dict[str, Any] | None = None,
    eval_episodes: int = 10,
    eval_points: int = 10,
    out: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    threads: int | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    keep_best: bool = True,
) -> AgentResult:
    """Train an agent on a source environment and save it as a pretrained model folder.

    `keep_best` (default): the saved agent is the policy at the best point of the evaluation curve (the last of
    equally good points), not the last weights — rl-baselines3-zoo's practice (SB3's EvalCallback keeps the
    best model), because DQN in particular often loses a solved policy later in training. `keep_best=False`
    saves the last weights. `result.kept` says which point was kept and its evaluation return.

    With `out`, a checkpoint is kept beside it (in `.NAME.run`) while the run trains (every `checkpoint_every` steps,
    default: each evaluation interval); `resume=True` continues a killed run from it (rl/checkpoint.py).

    Example:
        >>> r = pretrain_agent("CartPole-v1", algo="ppo", steps=20_000, out="models/cartpole")  # doctest: +SKIP
        >>> r.metrics["final_return"]  # doctest: +SKIP
    """
    # long: the signature lists every option of the public API (one keyword each) and the docstring documents them
    from .agent import algorithm, build_agent, resolve_algo_options, trainable_parameters
    from .run import Evaluator, train

    spec = _env_spec(env, env_options)
    alg = algorithm(algo)
    options = resolve_algo_options(alg, algo_options)
    net = {"hidden": [int(h) for h in (hidden or alg.hidden)], "activation": activation or alg.activation}
    identity = {"command": "pretrain", "env": spec.to_dict(), "algo": algo, "algo_options": options, "network": net,
                "steps": steps, "seed": seed, "eval": [eval_episodes, eval_points], "keep": "best" if keep_best else "last"}
    checkpoint, payload = _run_state(out, identity, steps, eval_points, checkpoint_every, resume, overwrite)
    _threads(threads)
    model = build_agent(alg, spec, seed=seed, hidden=net["hidden"], activation=net["activation"], options=options)
    trained = train(model, steps=steps, evaluator=Evaluator(spec, eval_episodes), points=eval_points, quiet=quiet,
                    description=f"pretrain {algo} on {spec.describe()}", checkpoint=checkpoint, resume_from=payload,
                    seed=seed, keep_best=keep_best)
    trainable, total = trainable_parameters(model)
    kept = trained.kept or {"rule": "last", "step": trained.curve[-1]["step"], "return": trained.curve[-1]["return"]}
    metrics = {**curve_metrics(trained.curve), "kept_step": kept["step"], "kept_return": kept["return"]}
    result = AgentResult(algo=algo, env=spec, steps=steps, seed=seed, curve=trained.curve, metrics=metrics,
                         episodes=trained.episodes, train_seconds=trained.train_seconds,
                         trainable_parameters=trainable, total_parameters=total, cpu_seconds=trained.cpu_seconds,
                         kept=kept)
    if out is not None:
        from .folder import save_agent_folder

        result.out = save_agent_folder(Path(out), model, kind="pretrained", algo=alg, algo_options=options,
                                       network=net, env=spec, result=result, overwrite=overwrite)
        _end_run(checkpoint)
    return result


def finetune_agent(
    pretrained: str | Path,
    env: str | EnvSpec,
    *,
    env_options: dict[str, Any] | None = None,
    strategy: str = "full",
    strategy_options: dict[str, Any] | None = None,
    steps: int = 20_000,
    seed: int = 0,
    keep_source_head: bool | None = None,
    algo_options: dict[str, Any] | None = None,
    eval_episodes: int = 10,
    eval_points: int = 10,
    threshold: float | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    threads: int | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    source: Any = None,
) -> AgentResult:
    """Adapt a pretrained agent to a target environment with a registered strategy; measure its learning curve.

    `keep_source_head`: None keeps the pretrained output layers when the action spaces match (new ones for
    scratch and linear-probe, the "frozen backbone + new heads" strategy); True insists; False always starts
    new heads. `threshold`: a return for `time_to_threshold`.

    Example:
        >>> r = finetune_agent("models/cartpole", "CartPole-v1", env_options={"length": 1.0},
        ...                    strategy="partial", strategy_options={"freeze": 1}, steps=10_000)  # doctest: +SKIP
        >>> r.metrics["jumpstart"], r.metrics["auc"]  # doctest: +SKIP
    """
    # long: the public signature and docstring name every option; the body is one sequence: load, adapt, train, evaluate, save
    from ..strategies import create_strategy
    from .agent import adapt, algorithm, build_agent, resolve_algo_options, trainable_parameters
    from .folder import load_agent_folder
    from .run import Evaluator, train

    if strategy not in RL_STRATEGIES:
        from ..strategies import strategy_class

        strategy_class(strategy)  # an unknown name gets the registry's own message
        raise ConfigError(f"strategy {strategy!r} does not apply to an RL agent (it needs its own head layers, "
                          f"per-block learning rates or epoch phases); RL strategies are {list(RL_STRATEGIES)}")
    strat = create_strategy(strategy, **(strategy_options or {}))
    if getattr(strat.config, "feature_blocks", None):  # the policy's blocks are vectors, not feature maps to pool
        raise ConfigError(f"feature_blocks={strat.config.feature_blocks!r} does not apply to an RL agent: its "
                          f"linear-probe reads the policy backbone's last block; drop feature_blocks")
    src = source or load_agent_folder(pretrained)
    spec = _env_spec(env, env_options)
    probe = make_env(spec)
    obs_space, act_space = describe_space(probe.observation_space), describe_space(probe.action_space)
    probe.close()
    rl = src.config["rl"]
    if obs_space != rl["observation_space"]:
        raise ConfigError(
            f"the pretrained agent observes {space_text(rl['observation_space'])} ({src.env.describe()}) but "
            f"{spec.describe()} observes {space_text(obs_space)}; the backbone takes only the observation it was "
            f"pretrained on: choose a target with {space_text(rl['observation_space'])} observations, or pretrain on "
            f"{spec.id}")
    same_actions = act_space == rl["action_space"]
    if keep_source_head and not same_actions:
        raise ConfigError(
            f"--keep-source-head needs the same action space: the pretrained agent acts in "
            f"{space_text(rl['action_space'])} but {spec.describe()} acts in {space_text(act_space)}; "
            "drop --keep-source-head (new heads are put on the backbone), or choose a target with "
            f"{space_text(rl['action_space'])} actions")
    keep = same_actions and strategy not in ("scratch", "linear-probe") if keep_source_head is None else keep_source_head
    keep = keep and strat.uses_pretrained_weights
    alg = algorithm(rl["algorithm"])
    options = resolve_algo_options(alg, {**rl["algo_options"], **(algo_options or {})})
    identity = {"command": "finetune", "pretrained_sha256": src.config["weights"]["sha256"], "env": spec.to_dict(),
                "strategy": strategy, "strategy_options": strat.options(), "keep_source_head": keep,
                "algo_options": options, "steps": steps, "seed": seed, "eval": [eval_episodes, eval_points]}
    checkpoint, payload = _run_state(out, identity, steps, eval_points, checkpoint_every, resume, overwrite)
    _threads(threads)
    model = build_agent(alg, spec, seed=seed, hidden=rl["network"]["hidden"], activation=rl["network"]["activation"],
                        options=options)
    shim = adapt(model, strat, source_backbone=src.backbone_state, source_head=src.head if keep else None)
    trainable, total = trainable_parameters(model)
    trained = train(model, steps=steps, evaluator=Evaluator(spec, eval_episodes), points=eval_points, quiet=quiet,
                    description=f"{strategy} {rl['algorithm']} on {spec.describe()}", checkpoint=checkpoint,
                    resume_from=payload, seed=seed)
    strat.finalize(shim)
    result = AgentResult(algo=alg.name, env=spec, steps=steps, seed=seed, curve=trained.curve,
                         metrics=curve_metrics(trained.curve, threshold=threshold), episodes=trained.episodes,
                         train_seconds=trained.train_seconds, strategy=strategy, strategy_options=strat.options(),
                         heads="source" if keep else "new", trainable_parameters=trainable, total_parameters=total,
                         cpu_seconds=trained.cpu_seconds)
    if out is not None:
        from .folder import save_agent_folder

        result.out = save_agent_folder(Path(out), model, kind="finetuned", algo=alg, algo_options=options,
                                       network=rl["network"], env=spec, result=result, overwrite=overwrite, source=src)
        _end_run(checkpoint)
    return result


def _run_state(out: str | Path | None, identity: dict[str, Any], steps: int, points: int, every: int | None,
               resume: bool, overwrite: bool) -> tuple[Any, dict[str, Any] | None]:
    """Checkpointing for a run saved to `out`, and the checkpoint to resume from (refusals before any training).

    The checkpoint lives beside --out in the run-private folder `.NAME.run` (artifacts/model_folder.run_dir),
    never inside --out: a killed first run leaves no half-made --out, and a killed --overwrite run leaves the
    old model as it was. A checkpoint an older transferlab left inside --out is moved there on --resume.
    """
    import os

    from ..artifacts.model_folder import CONFIG, check_writable, run_dir, writable_model_path
    from .checkpoint import CHECKPOINT, load_checkpoint
    from .run import Checkpointing, check_budget

    check_budget(steps, points)
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out: the checkpoint lives beside the run's --out folder")
        return None, None
    if every is not None and every < 1:
        raise ConfigError(f"--checkpoint-every must be a whole number ≥ 1 (environment steps); got {every}")
    out = writable_model_path(out)
    folder = run_dir(out)
    checkpoint = folder / CHECKPOINT
    legacy = out / CHECKPOINT  # an older transferlab kept an unfinished run's checkpoint inside --out
    if legacy.is_file() and not (out / CONFIG).is_file():
        if not resume and not overwrite:
            raise ConfigError(f"{out} holds an unfinished run ({CHECKPOINT}); pass --resume to continue it, or "
                              "--overwrite to start anew")
        if resume and not checkpoint.is_file():
            folder.mkdir(exist_ok=True)
            os.replace(legacy, checkpoint)
        else:
            legacy.unlink()
        if not any(out.iterdir()):
            out.rmdir()
    payload = None
    if resume:
        if not checkpoint.is_file() and (out / CONFIG).is_file():
            raise ConfigError(f"--resume: {out} holds a finished model; there is nothing to resume (no unfinished "
                              f"run is saved beside it at {checkpoint}) — drop --resume")
        payload = load_checkpoint(folder, identity)
    elif checkpoint.is_file():
        if not overwrite:
            raise ConfigError(f"{out} holds an unfinished run ({CHECKPOINT}); pass --resume to continue it, or "
                              f"--overwrite to start anew (its checkpoint is kept beside it in {folder})")
        checkpoint.unlink()
    check_writable(out, overwrite=overwrite)  # refused before training, not after
    return Checkpointing(folder, identity, every or max(1, steps // points)), payload


def _end_run(checkpoint: Any) -> None:
    """The model is saved: remove the run's checkpoint and its run-private folder."""
    from ..artifacts.files import remove_stale
    from .checkpoint import CHECKPOINT

    if checkpoint is None:
        return
    path = Path(checkpoint.folder) / CHECKPOINT
    path.unlink(missing_ok=True)
    remove_stale(path)  # temporary checkpoint files of killed writers
    try:
        path.parent.rmdir()
    except OSError:  # not empty (a live writer's file) or already gone
        pass


def _threads(threads: int | None) -> None:
    from ..engine.runtime import resolve_threads, set_threads

    set_threads(resolve_threads(threads))
