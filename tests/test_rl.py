"""RL transfer (transferlab.rl): environments with options, SB3 agents on a backbone, strategies, folders, compare.

Budgets are tiny (a few hundred environment steps): these tests check contracts (what is saved, what
trains, what is refused, what resumes), not that an agent learns — benchmarks/rl_transfer.py does that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import kill_after_runs

pytest.importorskip("stable_baselines3")
pytest.importorskip("gymnasium")

from typer.testing import CliRunner  # noqa: E402

from transferlab.cli import app  # noqa: E402
from transferlab.errors import ConfigError  # noqa: E402
from transferlab.rl.api import finetune_agent, pretrain_agent  # noqa: E402
from transferlab.rl.envs import EnvSpec, make_env, parse_env_options  # noqa: E402
from transferlab.rl.folder import load_agent_folder  # noqa: E402
from transferlab.rl.metrics import curve_metrics, transfer_ratio  # noqa: E402

runner = CliRunner()
TINY = {"eval_episodes": 2, "eval_points": 2}
DQN_TINY = {"learning_starts": 32, "train_freq": 16, "gradient_steps": 2, "buffer_size": 500, "batch_size": 16}


@pytest.fixture(scope="module")
def ppo_source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rl") / "ppo-src"
    pretrain_agent("CartPole-v1", algo="ppo", steps=512, seed=0, out=out, **TINY)
    return out


@pytest.fixture(scope="module")
def dqn_source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rl") / "dqn-src"
    pretrain_agent("CartPole-v1", algo="dqn", steps=200, seed=0, hidden=[16, 16], algo_options=DQN_TINY, out=out,
                   **TINY)
    return out


# --- environments -------------------------------------------------------------------------------------------


def test_env_options_change_the_physics_and_derived_quantities() -> None:
    env = make_env(EnvSpec("CartPole-v1", {"length": "1.0", "force_mag": "5"}))
    base = env.unwrapped
    assert (base.length, base.force_mag) == (1.0, 5.0)
    assert base.polemass_length == pytest.approx(0.1)  # masspole 0.1 × length 1.0, recomputed
    acro = make_env(EnvSpec("Acrobot-v1", {"LINK_MASS_2": "2.0"}))
    assert acro.unwrapped.LINK_MASS_2 == 2.0


def test_unknown_env_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"CartPole-v1 has no option\(s\) \['lenght'\]; valid options are .*'length'"):
        make_env(EnvSpec("CartPole-v1", {"lenght": "1.0"}))
    with pytest.raises(ConfigError, match="length takes a finite number"):
        make_env(EnvSpec("CartPole-v1", {"length": "long"}))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_env_options(["length"])


def test_unknown_env_id_suggests_close_ids() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'Cartpole-v1'; did you mean .*'CartPole-v1'"):
        make_env(EnvSpec("Cartpole-v1"))


def test_reverse_actions_reverses_the_meaning_of_each_action() -> None:
    plain = make_env(EnvSpec("CartPole-v1"))
    reverse = make_env(EnvSpec("CartPole-v1", {"reverse_actions": "true"}))
    o1, _ = plain.reset(seed=3)
    o2, _ = reverse.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    a, _, _, _, _ = plain.step(0)
    b, _, _, _, _ = reverse.step(1)  # "1" in the reversed task pushes like "0" in the plain one
    np.testing.assert_array_equal(a, b)


def test_reverse_observations_rewires_the_sensors_of_the_same_task() -> None:
    plain = make_env(EnvSpec("CartPole-v1"))
    rewired = make_env(EnvSpec("CartPole-v1", {"reverse_observations": "true"}))
    o1, _ = plain.reset(seed=3)
    o2, _ = rewired.reset(seed=3)
    np.testing.assert_array_equal(o1[::-1], o2)
    a, _, _, _, _ = plain.step(0)
    b, _, _, _, _ = rewired.step(0)  # the same dynamics and actions: only the order of what is observed differs
    np.testing.assert_array_equal(a[::-1], b)
    np.testing.assert_array_equal(rewired.observation_space.high, plain.observation_space.high[::-1])
    assert rewired.observation_space.contains(b)


def test_reverse_observations_needs_a_flat_vector_observation(tmp_path, monkeypatch) -> None:
    (tmp_path / "grid_envs.py").write_text(
        "import gymnasium as gym, numpy as np\n"
        "class Grid(gym.Env):\n"
        "    observation_space = gym.spaces.Box(0, 1, (3, 3), np.float32)\n"
        "    action_space = gym.spaces.Discrete(2)\n"
        "    def reset(self, seed=None, options=None):\n"
        "        return np.zeros((3, 3), np.float32), {}\n"
        "    def step(self, a):\n"
        "        return np.zeros((3, 3), np.float32), 0.0, True, False, {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"reverse_observations=true needs a flat Box observation; this one is Box"):
        make_env(EnvSpec("grid_envs:Grid", {"reverse_observations": "true"}))


def test_unsupported_spaces_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"Pendulum-v1 acts in Box.*Discrete action space"):
        make_env(EnvSpec("Pendulum-v1"))


def test_a_users_own_environment_by_entry_point(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_envs.py").write_text(
        "import gymnasium as gym, numpy as np\n"
        "class Corridor(gym.Env):\n"
        "    def __init__(self, length=5):\n"
        "        self.length = length\n"
        "        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)\n"
        "        self.action_space = gym.spaces.Discrete(2)\n"
        "    def reset(self, seed=None, options=None):\n"
        "        super().reset(seed=seed); self.pos = 0\n"
        "        return np.array([0.0, self.length], np.float32), {}\n"
        "    def step(self, a):\n"
        "        self.pos += 1 if a == 1 else 0\n"
        "        done = self.pos >= self.length\n"
        "        return np.array([self.pos, self.length], np.float32), 1.0 if done else -0.1, done, False, {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = make_env(EnvSpec("my_envs:Corridor", {"length": "3", "max_episode_steps": "20"}))
    assert env.unwrapped.length == 3
    r = pretrain_agent("my_envs:Corridor", env_options={"length": 3, "max_episode_steps": 20}, steps=256, **TINY)
    assert len(r.curve) == 3


# --- metrics ------------------------------------------------------------------------------------------------


def test_transfer_metrics_on_a_known_curve() -> None:
    curve = [{"step": 0, "return": 20.0}, {"step": 50, "return": 40.0}, {"step": 100, "return": 80.0},
             {"step": 200, "return": 100.0}]
    m = curve_metrics(curve, threshold=80.0)
    assert m["jumpstart"] == 20.0
    assert m["asymptotic_return"] == 100.0  # the last quarter: one point
    assert m["auc"] == pytest.approx((30 * 50 + 60 * 50 + 90 * 100) / 200)
    assert m["time_to_threshold"] == 100.0
    assert curve_metrics(curve, threshold=101.0)["time_to_threshold"] is None
    assert transfer_ratio(75.0, 50.0) == 0.5 and transfer_ratio(-60.0, -80.0) == 0.25


# --- pretrain: the model folder -------------------------------------------------------------------------------


def test_pretrained_agent_folder_is_config_safetensors_and_card(ppo_source: Path) -> None:
    files = sorted(p.name for p in ppo_source.iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "source_head.safetensors"]
    cfg = json.loads((ppo_source / "config.json").read_text())
    assert cfg["task_kind"] == "rl" and cfg["kind"] == "pretrained"
    assert cfg["rl"]["algorithm"] == "ppo"
    assert cfg["rl"]["observation_space"] == {"type": "Box", "shape": [4]}
    assert cfg["rl"]["action_space"] == {"type": "Discrete", "n": 2}
    assert cfg["rl"]["heads"] == {"action": [0, 2], "value": [2, 3]}
    assert cfg["source_task"]["env"] == {"id": "CartPole-v1", "options": {}}
    assert [b["name"] for b in cfg["blocks"]] == ["fc1", "fc2"]
    assert "environment `CartPole-v1`" in (ppo_source / "README.md").read_text()


def test_saved_heads_reproduce_the_agents_outputs(ppo_source: Path) -> None:
    """Backbone + source head rebuilt from the folder give the SB3 policy's logits and value exactly."""
    import transferlab

    loaded = transferlab.load(ppo_source)
    agent = load_agent_folder(ppo_source)
    from transferlab.rl.agent import adapt, algorithm, build_agent
    from transferlab.strategies import create_strategy

    model = build_agent(algorithm("ppo"), EnvSpec("CartPole-v1"), seed=1, hidden=[64, 64], activation="tanh",
                        options={**algorithm("ppo").defaults})
    adapt(model, create_strategy("full"), source_backbone=agent.backbone_state, source_head=agent.head)
    obs = torch.randn(5, 4)
    with torch.no_grad():
        packed = loaded.source_head(loaded.backbone.features(obs))
        dist = model.policy.get_distribution(obs)
        value = model.policy.predict_values(obs)
    torch.testing.assert_close(packed[:, :2], dist.distribution.logits - dist.distribution.logits.logsumexp(-1, keepdim=True)
                               + packed[:, :2].logsumexp(-1, keepdim=True))
    torch.testing.assert_close(packed[:, 2:], value)


