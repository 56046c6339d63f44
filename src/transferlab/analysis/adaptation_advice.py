"""Advice when an unlabeled target pool is given: which domain-adaptation strategy, and why.

At 0 labels LogME cannot be computed (it needs labels), so the choice rests on what is available —
labelled source data whose classes match the target's, a source head that names the target
classes — and on the domain gap measured between source and target features (labels unused).
The order follows what benchmarks/domain_adaptation.py measured (docs/domain_adaptation.md): with
source data, self-training was the best on MNIST-5k → USPS; without it, source-free (SHOT-IM); with
a small gap, AdaBN is the cheap first thing to try.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


def adaptation_choice(*, has_source: bool, head_matches: bool, level: str) -> tuple[str, str]:
    """(strategy, why) for a run with no target labels.

    Example:
        >>> adaptation_choice(has_source=True, head_matches=True, level="large")[0]
        'self-training'
    """
    if level == "small" and head_matches:
        return "adabn", ("the domain gap is small, so re-estimating BatchNorm statistics on the target (adabn) is the "
                         "cheap first step; self-training can add more when source data is at hand")
    if has_source:
        return "self-training", ("labelled source data with the target's class names is available: self-training "
                                 "(source labels + confident target pseudo-labels) was the best measured method at 0 labels")
    if head_matches:
        return "source-free", ("no labelled source data is available, but the model's source head names the target's "
                               "classes: source-free adaptation (SHOT-IM) needs only the model and the unlabeled pool")
    raise ConfigError(
        "with 0 labels something must name the target's classes: the model's source head does not, and no labelled "
        "source data with the same class names is available; pass --source-data, or label a few examples (--shots K)"
    )


def unlabeled_note(level: str, shots: Any, unlabeled_data: str, n_rows: int) -> str:
    """The note `advise` adds when an unlabeled pool is given beside K labels per class."""
    gap = {"large": "a large", "moderate": "a moderate", "small": "a small"}.get(level, "an unmeasured")
    return (f"an unlabeled pool is given ({n_rows} rows of {unlabeled_data}); with {gap} domain gap, a domain-adaptation "
            f"strategy can learn from it beside the {shots} labels per class: e.g. --strategy self-training --shots "
            f"{shots} --unlabeled-data {unlabeled_data} (docs/domain_adaptation.md)")
