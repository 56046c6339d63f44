"""Comparisons: grids of runs, statistics, verdicts."""