def test_same_seed_same_agent_different_seed_different(tmp_path: Path) -> None:
    a = pretrain_agent("CartPole-v1", steps=300, seed=4, out=tmp_path / "a", **TINY)
    b = pretrain_agent("CartPole-v1", steps=300, seed=4, out=tmp_path / "b", **TINY)
    c = pretrain_agent("CartPole-v1", steps=300, seed=5, out=tmp_path / "c", **TINY)
    wa, wb, wc = (load_agent_folder(p).backbone_state for p in (a.out, b.out, c.out))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a.curve == b.curve


def test_pretrain_refuses_to_overwrite_before_training(tmp_path: Path, ppo_source: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="already exists; pass --overwrite"):
        pretrain_agent("CartPole-v1", steps=100, out=tmp_path / "keep", **TINY)
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"


# --- finetune: strategies -------------------------------------------------------------------------------------


def test_full_keeps_the_source_policy_so_jumpstart_is_the_source_return(ppo_source: Path) -> None:
    cfg = json.loads((ppo_source / "config.json").read_text())
    r = finetune_agent(ppo_source, "CartPole-v1", strategy="full", steps=256, **TINY)
    assert r.heads == "source"
    assert r.metrics["jumpstart"] == pytest.approx(cfg["rl"]["kept"]["return"])


