"""--image-center mass: images placed by their centre of mass, as MNIST's digits are (USPS → MNIST framing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from transferlab.api import finetune, load, pretrain
from transferlab.cli import app
from transferlab.data import DataOptions, load_inputs, load_task
from transferlab.data.images import center_by_mass, frame_images
from transferlab.engine import TrainConfig
from transferlab.errors import DataError

runner = CliRunner()


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    mass = image.sum(0)  # (H, W)
    rows, cols = np.mgrid[0 : mass.shape[0], 0 : mass.shape[1]]
    return float((mass * rows).sum() / mass.sum()), float((mass * cols).sum() / mass.sum())


def _filled_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 16×16 'digits' that fill their frame (a top stroke across the width) and lean to one side, as USPS's do."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.zeros((n, 16, 16), np.uint8)
    for i, c in enumerate(y):
        x[i, :, 4:8] = rng.integers(200, 256, size=(16, 4)) if c == 0 else 0  # class 0: a bar left of the middle
        x[i, :, 8:12] = rng.integers(200, 256, size=(16, 4)) if c == 1 else 0  # class 1: right of it
        x[i, 0, :] = 200  # the top stroke spans the whole width, so box framing fills the 20×20 box
    return x, y


def test_center_by_mass_puts_the_centre_of_mass_on_the_frame_centre():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 3:9, 2:5] = 1.0  # ink in the top-left corner
    moved = center_by_mass(x)
    cy, cx = _centre_of_mass(moved)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert moved.sum() == x.sum()  # moved, not cut
    blank = np.zeros((1, 28, 28), np.float32)
    assert center_by_mass(blank) is blank  # nothing to centre


def test_the_move_never_pushes_ink_out_of_the_frame():
    x = np.zeros((1, 10, 10), np.float32)
    x[0, 0, :] = 1.0  # a row across the top: its centre of mass is at row 0 ...
    x[0, 9, 0] = 0.01  # ... and one faint pixel on the bottom row: the image cannot move down at all
    moved = center_by_mass(x)
    assert moved.sum() == pytest.approx(x.sum()) and np.array_equal(moved, x)


def test_box_framing_is_unchanged_and_mass_framing_moves_a_lopsided_digit():
    x, _ = _filled_digits(4)
    images = (x[:, None] / 255.0).astype(np.float32)
    box = frame_images(images, 28, 4)
    assert np.array_equal(box, frame_images(images, 28, 4, "box"))
    mass = frame_images(images, 28, 4, "mass")
    for b, m in zip(box, mass):
        assert abs(_centre_of_mass(b)[1] - 14) > 1  # the box-centred digit leans to its heavy side
        cy, cx = _centre_of_mass(m)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
        assert m.sum() == pytest.approx(b.sum(), rel=1e-5)


def test_mnist_is_already_placed_by_centre_of_mass():
    """Centring MNIST by mass changes nothing: the option frames other digits the way MNIST's are."""
    mnist = load_task("mnist5k")
    same = load_task("mnist5k", image_size=28, image_center="mass")
    assert np.array_equal(mnist.x_pool, same.x_pool) and np.array_equal(mnist.x_test, same.x_test)


def test_load_task_records_it_and_predict_reads_inputs_the_same_way(tmp_path):
    x, y = _filled_digits(40)
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    task = load_task(str(tmp_path / "digits.npz"), image_size=28, image_margin=4, image_center="mass")
    assert task.preprocessing["image_center"] == "mass"
    assert load_task(str(tmp_path / "digits.npz"), image_size=28).preprocessing["image_center"] == "box"
    for image in task.x_pool:
        cy, cx = _centre_of_mass(image)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    np.savez(tmp_path / "new.npz", x=x[:3])
    inputs, _ = load_inputs(tmp_path / "new.npz", preprocessing=task.preprocessing)
    assert np.allclose(inputs, frame_images((x[:3, None] / 255.0).astype(np.float32), 28, 4, "mass"))
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(x[0]).save(folder / "a.png")
    from_files = load_inputs(folder, preprocessing=task.preprocessing)[0]
    assert np.allclose(from_files, inputs[:1], atol=1e-6)


def test_a_model_pretrained_with_mass_centring_keeps_it(tmp_path):
    x, y = _filled_digits(40)
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    pretrain(str(tmp_path / "digits.npz"), backbone="cnn", backbone_config={"channels": [4, 8], "hidden": 16},
             data_options=DataOptions(image_size=28, image_margin=4, image_center="mass"), out=tmp_path / "m",
             train=TrainConfig(epochs=1, threads=1), progress=False)
    assert load(tmp_path / "m").config["preprocessing"]["image_center"] == "mass"
    tuned = finetune(str(tmp_path / "m"), str(tmp_path / "digits.npz"), image_size=28, image_margin=4,
                     image_center="mass", strategy="linear-probe", out=tmp_path / "t",
                     train=TrainConfig(epochs=1, threads=1), progress=False)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "t"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["test_accuracy"] == pytest.approx(tuned.test_accuracy)  # read the same way


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 28, "image_center": "middle"},
     r"image_center must be one of \['box', 'mass'\]; got 'middle'\. box: .* e\.g\. --image-center mass"),
    ({"image_center": "mass"}, r"image_center='mass' needs image_size.*Pass --image-size too"),
])
def test_bad_image_center(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_task("digits", **kwargs)


def test_image_center_on_text_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"hello {i},{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match="holds text, not images; image_center applies to images only. Drop --image-center"):
        load_task(str(tmp_path / "t.csv"), image_center="mass")


def test_cli_flag(tmp_path):
    x, y = _filled_digits(40)
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    result = runner.invoke(app, ["pretrain", "--data", str(tmp_path / "digits.npz"), "--backbone", "mlp",
                                 "--image-size", "28", "--image-margin", "4", "--image-center", "mass", "--epochs", "1",
                                 "--threads", "1", "--out", str(tmp_path / "m"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert load(tmp_path / "m").config["preprocessing"]["image_center"] == "mass"
    bad = runner.invoke(app, ["pretrain", "--data", str(tmp_path / "digits.npz"), "--image-size", "28",
                              "--image-center", "middle", "--out", str(tmp_path / "n")])
    assert bad.exit_code != 0 and "middle" in bad.output and "box" in bad.output and "mass" in bad.output


def test_compare_yaml_takes_image_center(tmp_path):
    from transferlab.compare import CompareConfig
    from transferlab.errors import ConfigError

    cfg = CompareConfig(pretrained="models/src", data="digits", image_size=28, image_center="mass", strategies=["full"])
    assert cfg.data_options.image_center == "mass"
    with pytest.raises(ConfigError, match=r"image_center must be text; got 5 \(int\)"):
        CompareConfig(pretrained="models/src", data="digits", image_center=5, strategies=["full"])
