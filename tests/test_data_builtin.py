"""Built-in datasets: counts, ranges, the fixed test split, class selection and framing."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data import InputSpec, check_input_fits, list_datasets, load_task, split_task
from transferlab.data.builtin import DATASETS
from transferlab.errors import DataError, ShapeError


@pytest.fixture(scope="module")
def mnist():
    return load_task("mnist5k")


@pytest.fixture(scope="module")
def digits():
    return load_task("digits")


def test_list_datasets_describes_builtins_without_loading():
    info = {d["name"]: d for d in list_datasets()}
    assert info["mnist5k"]["n"] == 5000 and info["mnist5k"]["input_shape"] == [1, 28, 28]
    assert info["digits"]["n"] == 1797 and info["digits"]["input_shape"] == [1, 8, 8]
    assert info["digits"]["classes"] == [str(i) for i in range(10)]
    assert set(info) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_builtin_matches_its_registered_facts(name, request):
    task = request.getfixturevalue({"mnist5k": "mnist", "digits": "digits"}[name])
    facts = DATASETS[name]
    assert len(task.y_pool) + len(task.y_test) == facts.n
    assert task.input_spec == InputSpec("image", facts.input_shape)
    assert task.class_names == list(facts.classes)
    for x in (task.x_pool, task.x_test):
        assert x.dtype == np.float32 and x.shape[1:] == facts.input_shape
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert task.x_pool.max() == 1.0


def test_mnist_test_split_is_stratified_100_per_class(mnist):
    assert np.bincount(mnist.y_test).tolist() == [100] * 10
    assert np.bincount(mnist.y_pool).tolist() == [400] * 10
    assert mnist.y_pool.dtype == np.int64


def test_test_split_is_fixed_and_disjoint_from_pool(mnist):
    again = load_task("mnist5k")
    np.testing.assert_array_equal(again.test_index, mnist.test_index)
    np.testing.assert_array_equal(again.x_test, mnist.x_test)
    assert not set(mnist.test_index) & set(mnist.pool_index)
    assert len(set(mnist.test_index) | set(mnist.pool_index)) == 5000


def test_test_split_does_not_depend_on_run_seed(digits):
    a, b = split_task(digits, shots=5, seed=1), split_task(digits, shots=5, seed=2)
    assert a.x_test is b.x_test is digits.x_test


def test_class_selection_reindexes_in_given_order(digits):
    task = load_task("digits", classes="7,3")
    assert task.class_names == ["7", "3"]
    assert set(task.y_pool) == {0, 1}
    np.testing.assert_array_equal(task.x_test[task.y_test == 0], digits.x_test[digits.y_test == 7])
    assert task.preprocessing["classes"] == ["7", "3"]


def test_class_subset_test_split_is_subset_of_full_test_split(digits):
    subset = load_task("digits", classes="0-4")
    assert subset.class_names == ["0", "1", "2", "3", "4"]
    full_test = set(digits.test_index[digits.y_test < 5])
    assert set(subset.test_index) == full_test
    assert set(subset.pool_index) == set(digits.pool_index[digits.y_pool < 5])


def test_class_selection_accepts_list_of_ints(digits):
    assert load_task("digits", classes=[1, 2]).class_names == ["1", "2"]


def test_unknown_class_names_it_and_lists_available():
    with pytest.raises(DataError, match=r"digits has no class '12'; available classes: 0, 1, 2, .*9"):
        load_task("digits", classes="0,12")


def test_digits_framed_like_mnist_have_empty_border_and_inked_centre():
    task = load_task("digits", image_size=28, image_margin=4)
    assert task.input_spec == InputSpec("image", (1, 28, 28))
    x = np.concatenate([task.x_pool, task.x_test])
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert np.all(x[:, 0, border] == 0.0)
    assert np.all(x[:, 0, 4:24, 4:24].max(axis=(1, 2)) > 0.5)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert task.preprocessing["image_size"] == 28 and task.preprocessing["image_margin"] == 4
    assert len(task.y_test) == 359  # the same rows as unframed digits


def test_check_input_fits_suggests_image_size(digits):
    check_input_fits(digits, InputSpec("image", (1, 8, 8)), model_name="m")  # fits: no error
    with pytest.raises(ShapeError, match=r"digits gives 1×8×8 image inputs but the pretrained model 'models/src' "
                       r"expects 1×28×28 images; pass --image-size 28 \(add --image-margin 4"):
        check_input_fits(digits, InputSpec("image", (1, 28, 28)), model_name="models/src")


def test_check_input_fits_vectors_and_kinds():
    with pytest.raises(ShapeError, match="10-feature vector inputs .* expects 64-feature vectors"):
        check_input_fits(InputSpec("vector", (10,)), InputSpec("vector", (64,)), model_name="m")
    with pytest.raises(ShapeError, match="cannot read vectors"):
        check_input_fits(InputSpec("vector", (64,)), InputSpec("image", (1, 8, 8)), model_name="m")
    with pytest.raises(ShapeError, match="convert the images to grayscale"):
        check_input_fits(InputSpec("image", (3, 8, 8)), InputSpec("image", (1, 8, 8)), model_name="m")


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, transferlab.data; "
            "print([m for m in ('torch', 'PIL', 'sklearn', 'mlxtend') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