def test_partial_freezes_the_first_blocks_and_linear_probe_the_whole_backbone(ppo_source: Path, tmp_path: Path) -> None:
    src = load_agent_folder(ppo_source).backbone_state
    finetune_agent(ppo_source, "CartPole-v1", env_options={"length": 1.0}, strategy="partial",
                   strategy_options={"freeze": 1}, steps=512, out=tmp_path / "partial", **TINY)
    part = load_agent_folder(tmp_path / "partial").backbone_state
    assert torch.equal(part["blocks.fc1.1.weight"], src["blocks.fc1.1.weight"])
    assert not torch.equal(part["blocks.fc2.0.weight"], src["blocks.fc2.0.weight"])
    r = finetune_agent(ppo_source, "CartPole-v1", strategy="linear-probe", steps=512, out=tmp_path / "probe", **TINY)
    probe = load_agent_folder(tmp_path / "probe").backbone_state
    assert r.heads == "new" and r.trainable_parameters == 64 * 2 + 2 + 64 + 1
    assert all(torch.equal(probe[k], src[k]) for k in src)


def test_scratch_and_lora_and_l2sp_and_dqn(ppo_source: Path, dqn_source: Path, tmp_path: Path) -> None:
    src = load_agent_folder(ppo_source).backbone_state
    s = finetune_agent(ppo_source, "CartPole-v1", strategy="scratch", steps=256, out=tmp_path / "scratch", **TINY)
    assert s.heads == "new"
    assert not torch.equal(load_agent_folder(tmp_path / "scratch").backbone_state["blocks.fc1.1.weight"],
                           src["blocks.fc1.1.weight"])
    lo = finetune_agent(ppo_source, "CartPole-v1", strategy="lora", strategy_options={"rank": 2}, steps=256,
                        out=tmp_path / "lora", **TINY)
    assert lo.trainable_parameters < s.trainable_parameters
    merged = load_agent_folder(tmp_path / "lora").backbone_state  # adapters merged: plain tensor names
    assert set(merged) == set(src)
    l2 = finetune_agent(ppo_source, "CartPole-v1", strategy="l2-sp", strategy_options={"alpha": 0.1}, steps=256,
                        **TINY)
    assert l2.metrics["jumpstart"] == finetune_agent(ppo_source, "CartPole-v1", strategy="full", steps=256,
                                                     **TINY).metrics["jumpstart"]
    d = finetune_agent(dqn_source, "CartPole-v1", env_options={"force_mag": 5.0}, strategy="partial",
                       strategy_options={"freeze": 1}, steps=200, out=tmp_path / "dqn", **TINY)
    assert d.algo == "dqn" and d.heads == "source"
    cfg = json.loads((tmp_path / "dqn" / "config.json").read_text())
    assert cfg["rl"]["heads"] == {"q": [0, 2]} and cfg["label_names"] == ["q:0", "q:1"]


