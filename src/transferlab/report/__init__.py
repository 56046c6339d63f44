"""The comparison report: one self-contained report.html (inline CSS, figures as base64 PNG, no network).

Example:
    >>> from transferlab.report import write_report
    >>> write_report("runs/cmp/report.html", summary, runs, config=config, versions=versions)  # doctest: +SKIP
"""

from __future__ import annotations

from .document import render_report, write_report

__all__ = ["render_report", "write_report"]
