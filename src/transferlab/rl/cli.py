"""The RL forms of `pretrain`, `finetune` and `compare` (chosen when the command line has `--env`).

Each command is one call into `transferlab.rl`'s Python API. Errors a user can cause print one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

Env = Annotated[str, typer.Option("--env", help="gymnasium environment id (CartPole-v1, Acrobot-v1, MountainCar-v0) "
                                                "or module.path:EnvClass")]
EnvOption = Annotated[Optional[list[str]], typer.Option("--env-option", help="KEY=VALUE changing the environment "
                      "(e.g. length=1.0, force_mag=5, reverse_actions=true); repeat for several")]
AlgoOption = Annotated[Optional[list[str]], typer.Option("--algo-option", help="KEY=VALUE hyperparameter of the "
                       "SB3 algorithm (e.g. learning_rate=3e-4, n_envs=4); repeat for several")]
EvalEpisodes = Annotated[int, typer.Option(help="evaluation episodes (fixed seeds) at each point of the learning curve")]
EvalPoints = Annotated[int, typer.Option(help="evaluations along the run, after the one at step 0")]
Threads = Annotated[Optional[int], typer.Option(help="torch intra-op threads (default 1)")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
Freeze = Annotated[Optional[int], typer.Option(help="partial: backbone blocks frozen, input side first")]
Alpha = Annotated[Optional[float], typer.Option(help="l2-sp: weight of α/2·‖w − w_pretrained‖²; lora: scale α")]
Beta = Annotated[Optional[float], typer.Option(help="l2-sp: weight of β/2·‖w‖² on the heads")]
Rank = Annotated[Optional[int], typer.Option(help="lora: rank of the update")]
KeepHead = Annotated[Optional[bool], typer.Option("--keep-source-head/--new-head", help="keep the pretrained "
                     "action/value (or Q) output layers (default: when the action spaces match, except for scratch "
                     "and linear-probe) or start new ones")]
Resume = Annotated[bool, typer.Option("--resume", help="continue the killed run whose checkpoint is kept beside --out (.NAME.run)")]
CheckpointEvery = Annotated[Optional[int], typer.Option(help="checkpoint every N environment steps (default: each "
                            "evaluation interval; only with --out)")]
Threshold = Annotated[Optional[float], typer.Option(help="return for time-to-threshold (compare default: scratch's "
                      "final return)")]


def _friendly(fn: Any) -> Any:
    from ..cli_errors import _friendly as friendly

    return friendly(fn)


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    from ..errors import ConfigError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, e.g. {flag} learning_rate=3e-4; got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _ints(value: str | None, flag: str) -> list[int] | None:
    from ..errors import ConfigError

    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated whole numbers like 10000,20000; got {value!r}") from None


def _strategy_options(name: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The given flags that this strategy's config has (--alpha means l2-sp's α or lora's α)."""
    from ..strategies import strategy_class

    fields = {f.name for f in dataclasses.fields(strategy_class(name).Config)}
    return {k: v for k, v in flags.items() if v is not None and k in fields}


def _emit(obj: Any) -> None:
    from ..jsonable import to_jsonable

    typer.echo(json.dumps(to_jsonable(obj), default=str))


