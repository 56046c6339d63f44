"""`hf:/path` on Hugging Face vision folders: tiny random ViT and ResNet written by the tests (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import save_tiny_vision_model
from transferlab.errors import ConfigError

pytest.importorskip("transformers")


def _images(path, n_per_class=10, size=24):
    """Two classes of grayscale images of a size the models do not run at (they resize themselves)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), n_per_class)
    x = rng.integers(0, 60, size=(len(y), size, size)).astype(np.uint8)
    x[y == 1, 4:14, 4:14] = 250
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize("kind, blocks", [("vit", ["embeddings", "layer0", "layer1", "pooling"]),
                                          ("resnet", ["embeddings", "stage0", "stage1", "pooling"])])
def test_finetune_evaluate_and_export_a_vision_folder(tmp_path, kind, blocks):
    from transferlab.api import evaluate, finetune, load
    from transferlab.engine import TrainConfig
    from transferlab.export import export

    folder = save_tiny_vision_model(tmp_path / f"tiny-{kind}", kind)
    source = load(f"hf:{folder}")
    assert source.backbone.block_names == blocks and source.input_spec.any_size
    assert source.config["preprocessing"]["mean"] == json.loads((folder / "preprocessor_config.json").read_text())["image_mean"]
    data = _images(tmp_path / "squares.npz")
    result = finetune(f"hf:{folder}", str(data), strategy="partial", strategy_options={"freeze": 1}, out=tmp_path / "m",
                      train=TrainConfig(epochs=3, batch_size=8))
    assert result.test_accuracy == evaluate(tmp_path / "m", str(data)).test_accuracy
    exported = export(tmp_path / "m", tmp_path / "m.onnx")
    assert exported.input_shape == ["batch", 1, 24, 24] and exported.parity_max_abs_diff <= 1e-4


def test_preprocessing_follows_the_folder_without_torchvision(tmp_path):
    from transferlab.models import create_backbone

    folder = save_tiny_vision_model(tmp_path / "tiny-resnet", "resnet")
    backbone = create_backbone("hf-vision", (3, 50, 30), path=str(folder))
    prep = backbone.blocks["embeddings"].preprocess
    x = torch.rand(2, 3, 50, 30)
    out = prep(x)  # shortest edge 30 → 20: (33, 20), then the centre 16×16, normalised with ImageNet statistics
    resized = torch.nn.functional.interpolate(x, size=(33, 20), mode="bicubic", align_corners=False)
    expected = (resized[..., 8:24, 2:18] - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert out.shape == (2, 3, 16, 16) and torch.allclose(out, expected)
    assert backbone.features(torch.rand(2, 1, 40, 40)).shape == (2, backbone.feature_dim)


def test_compare_runs_on_a_vision_folder(tmp_path):
    from transferlab.compare import CompareConfig, run_comparison

    folder = save_tiny_vision_model(tmp_path / "tiny-vit", "vit")
    data = _images(tmp_path / "squares.npz")
    result = run_comparison(CompareConfig(pretrained=f"hf:{folder}", data=str(data), strategies=["linear-probe"],
                                          shots=[3], seeds=1, train={"epochs": 2}), tmp_path / "cmp")
    assert {c["strategy"] for c in result.summary["cells"]} == {"scratch", "linear-probe"}


def test_image_size_is_refused_for_a_vision_folder(tmp_path):
    from transferlab.api import finetune

    folder = save_tiny_vision_model(tmp_path / "tiny-vit", "vit")
    with pytest.raises(ConfigError, match=r"runs at the size its preprocessor_config.json gives \(16×16\); drop --image-size"):
        finetune(f"hf:{folder}", str(_images(tmp_path / "squares.npz")), image_size=32)


def test_a_vision_folder_without_an_image_size_is_refused(tmp_path):
    from transferlab.models import create_backbone

    folder = save_tiny_vision_model(tmp_path / "tiny-vit", "vit")
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "do_resize": False}))
    with pytest.raises(ConfigError, match=r"gives no image size \(size or crop_size\)"):
        create_backbone("hf-vision", (3, 16, 16), path=str(folder))
