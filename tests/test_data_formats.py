"""User datasets by path: every reader with a tiny valid file, and every error it can raise."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data import InputSpec, load_task
from transferlab.errors import DataError

Y3 = np.repeat([0, 1, 2], 4)  # 3 classes × 4 examples: one test row per class


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_idx(path: Path, array: np.ndarray) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def save_png(path: Path, size=(6, 5), mode="L", value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 0)
    Image.new(mode, size, color).save(path)
    return path


# --- .npz ---------------------------------------------------------------------------------

def test_npz_vectors_are_float32_and_not_rescaled(tmp_path):
    x = np.arange(24, dtype=np.int64).reshape(12, 2) * 10
    task = load_task(str(save_npz(tmp_path / "v.npz", x=x, y=Y3)))
    assert task.input_spec == InputSpec("vector", (2,))
    assert task.x_pool.dtype == np.float32 and task.x_pool.max() > 100
    assert len(task.y_test) == 3 and len(task.y_pool) == 9
    assert task.name == "v" and task.class_names == ["0", "1", "2"]


def test_npz_uint8_images_divided_by_255(tmp_path):
    x = np.full((12, 5, 4), 255, dtype=np.uint8)
    task = load_task(str(save_npz(tmp_path / "im.npz", x=x, y=Y3)))
    assert task.input_spec == InputSpec("image", (1, 5, 4))
    assert task.x_pool.max() == 1.0 and task.preprocessing["scale_divisor"] == 255.0


def test_npz_float_images_in_unit_range_are_kept(tmp_path):
    x = np.full((12, 3, 4, 4), 0.5, dtype=np.float64)
    task = load_task(str(save_npz(tmp_path / "rgb.npz", x=x, y=Y3)))
    assert task.input_spec == InputSpec("image", (3, 4, 4))
    assert task.x_pool.max() == np.float32(0.5) and task.preprocessing["scale"].startswith("kept")


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_npz_images_above_one_divided_by_dataset_max(tmp_path, dtype):
    x = np.zeros((12, 8, 8), dtype=dtype)
    x[0, 0, 0] = 16
    x[1, 0, 0] = 8
    task = load_task(str(save_npz(tmp_path / "d.npz", x=x, y=Y3)))
    assert task.preprocessing["scale_divisor"] == 16.0
    assert "dataset maximum 16" in task.preprocessing["scale"]
    assert set(np.unique(np.concatenate([task.x_pool, task.x_test]))) == {0.0, 0.5, 1.0}


def test_npz_own_test_split_is_used(tmp_path):
    path = save_npz(tmp_path / "own.npz", x_train=np.zeros((6, 3)), y_train=np.array([0, 1] * 3),
                    x_test=np.ones((4, 3)), y_test=np.array([1, 0, 1, 0]))
    task = load_task(str(path))
    assert len(task.y_pool) == 6 and len(task.y_test) == 4
    assert np.all(task.x_test == 1) and task.class_names == ["0", "1"]
    np.testing.assert_array_equal(task.test_index, np.arange(6, 10))


def test_npz_x_y_with_x_test_y_test(tmp_path):
    path = save_npz(tmp_path / "xy.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]),
                    x_test=np.ones((2, 2)), y_test=np.array([0, 1]))
    assert len(load_task(str(path)).y_test) == 2


def test_npz_string_labels_become_sorted_class_names(tmp_path):
    y = np.array(["dog", "cat", "emu"] * 4)
    task = load_task(str(save_npz(tmp_path / "s.npz", x=np.zeros((12, 2)), y=y)))
    assert task.class_names == ["cat", "dog", "emu"]
    assert np.bincount(task.y_pool).tolist() == [3, 3, 3]


def test_npz_integer_labels_reindexed_names_kept(tmp_path):
    y = np.repeat([3.0, 7.0, 10.0], 4)
    task = load_task(str(save_npz(tmp_path / "f.npz", x=np.zeros((12, 2)), y=y)))
    assert task.class_names == ["3", "7", "10"]
    assert set(task.y_pool) == {0, 1, 2}
    assert load_task(str(tmp_path / "f.npz"), classes="10,3").class_names == ["10", "3"]


@pytest.mark.parametrize("y, message", [
    (np.array([0, 1, 2, 3.5] * 3), r"y\[3\] is 3.5"),
    (np.array([0, 1, -1, 2] * 3), r"y\[2\] is -1"),
    (np.array([0, 1, np.nan, 2] * 3), r"y\[2\] is nan"),
    (np.array([True, False] * 6), "'y' has dtype bool"),
])
def test_npz_bad_labels_name_array_and_value(tmp_path, y, message):
    path = save_npz(tmp_path / "bad.npz", x=np.zeros((12, 2)), y=y)
    with pytest.raises(DataError, match=f"bad.npz: labels must be non-negative whole numbers .*{message}"):
        load_task(str(path))


def test_npz_missing_arrays_lists_present(tmp_path):
    path = save_npz(tmp_path / "m.npz", data=np.zeros(3), target=np.zeros(3))
    with pytest.raises(DataError, match=r"m.npz: missing array 'x', 'y'; found 'data', 'target'"):
        load_task(str(path))
    path = save_npz(tmp_path / "t.npz", x_train=np.zeros((3, 2)), y_train=np.zeros(3), x_test=np.zeros((1, 2)))
    with pytest.raises(DataError, match="missing array 'y_test'"):
        load_task(str(path))


def test_npz_ragged_lengths_name_both_arrays(tmp_path):
    path = save_npz(tmp_path / "r.npz", x=np.zeros((10, 2)), y=np.zeros(9))
    with pytest.raises(DataError, match=r"r.npz: 'x' has 10 rows but 'y' has 9"):
        load_task(str(path))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npz_non_finite_inputs_name_array_and_index(tmp_path, bad):
    x = np.zeros((12, 3))
    x[5, 1] = bad
    with pytest.raises(DataError, match=r"n.npz: x\[5, 1\] is (nan|inf) \(row 5\)"):
        load_task(str(save_npz(tmp_path / "n.npz", x=x, y=Y3)))


def test_npz_empty_dataset(tmp_path):
    with pytest.raises(DataError, match="'x' holds no examples"):
        load_task(str(save_npz(tmp_path / "e.npz", x=np.zeros((0, 2)), y=np.zeros(0))))


def test_npz_object_arrays_are_refused(tmp_path):
    path = save_npz(tmp_path / "o.npz", x=np.zeros((2, 2)), y=np.array(["a", None], dtype=object))
    with pytest.raises(DataError, match="array 'y' holds Python objects"):
        load_task(str(path))


def test_npz_bad_shapes(tmp_path):
    with pytest.raises(DataError, match=r"channels-last: use np.transpose\(x, \(0, 3, 1, 2\)\)"):
        load_task(str(save_npz(tmp_path / "cl.npz", x=np.zeros((12, 8, 8, 3)), y=Y3)))
    with pytest.raises(DataError, match=r"'x' has shape \(12,\); expected \(N, D\)"):
        load_task(str(save_npz(tmp_path / "flat.npz", x=np.zeros(12), y=Y3)))
    path = save_npz(tmp_path / "mm.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2),
                    x_test=np.zeros((2, 4)), y_test=np.zeros(2))
    with pytest.raises(DataError, match=r"'x_train' examples have shape \(3,\) but 'x_test' examples have shape \(4,\)"):
        load_task(str(path))


def test_npz_negative_pixels_rejected(tmp_path):
    x = np.zeros((12, 4, 4))
    x[2, 1, 1] = -0.5
    with pytest.raises(DataError, match=r"x\[2, 0, 1, 1\] is -0.5; image pixels must be >= 0"):
        load_task(str(save_npz(tmp_path / "neg.npz", x=x, y=Y3)))


def test_single_class_is_not_a_task(tmp_path):
    with pytest.raises(DataError, match="needs at least two classes"):
        load_task(str(save_npz(tmp_path / "one.npz", x=np.zeros((5, 2)), y=np.zeros(5))))


def test_corrupt_npz(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz: cannot read .npz file"):
        load_task(str(path))


# --- image_size / image_margin ------------------------------------------------------------

def test_image_size_resizes_npz_images(tmp_path):
    x = np.full((12, 4, 8), 200, dtype=np.uint8)  # wide images: 4 high, 8 wide
    task = load_task(str(save_npz(tmp_path / "w.npz", x=x, y=Y3)), image_size=12, image_margin=2)
    assert task.input_spec == InputSpec("image", (1, 12, 12))
    img = task.x_pool[0, 0]
    rows = np.flatnonzero(img.max(axis=1) > 0)
    cols = np.flatnonzero(img.max(axis=0) > 0)
    assert (cols.min(), cols.max()) == (2, 9)  # longer side fills the 8-pixel box
    assert len(rows) == 4 and rows.min() == 4  # aspect ratio kept, centred vertically
    assert np.isclose(img.max(), 200 / 255)


def test_image_size_on_vectors_is_an_error(tmp_path):
    path = save_npz(tmp_path / "v.npz", x=np.zeros((12, 2)), y=Y3)
    with pytest.raises(DataError, match="holds feature vectors, not images"):
        load_task(str(path), image_size=28)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_margin": 4}, "image_margin=4 needs image_size"),
    ({"image_size": 8, "image_margin": 4}, "leaves no room"),
    ({"image_size": 0}, "image_size must be a positive"),
    ({"test_fraction": 1.0}, "test_fraction must be between 0 and 1"),
])
def test_bad_load_options(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_task("digits", **kwargs)


# --- paths --------------------------------------------------------------------------------

def test_missing_path_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match=r"nope.npz'?: no such file or folder; expected a built-in name "
                       r"\(mnist5k, digits\) or a path to .npz/.csv/IDX/image folder"):
        load_task(str(tmp_path / "nope.npz"))


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1,2")
    with pytest.raises(DataError, match=r"data.txt: unsupported file type '.txt'; expected a built-in name"):
        load_task(str(path))


def test_single_image_is_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="is a single image, not a labelled dataset"):
        load_task(str(save_png(tmp_path / "one.png")))


# --- .csv ---------------------------------------------------------------------------------

def csv_rows(n_per_class=3, label="label") -> str:
    lines = [f"a,b,{label}"]
    for c in range(2):
        lines += [f"{i * 100},{i}.5,{c}" for i in range(n_per_class)]
    return "\n".join(lines) + "\n"


def test_csv_features_and_integer_labels(tmp_path):
    task = load_task(str(write_csv(tmp_path / "t.csv", csv_rows())))
    assert task.input_spec == InputSpec("vector", (2,))
    assert task.class_names == ["0", "1"] and len(task.y_test) == 2
    assert task.x_pool.dtype == np.float32
    assert sorted(np.concatenate([task.x_pool, task.x_test])[:, 0]) == [0, 0, 100, 100, 200, 200]
    assert task.preprocessing["scale"].startswith("none")


def test_csv_string_labels_and_label_column(tmp_path):
    text = "kind,w\nb,1\na,2\nb,3\na,4\nb,5\na,6\n"
    task = load_task(str(write_csv(tmp_path / "s.csv", text)), label_column="kind")
    assert task.class_names == ["a", "b"] and task.input_spec.shape == (1,)


def test_csv_missing_label_column_lists_columns(tmp_path):
    with pytest.raises(DataError, match=r"m.csv: no label column 'label'; columns present: a, b, target"):
        load_task(str(write_csv(tmp_path / "m.csv", csv_rows(label="target"))))


@pytest.mark.parametrize("cell, message", [
    ("abc", r"line 4, column 'b' is 'abc', not a number"),
    ("nan", r"line 4, column 'b' is 'nan'; features must be finite"),
    ("inf", r"line 4, column 'b' is 'inf'; features must be finite"),
    ("", r"line 4, column 'b' is empty"),
])
def test_csv_bad_feature_names_line_and_column(tmp_path, cell, message):
    lines = csv_rows().splitlines()
    lines[3] = f"1,{cell},0"  # line 4 of the file: the header is line 1
    with pytest.raises(DataError, match=f"bad.csv: {message}"):
        load_task(str(write_csv(tmp_path / "bad.csv", "\n".join(lines))))


def test_csv_bad_label_names_line_and_column(tmp_path):
    lines = csv_rows().splitlines()
    lines[2] = "1,2,1.5"
    with pytest.raises(DataError, match=r"lab.csv: labels must be .*; line 3, column 'label' is '1.5'"):
        load_task(str(write_csv(tmp_path / "lab.csv", "\n".join(lines))))


def test_csv_wrong_field_count_and_empty(tmp_path):
    with pytest.raises(DataError, match="line 3 has 2 fields but the header has 3"):
        load_task(str(write_csv(tmp_path / "f.csv", "a,b,label\n1,2,0\n1,2\n")))
    with pytest.raises(DataError, match="header but no rows"):
        load_task(str(write_csv(tmp_path / "h.csv", "a,b,label\n")))
    with pytest.raises(DataError, match="CSV file is empty"):
        load_task(str(write_csv(tmp_path / "z.csv", "")))


# --- MNIST IDX ----------------------------------------------------------------------------

def idx_data(n=12, value=255):
    x = np.zeros((n, 6, 6), dtype=np.uint8)
    x[:, 2:4, 2:4] = value
    return x, np.resize(np.arange(3, dtype=np.uint8), n)


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_idx_images_file_finds_its_labels(tmp_path, gz):
    x, y = idx_data()
    images = write_idx(tmp_path / f"my-images-idx3-ubyte{gz}", x)
    write_idx(tmp_path / f"my-labels-idx1-ubyte{gz}", y)
    task = load_task(str(images))
    assert task.input_spec == InputSpec("image", (1, 6, 6)) and task.x_pool.max() == 1.0
    assert task.class_names == ["0", "1", "2"] and len(task.y_test) == 3


def test_idx_folder_gives_own_test_split(tmp_path):
    x, y = idx_data(9)
    xt, yt = idx_data(3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xt)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", yt)
    task = load_task(str(tmp_path))
    assert len(task.y_pool) == 9 and len(task.y_test) == 3


def test_idx_missing_labels_file(tmp_path):
    images = write_idx(tmp_path / "a-images-idx3-ubyte", idx_data()[0])
    with pytest.raises(DataError, match=r"a-images-idx3-ubyte: its labels file .*a-labels-idx1-ubyte was not found"):
        load_task(str(images))


def test_idx_ragged_names_both_files(tmp_path):
    x, y = idx_data()
    images = write_idx(tmp_path / "b-images-idx3-ubyte", x)
    write_idx(tmp_path / "b-labels-idx1-ubyte", y[:10])
    with pytest.raises(DataError, match="'b-images-idx3-ubyte' has 12 rows but 'b-labels-idx1-ubyte' has 10"):
        load_task(str(images))


def test_idx_bad_magic_and_truncated(tmp_path):
    bad = tmp_path / "c-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(DataError, match="c-images-idx3-ubyte: not an IDX file"):
        load_task(str(bad))
    x, y = idx_data()
    images = write_idx(tmp_path / "d-images-idx3-ubyte", x)
    write_idx(tmp_path / "d-labels-idx1-ubyte", y)
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match="d-images-idx3-ubyte: IDX header says shape"):
        load_task(str(images))


# --- image folders ------------------------------------------------------------------------

def image_folder(root: Path, classes=("b", "a"), per_class=3, **png) -> Path:
    for c in classes:
        for i in range(per_class):
            save_png(root / c / f"{i}.png", **png)
    return root


def test_image_folder_grayscale(tmp_path):
    task = load_task(str(image_folder(tmp_path / "imgs")))
    assert task.class_names == ["a", "b"]
    assert task.input_spec == InputSpec("image", (1, 5, 6))  # PNG 6 wide × 5 high
    assert np.isclose(task.x_pool.max(), 128 / 255)
    assert len(task.y_test) == 2 and task.name == "imgs"


def test_image_folder_with_color_image_becomes_rgb(tmp_path):
    root = image_folder(tmp_path / "imgs")
    save_png(root / "a" / "red.jpg", mode="RGB")
    task = load_task(str(root))
    assert task.input_spec.shape == (3, 5, 6)


def test_image_folder_sizes_differ(tmp_path):
    root = image_folder(tmp_path / "imgs")
    save_png(root / "b" / "big.png", size=(10, 7))
    with pytest.raises(DataError, match=r"images differ in size: .*a/0.png is 6×5 \(width×height\) but "
                       r".*b/big.png is 10×7 .*pass image_size"):
        load_task(str(root))
    task = load_task(str(root), image_size=16, image_margin=1)
    assert task.input_spec.shape == (1, 16, 16)
    assert task.preprocessing["image_size"] == 16


def test_image_folder_unreadable_image(tmp_path):
    root = image_folder(tmp_path / "imgs")
    (root / "a" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read image file .*a/broken.png"):
        load_task(str(root))


def test_image_folder_without_class_folders(tmp_path):
    save_png(tmp_path / "flat" / "x.png")
    with pytest.raises(DataError, match=r"flat: image folder has no class sub-folders \(found 1 images"):
        load_task(str(tmp_path / "flat"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: image folder has no class sub-folders"):
        load_task(str(tmp_path / "empty"))


def test_image_folder_empty_class(tmp_path):
    root = image_folder(tmp_path / "imgs")
    (root / "c").mkdir()
    (root / "c" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"imgs/c: class sub-folder holds no images"):
        load_task(str(root))


USPS = Path("/work/shared/data/usps/usps.npz")


@pytest.mark.skipif(not USPS.exists(), reason="shared USPS data not present")
def test_real_usps_npz_uses_its_own_test_split():
    task = load_task(str(USPS), classes="0-4")
    assert task.input_spec == InputSpec("image", (1, 16, 16))
    assert len(task.y_test) == 359 + 264 + 198 + 166 + 200


def test_class_selection_leaving_no_test_examples_names_the_split(tmp_path):
    path = save_npz(tmp_path / "own.npz", x_train=np.zeros((6, 2)), y_train=np.array([0, 1, 2] * 2),
                    x_test=np.zeros((2, 2)), y_test=np.array([2, 2]))
    with pytest.raises(DataError, match="own: the test split is empty for classes 0, 1"):
        load_task(str(path), classes="0,1")


def test_train_and_test_labels_must_be_the_same_kind(tmp_path):
    path = save_npz(tmp_path / "mix.npz", x_train=np.zeros((2, 2)), y_train=np.array([0, 1]),
                    x_test=np.zeros((2, 2)), y_test=np.array(["a", "b"]))
    with pytest.raises(DataError, match="mix numbers and class names"):
        load_task(str(path))
