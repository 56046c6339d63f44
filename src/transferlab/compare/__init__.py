"""Comparisons: grids of runs against the from-scratch baseline, statistics, verdicts."""

from .config import CompareConfig, StrategySpec, load_config_file, parse_shots_list
from .grid import ComparisonResult, run_comparison
from .outputs import rebuild

__all__ = [
    "CompareConfig",
    "ComparisonResult",
    "StrategySpec",
    "load_config_file",
    "parse_shots_list",
    "rebuild",
    "run_comparison",
]
