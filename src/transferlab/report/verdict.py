"""The headline in words: where transfer helps, where it makes no difference, where it hurts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cells import Cell, cells_at, is_all, is_baseline, number, ordered_shots, shots_int, shots_key, shots_label
from .numbers import short_delta


@dataclass(frozen=True)
class Headline:
    """The verdict sentence and one warning per cell where transfer hurts (plain text, not escaped)."""

    summary: str
    warnings: list[str]


def budget_phrase(shots_values: Sequence[Any]) -> str:
    """'at 1 and 5 labels per class', 'with all labels', or both joined."""
    ints = [shots_int(s) for s in shots_values if shots_int(s) is not None]
    parts = []
    if ints:
        unit = "label per class" if ints == [1] else "labels per class"
        parts.append(f"at {_join([str(n) for n in ints])} {unit}")
    if any(is_all(s) for s in shots_values):
        parts.append("with all labels")
    others = [str(s) for s in shots_values if shots_int(s) is None and not is_all(s)]
    if others:
        parts.append(f"at {_join(others)} labels")
    return " and ".join(parts)


def headline(cells: Sequence[Cell]) -> Headline:
    """Per label budget, the best strategy against scratch, in the verdict words of summary.json
    (helps, no-difference, inconclusive, hurts); every `hurts` cell as a warning."""
    transfer = [c for c in cells if not is_baseline(c)]
    if not transfer:
        return Headline("Only the scratch baseline was run: there is no transfer strategy to compare.", [])

    helps: list[tuple[Any, Cell]] = []
    hurts_all: list[Any] = []
    neutral: list[Any] = []
    undecided: list[Any] = []
    needed: list[int] = []
    for shots in ordered_shots(transfer):
        here = cells_at(transfer, shots)
        winners = [c for c in here if c.get("verdict") == "helps"]
        if winners:
            helps.append((shots, max(winners, key=lambda c: number(_delta(c)) or 0.0)))
        elif all(c.get("verdict") == "hurts" for c in here):
            hurts_all.append(shots)
        elif any(c.get("verdict") == "inconclusive" for c in here):
            undecided.append(shots)
            needed += [int(n) for c in here if (n := number(c.get("seeds_needed"))) is not None]
        else:
            neutral.append(shots)

    sentences = []
    if helps:
        budgets = budget_phrase([s for s, _ in helps])
        names = {str(c["strategy"]) for _, c in helps}
        deltas = [short_delta(_delta(c)) for _, c in helps]
        against = {_against(c) for _, c in helps}
        if len(names) == 1 and len(against) == 1:
            detail = f"{', '.join(deltas)} over {against.pop()} for {names.pop()}"
        else:
            detail = ", ".join(f"{d} over {_against(c)} for {c['strategy']}" for d, (_, c) in zip(deltas, helps))
        sentences.append(f"Transfer helps {budgets} ({detail})")
    if neutral:
        sentences.append(f"no-difference {budget_phrase(neutral)}")
    if undecided:
        more = f": about {max(needed)} seeds would decide it" if needed else ""
        sentences.append(f"inconclusive {budget_phrase(undecided)}{more}")
    if hurts_all:
        sentences.append(f"every strategy hurts {budget_phrase(hurts_all)}")
    text = "; ".join(sentences)
    text = text[0].upper() + text[1:] + "."

    warnings = [
        f"{c['strategy']} hurts {budget_phrase([c['shots']])} ({short_delta(_delta(c))}{'' if _against(c) == 'scratch' else ' vs ' + _against(c)})"
        for c in sorted(transfer, key=lambda c: shots_key(c["shots"]))
        if c.get("verdict") == "hurts"
    ]
    return Headline(text, warnings)


def _against(cell: Cell) -> str:
    """The baseline a cell's verdict is against: scratch, or source-only at 0 labels."""
    return str(cell.get("verdict_baseline") or "scratch")


def _delta(cell: Cell) -> Any:
    return cell.get("delta_vs_scratch") if _against(cell) == "scratch" else cell.get("delta_vs_source_only")


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def shots_heading(shots: Any) -> str:
    """'5 labels per class' / 'all labels' for section headings."""
    n = shots_int(shots)
    if n is not None:
        return f"{n} label{'s' if n != 1 else ''} per class"
    return "all labels" if is_all(shots) else f"{shots_label(shots)} labels"
