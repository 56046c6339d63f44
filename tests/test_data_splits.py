"""Validation and K-shot training splits, and the parsers for --shots and --classes."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data import InputSpec, Task, parse_classes, parse_shots, split_task
from transferlab.errors import DataError


def make_task(per_class=(20, 20, 20), name="toy") -> Task:
    y = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)]).astype(np.int64)
    x = np.arange(len(y), dtype=np.float32)[:, None]  # row identity as the only feature
    return Task(
        name=name, x_pool=x, y_pool=y, x_test=x[:3], y_test=y[:3],
        class_names=[f"c{i}" for i in range(len(per_class))],
        input_spec=InputSpec("vector", (1,)), source="memory",
    )


def test_k_shot_gives_k_per_class_from_train_only():
    task = make_task()
    split = split_task(task, shots=5, seed=0)
    assert np.bincount(split.y_train).tolist() == [5, 5, 5]
    assert not set(split.train_index) & set(split.val_index)
    np.testing.assert_array_equal(split.x_train, task.x_pool[split.train_index])
    np.testing.assert_array_equal(split.y_val, task.y_pool[split.val_index])
    assert split.shots == 5 and split.seed == 0


def test_validation_is_stratified_and_seed_independent():
    task = make_task((30, 10, 3))
    a, b = split_task(task, shots=1, seed=0), split_task(task, shots=1, seed=99)
    np.testing.assert_array_equal(a.val_index, b.val_index)
    assert np.bincount(a.y_val).tolist() == [3, 1, 1]


def test_all_shots_uses_every_non_validation_row():
    task = make_task()
    split = split_task(task, shots=None, seed=0)
    assert sorted(np.concatenate([split.train_index, split.val_index]).tolist()) == list(range(60))
    assert split.shots is None


def test_same_seed_same_shots_different_seed_different_examples():
    task = make_task()
    a, b, c = (split_task(task, shots=4, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.train_index, b.train_index)
    assert not np.array_equal(a.train_index, c.train_index)


def test_too_few_examples_names_class_and_suggests_fix():
    task = make_task((20, 4, 20))
    with pytest.raises(DataError, match=r"class 'c1' has 3 training examples, fewer than shots=5; "
                       r"use a smaller --shots \(at most 3\) or --shots all"):
        split_task(task, shots=5, seed=0)


def test_empty_validation_split_is_named():
    with pytest.raises(DataError, match="toy: the validation split is empty"):
        split_task(make_task((1, 1)), shots=None, seed=0)


@pytest.mark.parametrize("bad", [0, -1, "0", "abc"])
def test_bad_shots_rejected(bad):
    with pytest.raises(DataError, match="shots must be"):
        split_task(make_task(), shots=bad, seed=0)


@pytest.mark.parametrize("value, expected", [("all", None), ("ALL", None), (None, None), ("10", 10), (10, 10)])
def test_parse_shots(value, expected):
    assert parse_shots(value) == expected


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "2.5", 0, -3, True])
def test_parse_shots_rejects(bad):
    with pytest.raises(DataError, match=r"shots must be .*; got "):
        parse_shots(bad)


@pytest.mark.parametrize("value, expected", [
    ("0-4", ["0", "1", "2", "3", "4"]),
    ("5,7,9", ["5", "7", "9"]),
    ("0-2,7", ["0", "1", "2", "7"]),
    (" 3 , 1 ", ["3", "1"]),
    ("cat,t-shirt", ["cat", "t-shirt"]),
    ([3, 1], ["3", "1"]),
    (["dog", "cat"], ["dog", "cat"]),
])
def test_parse_classes(value, expected):
    assert parse_classes(value) == expected


@pytest.mark.parametrize("bad, message", [
    ("4-2", "runs backwards"),
    ("1,,2", "empty entry"),
    ("", "empty entry"),
    ([], "class selection is empty"),
    ("1,2,1", "names 1 more than once"),
    ([1.5], "got 1.5"),
    ([-1], "got -1"),
])
def test_parse_classes_rejects(bad, message):
    with pytest.raises(DataError, match=message):
        parse_classes(bad)