def test_a2c_is_an_actor_critic_like_ppo(tmp_path: Path) -> None:
    r = pretrain_agent("CartPole-v1", algo="a2c", steps=160, out=tmp_path / "a2c", **TINY)
    assert json.loads((tmp_path / "a2c" / "config.json").read_text())["rl"]["heads"] == {"action": [0, 2], "value": [2, 3]}
    ft = finetune_agent(tmp_path / "a2c", "CartPole-v1", strategy="full", steps=160, **TINY)
    assert ft.algo == "a2c" and ft.metrics["jumpstart"] == pytest.approx(r.metrics["kept_return"])


def test_space_mismatches_name_both_spaces(ppo_source: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"observes Box\(shape=\(4,\)\) \(CartPole-v1\) but Acrobot-v1 observes "
                                          r"Box\(shape=\(6,\)\)"):
        finetune_agent(ppo_source, "Acrobot-v1", steps=100)
    (tmp_path / "three.py").write_text(
        "import gymnasium as gym\nfrom gymnasium.envs.classic_control import CartPoleEnv\n"
        "class ThreeActions(CartPoleEnv):\n"
        "    def __init__(self, **kw):\n        super().__init__(**kw); self.action_space = gym.spaces.Discrete(3)\n"
        "    def step(self, a):\n        return super().step(min(int(a), 1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"acts in Discrete\(2\) but three:ThreeActions acts in Discrete\(3\)"):
        finetune_agent(ppo_source, "three:ThreeActions", keep_source_head=True, steps=100)
    r = finetune_agent(ppo_source, "three:ThreeActions", steps=256, **TINY)  # new heads fit any action count
    assert r.heads == "new"


def test_strategies_that_do_not_map_onto_an_agent_are_refused(ppo_source: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"strategy 'add-layers' does not apply to an RL agent.*'partial'"):
        finetune_agent(ppo_source, "CartPole-v1", strategy="add-layers")
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        finetune_agent(ppo_source, "CartPole-v1", strategy="nope")
    with pytest.raises(ConfigError, match=r"feature_blocks=\['0'\] does not apply to an RL agent.*drop feature_blocks"):
        finetune_agent(ppo_source, "CartPole-v1", strategy="linear-probe", strategy_options={"feature_blocks": ["0"]})
    with pytest.raises(ConfigError, match=r"--freeze 3 exceeds the backbone's 2 blocks"):
        finetune_agent(ppo_source, "CartPole-v1", strategy="partial", strategy_options={"freeze": 3}, steps=100)
    with pytest.raises(ConfigError, match=r"unknown --algo 'sac'; choose one of \['a2c', 'dqn', 'ppo'\]"):
        pretrain_agent("CartPole-v1", algo="sac")
    with pytest.raises(ConfigError, match=r"--algo ppo has no option\(s\) \['lr'\]; valid options are .*learning_rate"):
        pretrain_agent("CartPole-v1", algo_options={"lr": "1"})


# --- the command line -----------------------------------------------------------------------------------------


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cli_pretrain_and_finetune_json_keys(tmp_path: Path) -> None:
    out = _json(runner.invoke(app, ["pretrain", "--env", "CartPole-v1", "--env-option", "length=0.6", "--algo", "ppo",
                                    "--steps", "256", "--eval-episodes", "2", "--eval-points", "2",
                                    "--out", str(tmp_path / "src"), "--json"]))
    assert {"out", "algo", "env", "env_options", "steps", "seed", "episodes", "metrics", "curve"} <= set(out)
    assert out["env_options"] == {"length": 0.6} and out["curve"][0]["step"] == 0
    ft = _json(runner.invoke(app, ["finetune", str(tmp_path / "src"), "--env", "CartPole-v1", "--env-option",
                                   "length=1.0", "--strategy", "partial", "--freeze", "1", "--steps", "256",
                                   "--eval-episodes", "2", "--eval-points", "2", "--threshold", "15", "--json"]))
    assert ft["strategy"] == "partial" and ft["strategy_options"] == {"freeze": 1} and ft["heads"] == "source"
    assert set(ft["metrics"]) == {"jumpstart", "asymptotic_return", "auc", "final_return", "time_to_threshold"}


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["pretrain", "--env", "CartPole-v1", "--env-option", "lenght=1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        bad.output.strip().splitlines()[0]] and "valid options are" in bad.output
    assert not (tmp_path / "x").exists()
    data_folder = runner.invoke(app, ["finetune", str(tmp_path / "missing"), "--env", "CartPole-v1"])
    assert data_folder.exit_code == 2 and data_folder.output.startswith("error: ")


def test_missing_rl_extra_names_the_install_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import fails as if not installed
    result = runner.invoke(app, ["pretrain", "--env", "CartPole-v1"])
    assert result.exit_code == 2
    assert "RL tasks need stable-baselines3, which is not installed: pip install 'transferlab[rl]'" in result.output


def test_a_data_model_is_not_an_agent(tmp_path: Path) -> None:
    from transferlab.models import create_backbone
    from transferlab.artifacts import save_model_folder

    save_model_folder(tmp_path / "mlp", backbone=create_backbone("mlp", (4,)), head=None, head_spec=None,
                      info={"source_task": {"data": "iris.csv"}})
    with pytest.raises(ConfigError, match=r"is not an RL agent \(it was trained on iris.csv"):
        finetune_agent(tmp_path / "mlp", "CartPole-v1")


def test_compare_gives_verdicts_report_and_reuses_finished_runs(ppo_source: Path, tmp_path: Path) -> None:
    args = ["compare", str(ppo_source), "--env", "CartPole-v1", "--env-option", "length=1.0", "--strategies",
            "full,linear-probe", "--steps", "256", "--seeds", "2", "--eval-episodes", "2", "--eval-points", "2",
            "--out", str(tmp_path / "cmp"), "--json"]
    first = _json(runner.invoke(app, args))
    assert (first["ran"], first["skipped"], first["failed"]) == (6, 0, 0)
    cells = {c["strategy"]: c for c in first["cells"]}
    assert set(cells) == {"scratch", "full", "linear-probe"} and first["metric"] == "auc"
    assert cells["scratch"]["verdict"] == "baseline"
    assert cells["full"]["verdict"] in ("helps", "hurts", "no-difference")
    for key in ("mean", "ci_low", "ci_high", "delta_vs_scratch", "jumpstart", "asymptotic_return", "auc",
                "transfer_ratio", "time_to_threshold", "threshold"):
        assert key in cells["full"]
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "learning curves at 256 steps" in html and "data:image/png;base64," in html
    (tmp_path / "cmp" / "report.html").unlink()
    rebuilt = _json(runner.invoke(app, ["report", str(tmp_path / "cmp"), "--json"]))  # `report` knows RL folders
    assert rebuilt["cells"] == json.loads(json.dumps(first["cells"])) and (tmp_path / "cmp" / "report.html").is_file()
    again = _json(runner.invoke(app, args))
    assert (again["ran"], again["skipped"]) == (0, 6)
    changed = runner.invoke(app, [*args[:-1], "--seeds", "3", "--json"])
    assert changed.exit_code == 2 and "different config (seeds: 2 → 3)" in changed.output


@pytest.mark.slow
def test_compare_killed_mid_grid_resumes_without_redoing_finished_runs(ppo_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "transferlab", "compare", str(ppo_source), "--env", "CartPole-v1", "--strategies",
           "full", "--steps", "512", "--seeds", "3", "--eval-episodes", "2", "--eval-points", "2", "--out", str(out),
           "-q", "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    finished, _ = kill_after_runs(cmd, out / "runs.sqlite", 2, timeout=300, env=env, finished_only=True)
    assert finished >= 2
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["skipped"] >= 2 and summary["ran"] + summary["skipped"] == 6
    assert all(c["n_seeds"] == 3 for c in summary["cells"])


def _synthetic_run(name: str, seed: int, auc: float) -> dict:
    curve = [{"step": 0, "return": auc}, {"step": 100, "return": auc}]
    return {"status": "finished", "name": name, "strategy": name, "steps": 100, "seed": seed, "heads": "new",
            "train_seconds": 1.0, "curve": curve, "metrics": curve_metrics(curve)}


def test_compare_margin_names_an_equivalent_strategy_no_difference_and_is_checked() -> None:
    """Δ auc of +1, +3, −1, +1 returns over four seeds: inconclusive without a margin, no-difference within ±10."""
    from transferlab.rl.compare import RLCompareConfig
    from transferlab.rl.report import summarize

    runs = [_synthetic_run("scratch", s, 100.0) for s in range(4)]
    runs += [_synthetic_run("full", s, 100.0 + d) for s, d in enumerate([1.0, 3.0, -1.0, 1.0])]
    config = RLCompareConfig("src", "CartPole-v1", strategies=[{"name": "full", "options": {}}], steps=[100], seeds=4)
    full = lambda summary: next(c for c in summary["cells"] if c["strategy"] == "full")  # noqa: E731
    assert full(summarize(runs, config.to_dict()))["verdict"] == "inconclusive"
    assert full(summarize(runs, {**config.to_dict(), "margin": 10.0}))["verdict"] == "no-difference"
    with pytest.raises(ConfigError, match=r"--margin must be a number ≥ 0 in auc units \(returns\).*got -1"):
        RLCompareConfig("src", "CartPole-v1", margin=-1)
    bad = runner.invoke(app, ["compare", "src", "--env", "CartPole-v1", "--margin", "-5"])
    assert bad.exit_code == 2 and "--margin must be a number ≥ 0" in bad.output


# --- the saved source policy: the best evaluated one --------------------------------------------------------


def _scripted_evaluations(monkeypatch, good_steps: range) -> dict[int, dict[str, torch.Tensor]]:
    """Evaluation returns 50 inside `good_steps`, 10 elsewhere; records the backbone weights at each evaluation."""
    import transferlab.rl.run as run
    from transferlab.rl.agent import backbone_of

    seen: dict[int, dict[str, torch.Tensor]] = {}

    def evaluate(self, model):
        step = int(model.num_timesteps)
        seen[step] = {k: v.detach().clone() for k, v in backbone_of(model).state_dict().items()}
        return [50.0 if step in good_steps else 10.0] * len(self.envs)

    monkeypatch.setattr(run.Evaluator, "__call__", evaluate)
    return seen


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_pretrain_saves_the_best_evaluated_policy_not_the_last(tmp_path: Path, monkeypatch) -> None:
    """A DQN whose evaluation return peaks mid-run and falls back: the folder holds the weights of the peak."""
    run = dict(algo="dqn", steps=400, seed=0, hidden=[16, 16], algo_options=DQN_TINY, eval_episodes=2, eval_points=4)
    seen = _scripted_evaluations(monkeypatch, range(200, 201))  # points 0, 100, 200, 300, 400: the peak at 200
    best = pretrain_agent("CartPole-v1", out=tmp_path / "best", **run)
    assert best.kept == {"rule": "best", "step": 200, "return": 50.0}
    assert best.metrics["kept_return"] == 50.0 and best.metrics["final_return"] == 10.0
    cfg = json.loads((tmp_path / "best" / "config.json").read_text())
    assert cfg["rl"]["kept"] == {"rule": "best", "step": 200, "return": 50.0}
    saved = load_agent_folder(tmp_path / "best").backbone_state
    assert _same(saved, seen[200]) and not _same(saved, seen[400])  # DQN trained on after the peak
    last = pretrain_agent("CartPole-v1", out=tmp_path / "last", keep_best=False, **run)
    assert last.kept == {"rule": "last", "step": 400, "return": 10.0}
    assert _same(load_agent_folder(tmp_path / "last").backbone_state, seen[400])
    # equally good evaluations: the last of them is kept (a run that ends at its best keeps its end)
    flat = pretrain_agent("CartPole-v1", out=tmp_path / "flat", **{**run, "seed": 1, "algo": "ppo", "hidden": None,
                                                                   "algo_options": {}, "steps": 512})
    assert flat.kept["step"] == 512 and flat.kept["return"] == 10.0


def test_cli_pretrain_says_which_policy_it_saved(tmp_path: Path, monkeypatch) -> None:
    _scripted_evaluations(monkeypatch, range(256, 257))
    args = ["pretrain", "--env", "CartPole-v1", "--steps", "512", "--eval-episodes", "2", "--eval-points", "2"]
    best = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert best.exit_code == 0, best.output
    assert "saved the best evaluated policy: return 50.0 at step 256 (last evaluation 10.0)" in best.output
    last = runner.invoke(app, [*args, "--keep-last", "--out", str(tmp_path / "b")])
    assert "saved the last weights: evaluation return 10.0" in last.output
    assert json.loads((tmp_path / "b" / "config.json").read_text())["rl"]["kept"]["rule"] == "last"


# --- resume of a killed run ------------------------------------------------------------------------------------


class _Killed(Exception):
    pass


def _kill_after_checkpoints(monkeypatch, n: int) -> None:
    """Make the run die right after its n-th checkpoint is written (as a kill at that moment would)."""
    import transferlab.rl.checkpoint as ckpt

    original, count = ckpt.save_checkpoint, {"n": 0}

    def save_then_die(*args, **kwargs):
        original(*args, **kwargs)
        count["n"] += 1
        if count["n"] >= n:
            raise _Killed()

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)


@pytest.mark.parametrize("algo, options", [("ppo", {}), ("dqn", {**DQN_TINY, "learning_starts": 100})])
def test_killed_run_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch, algo: str, options: dict) -> None:
    import shutil

    run = dict(algo=algo, steps=1024, seed=3, algo_options=options, eval_episodes=2, eval_points=4,
               checkpoint_every=256, **({"hidden": [16, 16]} if algo == "dqn" else {}))
    whole = pretrain_agent("CartPole-v1", out=tmp_path / "whole", **run)
    with monkeypatch.context() as m:
        _kill_after_checkpoints(m, 2)
        with pytest.raises(_Killed):
            pretrain_agent("CartPole-v1", out=tmp_path / "killed", **run)
    # the checkpoint lives beside --out in the run-private folder; a killed first run leaves no --out
    assert not (tmp_path / "killed").exists()
    assert sorted(p.name for p in (tmp_path / ".killed.run").iterdir()) == ["checkpoint.pt"]
    with pytest.raises(ConfigError, match=r"holds an unfinished run \(checkpoint.pt\); pass --resume"):
        pretrain_agent("CartPole-v1", out=tmp_path / "killed", **run)
    with pytest.raises(ConfigError, match=r"checkpoint in .* is of a different run \(seed: 3 → 4\)"):
        pretrain_agent("CartPole-v1", out=tmp_path / "killed", resume=True, **{**run, "seed": 4})
    shutil.copytree(tmp_path / ".killed.run", tmp_path / ".killed-copy.run")
    resumed = pretrain_agent("CartPole-v1", out=tmp_path / "killed", resume=True, **run)
    again = pretrain_agent("CartPole-v1", out=tmp_path / "killed-copy", resume=True, **run)
    assert not (tmp_path / "killed" / "checkpoint.pt").exists() and not (tmp_path / ".killed.run").exists()
    # the curve up to the checkpoint (step 512) is the uninterrupted run's; the resume itself is deterministic
    assert [p["return"] for p in resumed.curve[:3]] == [p["return"] for p in whole.curve[:3]]
    assert resumed.curve == again.curve and len(resumed.curve) == 5
    w1, w2 = load_agent_folder(tmp_path / "killed").backbone_state, load_agent_folder(tmp_path / "killed-copy").backbone_state
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert json.loads((tmp_path / "killed" / "config.json").read_text())["training"]["steps"] == 1024


def test_killed_pretraining_keeps_its_best_policy_across_the_resume(tmp_path: Path, monkeypatch) -> None:
    """The best weights so far travel in the checkpoint: a run killed after its peak still saves the peak."""
    run = dict(algo="dqn", steps=400, seed=2, hidden=[16, 16], algo_options=DQN_TINY, eval_episodes=2, eval_points=4,
               checkpoint_every=100)
    seen = _scripted_evaluations(monkeypatch, range(100, 101))
    whole = pretrain_agent("CartPole-v1", out=tmp_path / "whole", **run)
    peak = seen[100]
    with monkeypatch.context() as m:
        _kill_after_checkpoints(m, 2)  # after the peak at step 100 was evaluated
        with pytest.raises(_Killed):
            pretrain_agent("CartPole-v1", out=tmp_path / "killed", **run)
    resumed = pretrain_agent("CartPole-v1", out=tmp_path / "killed", resume=True, **run)
    assert resumed.kept == whole.kept == {"rule": "best", "step": 100, "return": 50.0}
    assert _same(load_agent_folder(tmp_path / "killed").backbone_state, peak)
    assert not _same(seen[400], peak)  # the resumed run trained on past the peak


def test_resume_errors(tmp_path: Path, ppo_source: Path) -> None:
    with pytest.raises(ConfigError, match="--resume needs --out"):
        pretrain_agent("CartPole-v1", steps=100, resume=True)
    with pytest.raises(ConfigError, match=r"holds no RL checkpoint \(checkpoint.pt\); run without --resume"):
        finetune_agent(ppo_source, "CartPole-v1", steps=100, out=tmp_path / "none", resume=True)


def test_killed_finetune_with_adapters_resumes(tmp_path: Path, monkeypatch, ppo_source: Path) -> None:
    run = dict(env_options={"length": 1.0}, strategy="lora", strategy_options={"rank": 2}, steps=768, seed=1,
               eval_episodes=2, eval_points=3, checkpoint_every=256)
    with monkeypatch.context() as m:
        _kill_after_checkpoints(m, 1)
        with pytest.raises(_Killed):
            finetune_agent(ppo_source, "CartPole-v1", out=tmp_path / "ft", **run)
    r = finetune_agent(ppo_source, "CartPole-v1", out=tmp_path / "ft", resume=True, **run)
    assert len(r.curve) == 4 and r.heads == "source"
    assert set(load_agent_folder(tmp_path / "ft").backbone_state) == set(load_agent_folder(ppo_source).backbone_state)


def test_compare_refuses_bad_settings_before_any_run(ppo_source: Path, tmp_path: Path) -> None:
    from transferlab.rl.compare import RLCompareConfig

    with pytest.raises(ConfigError, match=r"--metric 'return' is not one of \['auc', 'asymptotic_return'"):
        RLCompareConfig(str(ppo_source), "CartPole-v1", metric="return")
    with pytest.raises(ConfigError, match=r"--seeds must be ≥ 2 \(a verdict needs a spread over seeds\); got 1"):
        RLCompareConfig(str(ppo_source), "CartPole-v1", seeds=1)
    bad = runner.invoke(app, ["compare", str(ppo_source), "--env", "CartPole-v1", "--strategies", "full,add-layers",
                              "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "strategy 'add-layers' does not apply to an RL agent" in bad.output
    assert not (tmp_path / "c").exists()


def test_compare_refuses_an_out_folder_with_the_users_files(tmp_path):
    """Like every compare: --out with files transferlab did not write is refused (even with force), nothing touched."""
    from transferlab.errors import ArtifactError
    from transferlab.rl.compare import RLCompareConfig, compare_agents

    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("the user's own report")
    with pytest.raises(ArtifactError, match=r"did not write \(report\.html\)"):
        compare_agents(RLCompareConfig(str(tmp_path / "no-model"), "CartPole-v1", {}), out, force=True)
    assert (out / "report.html").read_text() == "the user's own report" and sorted(os.listdir(out)) == ["report.html"]
