"""Analyses of transfer: choose before you train, and see what transferred.

- transferability scores from features, without fine-tuning: LogME, LEEP, H-score, a k-fold
  linear-probe accuracy (`rank`, transferability.py, probe.py), validated against compare results
  by Kendall's τ (validation.py);
- strategy advice from layer-wise scores, the domain gap and the number of labels (`advise`);
- what transferred: layer-wise linear CKA, weight drift, forgetting and attributions (`explain`).

Importing this package loads numpy and torch but none of captum, scipy or matplotlib: those load
inside the functions that use them.

Example:
    >>> from transferlab.analysis import rank, advise, explain
    >>> rank(["models/cnn", "models/mlp"], "digits", shots=10, image_size=28, image_margin=4)  # doctest: +SKIP
"""

from .advice import Advice, advise
from .drift import weight_drift
from .domain_gap import normalized_frechet_distance
from .explanation import ExplainResult, explain
from .forgetting import Forgetting, forgetting
from .ranking import RankResult, rank
from .similarity import linear_cka
from .transferability import hscore, leep, logme

__all__ = [
    "Advice",
    "ExplainResult",
    "Forgetting",
    "RankResult",
    "advise",
    "explain",
    "forgetting",
    "hscore",
    "leep",
    "linear_cka",
    "logme",
    "normalized_frechet_distance",
    "rank",
    "weight_drift",
]
