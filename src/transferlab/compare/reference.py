"""Reference baselines that are not strategies: for text, TF-IDF features + logistic regression (scikit-learn);
and source-only: the pretrained model with its own source head, applied to the target unchanged.

A classic, cheap line to read the neural strategies against: it sees exactly the same labelled
examples of each (shots, seed) cell and is scored on the same test split.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..data.task import TaskSplit

TFIDF = "tfidf-logreg"
SOURCE_ONLY = "source-only"  # the pretrained model with its source head, classes matched by name (no training)


def tfidf_logreg(split: TaskSplit, seed: int) -> dict[str, Any]:
    """Fit TF-IDF (word 1–2-grams, sublinear tf) + logistic regression on the split's training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform([str(t) for t in split.x_train])
    classifier = LogisticRegression(max_iter=2000, C=10.0, random_state=seed)
    classifier.fit(x_train, split.y_train)
    seconds = time.perf_counter() - start
    predicted = classifier.predict(vectorizer.transform([str(t) for t in split.x_test]))
    labels = np.arange(split.task.num_classes)
    return {
        "status": "finished",
        "test_accuracy": float((predicted == split.y_test).mean()),
        "macro_f1": float(f1_score(split.y_test, predicted, labels=labels, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(split.y_test, predicted)),
        "majority_rate": float(np.bincount(split.y_test).max() / len(split.y_test)),
        "test_predictions": predicted.astype(int).tolist(),
        "test_labels": split.y_test.astype(int).tolist(),
        "n_test": int(len(split.y_test)),
        "train_seconds": seconds,
        "n_train": int(len(split.y_train)),
        "trainable_params": int(classifier.coef_.size + classifier.intercept_.size),
        "total_params": int(classifier.coef_.size + classifier.intercept_.size),
        "history": [],
    }
