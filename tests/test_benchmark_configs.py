"""The long benchmarks build their comparisons from the registry: a strategy added later must not stop them.

benchmarks/strategies.py once stopped at its first comparison with a ConfigError after the domain-adaptation
strategies (which need unlabeled data) joined the registry; nothing ran it short of its 44 minutes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transferlab.engine.adaptation import adaptation_strategies
from transferlab.strategies import list_strategies

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_strategies_benchmark_builds_a_valid_comparison_of_every_label_strategy(tmp_path):
    bench = _module("strategies")
    args = bench.parse_args([])
    strategies = bench.benchmark_strategies()
    names = [s.name for s in strategies]
    # every registered strategy that learns from labels, none of those that need unlabeled data
    assert names == [n for n in list_strategies() if n not in set(adaptation_strategies())]
    assert {"scratch", "full", "linear-probe", "lp-ft"} <= set(names)
    config = bench.comparison_config(args, tmp_path / "pretrained", "digits", strategies)
    assert [s.name for s in config.strategies] == names
    assert config.shots == [1, 5, 10, 50] and config.seeds == 3
