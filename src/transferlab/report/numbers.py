"""How numbers are written in the report: accuracies, deltas, CIs, parameter counts, FLOPs."""

from __future__ import annotations

from typing import Any

from .cells import number

MISSING = "—"
_MINUS = "\u2212"  # a real minus sign: '-0.04' reads as a hyphen in running text


def signed(value: Any, digits: int = 3) -> str:
    """'+0.012' / '−0.040'; MISSING for None."""
    x = number(value)
    if x is None:
        return MISSING
    return f"{x:+.{digits}f}".replace("-", _MINUS)


def short_delta(value: Any) -> str:
    """A delta for prose: two decimals, three when two would round to zero."""
    x = number(value)
    if x is None:
        return MISSING
    return signed(x, 2 if abs(x) >= 0.005 else 3)


def plain(value: Any, digits: int = 3) -> str:
    """'0.812'; MISSING for None."""
    x = number(value)
    return MISSING if x is None else f"{x:.{digits}f}".replace("-", _MINUS)


def with_ci(mean: Any, low: Any, high: Any, *, sign: bool = False) -> str:
    """'0.812 [0.790, 0.834]', or just the mean when there is no CI (one seed)."""
    fmt = signed if sign else plain
    text = fmt(mean)
    if number(low) is not None and number(high) is not None:
        text += f" [{fmt(low)}, {fmt(high)}]"
    return text


def si(value: Any, unit: str = "") -> str:
    """A count in SI units: 1234 -> '1.2k', 1.2e9 FLOP -> '1.2 GFLOP'."""
    x = number(value)
    if x is None:
        return MISSING
    sep = " " if unit else ""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.1f}{sep}{prefix}{unit}"
    return f"{x:.0f}{sep}{unit}" if x == int(x) else f"{x:.3g}{sep}{unit}"


def seconds(value: Any) -> str:
    """'12.3' seconds, '0.042' for short runs."""
    x = number(value)
    if x is None:
        return MISSING
    return f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def speedup(value: Any) -> str:
    """'3.4×'; 'never reached' when the strategy never reached scratch's accuracy."""
    x = number(value)
    return "never reached" if x is None else f"{x:.2g}×" if x < 10 else f"{x:.0f}×"