@app.command("pretrain")
def pretrain(
    env: Env,
    env_option: EnvOption = None,
    algo: Annotated[str, typer.Option(help="ppo | a2c (policy gradient) | dqn (deep Q-learning)")] = "ppo",
    steps: Annotated[int, typer.Option(help="environment steps of training")] = 50_000,
    out: Annotated[Path, typer.Option(help="folder to save the pretrained agent in")] = Path("models/agent"),
    hidden: Annotated[Optional[str], typer.Option(help="backbone hidden sizes (default ppo 64,64; dqn 256,256)")] = None,
    activation: Annotated[Optional[str], typer.Option(help="relu | tanh | sigmoid | gelu (default ppo tanh; dqn relu)")] = None,
    algo_option: AlgoOption = None,
    seed: Annotated[int, typer.Option(help="seed: same seed and --threads give identical weights")] = 0,
    eval_episodes: EvalEpisodes = 10,
    eval_points: EvalPoints = 10,
    overwrite: Annotated[bool, typer.Option(help="replace an existing model folder at --out")] = False,
    resume: Resume = False,
    checkpoint_every: CheckpointEvery = None,
    keep_best: Annotated[bool, typer.Option("--keep-best/--keep-last", help="save the policy of the best evaluation "
                                            "point (default; rl-baselines3-zoo's practice) or the last weights")] = True,
    threads: Threads = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Pretrain an RL agent (stable-baselines3) on a source environment; save it as a pretrained model folder."""
    from .api import pretrain_agent
    from .envs import parse_env_options

    result = pretrain_agent(env, env_options=parse_env_options(env_option), algo=algo, steps=steps, seed=seed,
                            hidden=_ints(hidden, "--hidden"), activation=activation,
                            algo_options=_pairs(algo_option, "--algo-option"), eval_episodes=eval_episodes,
                            eval_points=eval_points, out=out, overwrite=overwrite, quiet=quiet or json_out,
                            threads=threads, resume=resume, checkpoint_every=checkpoint_every, keep_best=keep_best)
    if json_out:
        _emit(result.to_json())
        return
    m, kept = result.metrics, result.kept
    saved = (f"saved the best evaluated policy: return {kept['return']:.1f} at step {kept['step']:,} "
             f"(last evaluation {m['final_return']:.1f})" if kept["rule"] == "best" else
             f"saved the last weights: evaluation return {m['final_return']:.1f}")
    typer.echo(f"pretrained {algo} on {result.env.describe()}: {saved}, from {m['jumpstart']:.1f} at step 0; "
               f"{result.episodes} episodes, {steps} steps in {result.train_seconds:.1f}s → {out}")


@app.command("finetune")
def finetune(
    pretrained: Annotated[str, typer.Argument(help="pretrained agent folder or store name")],
    env: Env,
    env_option: EnvOption = None,
    strategy: Annotated[str, typer.Option(help="scratch | full | partial | linear-probe | l2-sp | lora | bitfit")] = "full",
    freeze: Freeze = None,
    alpha: Alpha = None,
    beta: Beta = None,
    rank: Rank = None,
    keep_source_head: KeepHead = None,
    steps: Annotated[int, typer.Option(help="environment steps on the target")] = 20_000,
    out: Annotated[Optional[Path], typer.Option(help="folder to save the fine-tuned agent in")] = None,
    algo_option: AlgoOption = None,
    seed: Annotated[int, typer.Option(help="seed: same seed and --threads give identical weights")] = 0,
    eval_episodes: EvalEpisodes = 10,
    eval_points: EvalPoints = 10,
    threshold: Threshold = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing model folder at --out")] = False,
    resume: Resume = False,
    checkpoint_every: CheckpointEvery = None,
    threads: Threads = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Adapt a pretrained agent to a target environment with a strategy; print its transfer metrics."""
    from .api import finetune_agent
    from .envs import parse_env_options

    options = _strategy_options(strategy, {"freeze": freeze, "alpha": alpha, "beta": beta, "rank": rank})
    result = finetune_agent(pretrained, env, env_options=parse_env_options(env_option), strategy=strategy,
                            strategy_options=options, steps=steps, seed=seed, keep_source_head=keep_source_head,
                            algo_options=_pairs(algo_option, "--algo-option"), eval_episodes=eval_episodes,
                            eval_points=eval_points, threshold=threshold, out=out, overwrite=overwrite,
                            quiet=quiet or json_out, threads=threads, resume=resume, checkpoint_every=checkpoint_every)
    if json_out:
        _emit(result.to_json())
        return
    m = result.metrics
    ttt = "" if threshold is None else (f", reached {threshold:g} at step {m['time_to_threshold']:.0f}"
                                        if m["time_to_threshold"] is not None else f", never reached {threshold:g}")
    typer.echo(f"{strategy} ({result.heads} heads) on {result.env.describe()}: jumpstart {m['jumpstart']:.1f}, "
               f"final {m['final_return']:.1f}, asymptotic {m['asymptotic_return']:.1f}, auc {m['auc']:.1f}{ttt}; "
               f"{result.episodes} episodes in {result.train_seconds:.1f}s" + (f" → {out}" if out else ""))


@app.command("compare")
def compare(
    pretrained: Annotated[str, typer.Argument(help="pretrained agent folder or store name")],
    env: Env,
    env_option: EnvOption = None,
    out: Annotated[Path, typer.Option(help="folder for runs.sqlite, results.csv, summary.json, report.html")] = Path("compare-rl"),
    strategies: Annotated[Optional[str], typer.Option(help="comma-separated (default: every RL strategy; scratch is always added)")] = None,
    steps: Annotated[str, typer.Option(help="target budgets in environment steps, e.g. 10000,20000")] = "20000",
    seeds: Annotated[int, typer.Option(help="seeds per cell")] = 5,
    metric: Annotated[str, typer.Option(help="verdict metric: auc | asymptotic_return | jumpstart | final_return")] = "auc",
    margin: Annotated[float, typer.Option(help="largest |Δ| (return units) called no-difference; default 0: a CI of Δ "
                                          "across 0 is inconclusive")] = 0.0,
    freeze: Freeze = None,
    alpha: Alpha = None,
    beta: Beta = None,
    rank: Rank = None,
    keep_source_head: KeepHead = None,
    threshold: Threshold = None,
    algo_option: AlgoOption = None,
    eval_episodes: EvalEpisodes = 10,
    eval_points: EvalPoints = 10,
    jobs: Annotated[int, typer.Option(help="runs in parallel processes")] = 1,
    threads: Threads = None,
    force: Annotated[bool, typer.Option(help="discard the runs in --out and start anew")] = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Did transfer help the agent? Every strategy vs scratch × step budgets × seeds, verdicts on --metric."""
    from .api import RL_STRATEGIES
    from .compare import RLCompareConfig, compare_agents
    from .envs import parse_env_options

    names = [s.strip() for s in strategies.split(",") if s.strip()] if strategies else list(RL_STRATEGIES)
    flags = {"freeze": freeze, "alpha": alpha, "beta": beta, "rank": rank}
    specs = []
    for name in names:
        try:
            options = _strategy_options(name, flags)
        except Exception:  # an unknown name: compare_agents refuses it with the list of RL strategies
            options = {}
        specs.append({"name": name, "options": options})
    config = RLCompareConfig(pretrained=pretrained, env=env, env_options=parse_env_options(env_option),
                             strategies=specs, steps=_ints(steps, "--steps") or [], seeds=seeds, metric=metric,
                             eval_episodes=eval_episodes, eval_points=eval_points,
                             algo_options=_pairs(algo_option, "--algo-option"), keep_source_head=keep_source_head,
                             threshold=threshold, margin=margin)
    with _cell_progress(enabled=not (quiet or json_out)) as on_cell:
        result = compare_agents(config, out, jobs=jobs, threads=threads, force=force, on_cell=on_cell)
    if json_out:
        _emit(result.to_json())
        return
    typer.echo(f"{result.ran} runs ran, {result.skipped} reused, {result.failed} failed → {out}/report.html")
    for c in result.summary["cells"]:
        if c.get("n_seeds"):
            typer.echo(f"  {c['steps']:>8,} steps  {c['strategy']:22s} {result.summary['metric']} {c['mean']:8.1f}  "
                       f"jumpstart {c['jumpstart']:7.1f}  {c['verdict']}")


class _cell_progress:
    """A bar over the comparison's runs: the last finished run's strategy, budget, seed and auc."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("runs", total=None, status="")

        def on_cell(cell: Any, run: dict[str, Any] | None, done: int, total: int) -> None:
            status = ""
            if run is not None:
                status = (f"{run['strategy']} {run['steps']} steps seed {run['seed']}: " +
                          (f"auc {run['metrics']['auc']:.1f}, {run['episodes']} episodes"
                           if run["status"] == "finished" else "failed"))
            self.bar.update(task, completed=done, total=total, status=status)

        return on_cell

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


_COMMANDS: dict[str, Any] = {}


def rl_command(name: str) -> Any:
    """The click command of the RL form of `name`, with transferlab's one-line errors."""
    if not _COMMANDS:
        from typer.main import get_command

        group = get_command(app)
        for cmd_name, cmd in group.commands.items():
            callback = cmd.callback
            cmd.callback = _friendly(callback)
            _COMMANDS[cmd_name] = cmd
    return _COMMANDS[name]
