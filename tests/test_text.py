"""Text end to end: a local Hugging Face encoder through finetune, evaluate, predict, compare."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from conftest import TEXT_TEMPLATES
from transferlab.cli import app

pytest.importorskip("sentence_transformers")
runner = CliRunner()


def _write(path, n_per_class: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for label, texts in TEXT_TEMPLATES.items():
            for _ in range(n_per_class):
                w.writerow([f"{rng.choice(texts)} {rng.choice(['now', 'then', 'again'])}", label])


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    _write(root / "train.csv", 15, 0)
    _write(root / "test.csv", 5, 1)
    (root / "new.txt").write_text("the striker scored a goal\n\nwe baked a cake\n")
    return root


def invoke(*args) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hf_folder_finetune_evaluate_predict(tmp_path, text_files, tiny_bert_path):
    out = tmp_path / "tgt"
    ft = invoke("finetune", f"hf:{tiny_bert_path}", "--data", text_files / "train.csv", "--test-data",
                text_files / "test.csv", "--shots", "4", "--strategy", "partial", "--freeze", "2", "--epochs", "3",
                "--out", out, "--json")
    assert ft["strategy"] == "partial" and ft["shots"] == 4 and 0 <= ft["test_accuracy"] <= 1
    cfg = json.loads((out / "config.json").read_text())
    assert [b["name"] for b in cfg["blocks"]] == ["embeddings", "layer0", "layer1", "pooling"]
    assert cfg["architecture"]["backbone"]["name"] == "hf"
    ev = invoke("evaluate", out, "--json")  # the model's own data and test file
    assert ev["test_accuracy"] == pytest.approx(ft["test_accuracy"]) and ev["n"] == 15
    pred = invoke("predict", out, text_files / "new.txt", "--json")["predictions"]
    assert [p["input"].split(":")[0] for p in pred] == ["line 1", "line 3"]
    assert {p["label"] for p in pred} <= set(TEXT_TEMPLATES)
    listed = invoke("models", "--json")["models"]
    assert any(m["name"] == f"hf-{tiny_bert_path.name}" and m["kind"] == "pretrained" for m in listed)


def test_text_data_on_an_image_model_is_refused(tmp_path, text_files):
    import numpy as np

    x = np.random.default_rng(0).integers(0, 255, size=(30, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "img.npz", x=x, y=np.repeat(np.arange(3), 10))
    invoke("pretrain", "--data", tmp_path / "img.npz", "--backbone", "mlp", "--epochs", "1", "--out", tmp_path / "m", "--json")
    result = runner.invoke(app, ["finetune", str(tmp_path / "m"), "--data", str(text_files / "train.csv")])
    assert result.exit_code == 2 and "text" in result.stderr


def test_text_compare_runs_paired_cells(tmp_path, text_files, tiny_bert_path):
    payload = invoke("compare", f"hf:{tiny_bert_path}", "--data", text_files / "train.csv", "--test-data",
                     text_files / "test.csv", "--strategies", "linear-probe,full", "--shots", "2,4", "--seeds", "2",
                     "--epochs", "3", "--out", tmp_path / "c", "--json")
    assert payload["ran"] == 4 * 2 * 2 and payload["failed"] == 0  # 3 strategies + the TF-IDF reference
    assert {c["strategy"] for c in payload["cells"]} == {"scratch", "linear-probe", "full", "tfidf-logreg"}
    tfidf = [c for c in payload["cells"] if c["strategy"] == "tfidf-logreg"]
    assert all(0 <= c["mean"] <= 1 and c["time_to_scratch_accuracy_speedup"] is None for c in tfidf)


def test_pretrain_a_local_hf_folder_on_a_text_task(tmp_path, text_files, tiny_bert_path):
    pre = invoke("pretrain", "--data", text_files / "train.csv", "--backbone", f"hf:{tiny_bert_path}", "--epochs", "1",
                 "--out", tmp_path / "src", "--json")
    cfg = json.loads((tmp_path / "src" / "config.json").read_text())
    assert pre["epochs"] == 1 and cfg["architecture"]["backbone"] == {
        "name": "hf", "config": {"path": str(tiny_bert_path), "max_length": 128}}


@pytest.mark.parametrize("via", ["create_backbone", "load"])
def test_scratch_redraws_every_encoder_tensor(tiny_bert_path, via):
    """The text baseline starts from random weights however the encoder was obtained (transformers ≥ 5
    marks loaded tensors as initialised, and its own init functions then leave them alone)."""
    import torch

    from transferlab.api import load
    from transferlab.data.task import InputSpec
    from transferlab.models import HeadSpec, TransferModel, create_backbone
    from transferlab.strategies import create_strategy

    if via == "load":
        backbone = load(f"hf:{tiny_bert_path}").backbone
    else:
        backbone = create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    torch.manual_seed(0)
    create_strategy("scratch").prepare(TransferModel(backbone, HeadSpec(3)))
    after = backbone.state_dict()
    unchanged = [k for k, v in after.items() if torch.equal(v, before[k]) and v.std() > 0]
    assert unchanged == []
    torch.manual_seed(0)
    again = {k: v.clone() for k, v in after.items()}
    create_strategy("scratch").prepare(TransferModel(backbone, HeadSpec(3)))
    assert all(torch.equal(again[k], v) for k, v in backbone.state_dict().items())  # same seed, same draw
