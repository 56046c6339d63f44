"""The engine: training and evaluation loops, seeding and threads."""

from .feature_cache import FeatureCache, cacheable_prefix, prefix_features
from .evaluate import accuracy, classification_metrics, mse, predict_logits, regression_metrics
from .runtime import DEFAULT_THREADS, resolve_threads, seed_everything
from .train import RunResult, TrainConfig, fit

__all__ = [
    "DEFAULT_THREADS",
    "FeatureCache",
    "cacheable_prefix",
    "prefix_features",
    "RunResult",
    "TrainConfig",
    "accuracy",
    "classification_metrics",
    "fit",
    "mse",
    "predict_logits",
    "regression_metrics",
    "resolve_threads",
    "seed_everything",
]
