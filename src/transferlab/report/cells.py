"""The grid a comparison ran: order of shots and strategies, the scratch baseline, input checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Cell = Mapping[str, Any]

BASELINE = "scratch"
_REQUIRED_CELL_KEYS = ("strategy", "shots")


def check_summary(summary: Any) -> list[Cell]:
    """Return the summary's cells, or raise ValueError naming what is missing and the fix."""
    if not isinstance(summary, Mapping) or not isinstance(summary.get("cells"), list):
        got = type(summary).__name__ if not isinstance(summary, Mapping) else f"keys {sorted(summary)}"
        raise ValueError(
            f"summary must be a dict with a 'cells' list (got {got}); "
            "pass the summary that `transferlab compare` wrote (summary.json)."
        )
    cells = summary["cells"]
    for i, cell in enumerate(cells):
        if not isinstance(cell, Mapping):
            raise ValueError(f"summary['cells'][{i}] must be a dict, got {type(cell).__name__}.")
        missing = [k for k in _REQUIRED_CELL_KEYS if k not in cell]
        if missing:
            raise ValueError(
                f"summary['cells'][{i}] is missing {missing}; every cell needs {list(_REQUIRED_CELL_KEYS)} "
                f"(got keys {sorted(cell)})."
            )
    return cells


def is_all(shots: Any) -> bool:
    """True for the 'every available label' budget."""
    return shots is None or (isinstance(shots, str) and shots.strip().lower() == "all")


def shots_int(shots: Any) -> int | None:
    """The per-class label budget as an int, or None for 'all' (or anything that is not a count)."""
    if isinstance(shots, bool):
        return None
    if isinstance(shots, int):
        return shots
    if isinstance(shots, float) and shots.is_integer():
        return int(shots)
    if isinstance(shots, str) and shots.strip().isdigit():
        return int(shots.strip())
    return None


def shots_key(shots: Any) -> tuple[int, int, str]:
    """Sort key: int budgets ascending, then 'all', then anything else by name."""
    n = shots_int(shots)
    if n is not None:
        return (0, n, "")
    if is_all(shots):
        return (1, 0, "")
    return (2, 0, str(shots))


def shots_label(shots: Any) -> str:
    """'5' for an int budget, 'all' for every label."""
    n = shots_int(shots)
    if n is not None:
        return str(n)
    return "all" if is_all(shots) else str(shots)


def ordered_shots(cells: Iterable[Cell]) -> list[Any]:
    """Distinct shots values (first spelling seen), smallest budget first, 'all' last."""
    seen: dict[tuple[int, int, str], Any] = {}
    for cell in cells:
        seen.setdefault(shots_key(cell["shots"]), cell["shots"])
    return [seen[k] for k in sorted(seen)]


def is_baseline(cell: Cell) -> bool:
    """True for the scratch cell every other cell is compared against."""
    return cell.get("verdict") == "baseline" or cell["strategy"] == BASELINE


def ordered_strategies(cells: Iterable[Cell]) -> list[str]:
    """Distinct strategy names: scratch first, then in the order the grid listed them."""
    names: list[str] = []
    baseline: list[str] = []
    for cell in cells:
        name = str(cell["strategy"])
        target = baseline if is_baseline(cell) else names
        if name not in names and name not in baseline:
            target.append(name)
    return baseline + names


def cells_at(cells: Iterable[Cell], shots: Any) -> list[Cell]:
    """The cells run with this label budget."""
    key = shots_key(shots)
    return [c for c in cells if shots_key(c["shots"]) == key]


def number(value: Any) -> float | None:
    """A finite float, or None for missing / not-a-number values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def verdict_label(cell: Cell) -> str:
    """The verdict with the baseline it is against: 'helps vs scratch', and vs source-only where that was run.

    At 0 labels there is no scratch run: the verdict is against source-only (the pretrained model's own head).
    """
    verdict = str(cell.get("verdict") or "—")
    if verdict == "baseline":
        return verdict
    against = cell.get("verdict_baseline") or BASELINE
    text = f"{verdict} vs {against}"
    other = cell.get("verdict_vs_source_only")
    if other and against != "source-only":
        text += f"; {other} vs source-only"
    return text
