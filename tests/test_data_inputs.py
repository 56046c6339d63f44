"""Unlabelled inputs for prediction, and re-applying a task's recorded preprocessing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data import frame_image, load_inputs, preprocess_inputs
from transferlab.errors import DataError

DIGITS_PREP = {"image_size": 28, "image_margin": 4, "channels": 1, "scale_divisor": 16.0}


def save_png(path: Path, size=(8, 8), mode="L", value=255) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value, 0)).save(path)
    return path


def test_single_image_file(tmp_path):
    x, names = load_inputs(save_png(tmp_path / "one.png", size=(5, 3)))
    assert x.shape == (1, 1, 3, 5) and x.dtype == np.float32 and x.max() == 1.0
    assert names == ["one.png"]


def test_flat_folder_sorted_by_name_with_preprocessing(tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        save_png(tmp_path / "in" / name, size=(8, 8) if name != "c.jpg" else (4, 8))
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    (tmp_path / "in" / "sub").mkdir()
    x, names = load_inputs(tmp_path / "in", preprocessing=DIGITS_PREP)
    assert names == ["a.png", "b.png", "c.jpg"]
    assert x.shape == (3, 1, 28, 28)
    assert x[:, :, :4].max() == 0.0 and x[:, :, 4:24, 4:24].max() > 0.9


def test_flat_folder_sizes_must_match_without_image_size(tmp_path):
    save_png(tmp_path / "in" / "a.png", size=(8, 8))
    save_png(tmp_path / "in" / "b.png", size=(9, 8))
    with pytest.raises(DataError, match=r"a.png is 8×8 .* but .*b.png is 9×8"):
        load_inputs(tmp_path / "in")


def test_rgb_images_converted_to_model_channels(tmp_path):
    save_png(tmp_path / "rgb.png", mode="RGB")
    x, _ = load_inputs(tmp_path / "rgb.png")
    assert x.shape == (1, 3, 8, 8)
    x, _ = load_inputs(tmp_path / "rgb.png", preprocessing={"channels": 1})
    assert x.shape == (1, 1, 8, 8) and np.isclose(x.max(), 0.299 + 0.587, atol=0.01)


def test_npz_images_use_recorded_divisor_and_framing(tmp_path):
    x = np.zeros((2, 8, 8))
    x[:, 2:6, 2:6] = 8.0  # digits-like pixels 0..16, here at most 8
    np.savez(tmp_path / "p.npz", x=x)
    out, names = load_inputs(tmp_path / "p.npz", preprocessing=DIGITS_PREP)
    assert out.shape == (2, 1, 28, 28) and names == ["x[0]", "x[1]"]
    assert np.isclose(out.max(), 0.5)  # divided by the task's 16, not this file's max of 8


def test_npz_vectors_and_missing_x(tmp_path):
    np.savez(tmp_path / "v.npz", x=np.arange(6).reshape(3, 2))
    x, names = load_inputs(tmp_path / "v.npz")
    assert x.dtype == np.float32 and x.shape == (3, 2) and x.max() == 5.0
    np.savez(tmp_path / "w.npz", inputs=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"w.npz: missing array 'x' holding the inputs; found 'inputs'"):
        load_inputs(tmp_path / "w.npz")


def test_csv_with_and_without_label_column(tmp_path):
    (tmp_path / "a.csv").write_text("f1,f2,label\n1,2,cat\n3,4,dog\n")
    (tmp_path / "b.csv").write_text("f1,f2\n1,2\n3,4\n")
    for name in ("a.csv", "b.csv"):
        x, names = load_inputs(tmp_path / name)
        np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
        assert names == ["line 2", "line 3"]
    (tmp_path / "c.csv").write_text("f1,f2\n1,x\n")
    with pytest.raises(DataError, match="c.csv: line 2, column 'f2' is 'x', not a number"):
        load_inputs(tmp_path / "c.csv")


def test_idx_images_file(tmp_path):
    data = np.full((2, 4, 4), 255, np.uint8)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 4, 4)
    path = tmp_path / "new-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + data.tobytes()))
    x, names = load_inputs(path)
    assert x.shape == (2, 1, 4, 4) and x.max() == 1.0 and names == ["image 0", "image 1"]


def test_load_inputs_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_inputs(tmp_path / "missing.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: folder holds no images"):
        load_inputs(tmp_path / "empty")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match=r"x.json: unsupported file type '.json'"):
        load_inputs(tmp_path / "x.json")


def test_preprocess_inputs_leaves_vectors_and_unsized_images_alone():
    v = np.ones((3, 5), np.float32)
    assert preprocess_inputs(v, DIGITS_PREP) is v
    im = np.ones((2, 1, 8, 8), np.float32)
    assert preprocess_inputs(im, {"image_size": None, "channels": 1}) is im
    assert preprocess_inputs(im, {"channels": 3}).shape == (2, 3, 8, 8)
    assert preprocess_inputs(np.ones((2, 8, 8), np.float32), DIGITS_PREP).shape == (2, 1, 28, 28)


def test_frame_image_keeps_aspect_ratio_and_range():
    tall = np.ones((1, 10, 5), np.float32)  # 10 high, 5 wide
    out = frame_image(tall, 14, 2)
    assert out.shape == (1, 14, 14) and out.min() >= 0.0 and out.max() <= 1.0
    rows = np.flatnonzero(out[0].max(axis=1) > 0)
    cols = np.flatnonzero(out[0].max(axis=0) > 0)
    assert (rows.min(), rows.max()) == (2, 11)  # longer side fills 14 − 2·2 = 10
    assert len(cols) == 5 and cols.min() == 4  # width scaled by the same factor, centred
    same = np.random.default_rng(0).random((1, 14, 14), dtype=np.float32)
    np.testing.assert_array_equal(frame_image(same, 14, 0), same)
