"""`predict` in batches: image folders, npz and text CSVs; prediction files (CSV, JSONL, JSON); a progress bar; errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from transferlab.api import predict
from transferlab.artifacts import save_model_folder
from transferlab.cli import app
from transferlab.data.task import InputSpec
from transferlab.models import create_backbone
from transferlab.models.head import HeadSpec, TransferModel

runner = CliRunner()
LABELS = ["cat", "dog", "eel"]


def _folder(path, backbone, *, numeric: bool = False):
    torch.manual_seed(0)
    model = TransferModel(backbone, HeadSpec(num_outputs=1 if numeric else 3))
    text = backbone.input_spec.kind == "text"
    info = {"label_names": [] if numeric else LABELS, "target": "numeric" if numeric else "class",
            "preprocessing": {"text_column": "text"} if text else {"image_size": None, "image_margin": 0}}
    save_model_folder(path, backbone=model.backbone, head=model.head, head_spec=model.head_spec, info=info)
    return path


@pytest.fixture
def image_model(tmp_path):
    return _folder(tmp_path / "img-model", create_backbone("mlp", InputSpec("image", (1, 8, 8)), hidden=[16]))


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(folder / f"im{i}.png")
    return folder


def test_batches_give_the_same_rows_and_advance_a_bar(image_model, image_folder, monkeypatch):
    from contextlib import contextmanager

    import transferlab.engine.progress as progress

    seen: list[tuple[int, list[int]]] = []

    @contextmanager
    def recording(description, *, total, enabled):
        steps: list[int] = []
        seen.append((total, steps))
        yield steps.append

    monkeypatch.setattr(progress, "batch_progress", recording)
    whole = predict(image_model, image_folder, batch_size=256)
    batched = predict(image_model, image_folder, batch_size=3, quiet=False)
    assert seen == [(7, [7]), (7, [3, 3, 1])]  # one bar per call, advanced batch by batch
    assert [r["input"] for r in batched] == [f"im{i}.png" for i in range(7)]
    for a, b in zip(whole, batched):
        assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], abs=1e-6)
        assert sum(b["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_prediction_files_csv_jsonl_json(tmp_path, image_model, image_folder):
    rows = predict(image_model, image_folder, out=tmp_path / "p.csv")
    with open(tmp_path / "p.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["input", "label", "probability", "p_cat", "p_dog", "p_eel"]
    assert [r["input"] for r in table] == [r["input"] for r in rows]
    assert [r["label"] for r in table] == [r["label"] for r in rows]
    assert float(table[0]["p_dog"]) == rows[0]["probabilities"]["dog"]  # written at full precision

    predict(image_model, image_folder, out=tmp_path / "p.jsonl")
    assert [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()] == rows
    predict(image_model, image_folder, out=tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == {"predictions": rows}


def test_npz_and_numeric_values_to_csv(tmp_path):
    model = _folder(tmp_path / "num", create_backbone("mlp", InputSpec("vector", (4,)), hidden=[8]), numeric=True)
    np.savez(tmp_path / "new.npz", x=np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    rows = predict(model, tmp_path / "new.npz", batch_size=2, out=tmp_path / "v.csv")
    assert [r["input"] for r in rows] == [f"x[{i}]" for i in range(5)] and all("value" in r for r in rows)
    with open(tmp_path / "v.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(r["value"]) for r in table] == [r["value"] for r in rows]


def test_text_csv_in_batches_through_the_cli(tmp_path, tiny_bert_path):
    model = _folder(tmp_path / "text", create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path)))
    texts = ["the team won", "a spicy curry for dinner tonight with friends", "the phone battery died", "hi"]
    with open(tmp_path / "new.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text"], *([t] for t in texts)])
    one = predict(model, tmp_path / "new.csv", batch_size=1)  # each text padded only to itself
    res = runner.invoke(app, ["predict", str(model), str(tmp_path / "new.csv"), "--batch-size", "3",
                              "--out", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    assert f"wrote 4 predictions to {tmp_path / 'p.json'}" in res.stdout
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert [r["input"] for r in rows] == [r["input"] for r in one] == [f'line {n}: "{t}"' for n, t in zip(range(2, 6), texts)]
    for a, b in zip(one, rows):
        assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_predict_errors(tmp_path, image_model, image_folder):
    from transferlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--out '.*p\.txt' has suffix '\.txt'; predictions are written as "
                                          r"\.csv, \.jsonl, \.json — name the file e\.g\. predictions\.csv"):
        predict(image_model, image_folder, out=tmp_path / "p.txt")
    (tmp_path / "old.csv").write_text("x\n")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite to replace it"):
        predict(image_model, image_folder, out=tmp_path / "old.csv")
    with pytest.raises(ConfigError, match=r"old\.csv' was not written by transferlab predict .* refusing to replace it "
                                          "even with --overwrite"):
        predict(image_model, image_folder, out=tmp_path / "old.csv", overwrite=True)
    assert (tmp_path / "old.csv").read_text() == "x\n"  # a user's file is never replaced
    for name in ("new.csv", "new.jsonl", "new.json"):  # predictions files transferlab wrote may be
        predict(image_model, image_folder, out=tmp_path / name)
        predict(image_model, image_folder, out=tmp_path / name, overwrite=True)
    assert (tmp_path / "new.csv").read_text().startswith("input,label,probability")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ConfigError, match="is a folder; pass a file path such as predictions.csv"):
        predict(image_model, image_folder, out=tmp_path / "dir.csv")
    with pytest.raises(ConfigError, match="--batch-size must be a whole number ≥ 1; got 0"):
        predict(image_model, image_folder, batch_size=0)
    res = runner.invoke(app, ["predict", str(image_model), str(image_folder), "--out", str(tmp_path / "p.xml")])
    assert res.exit_code == 2 and "predictions are written as .csv, .jsonl, .json" in res.stderr


def test_text_predictions_show_row_and_cut_text(tmp_path, tiny_bert_path):
    """A text's prediction names its row and the text, cut to 60 characters and kept on one line."""
    model = _folder(tmp_path / "text", create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path)))
    long = "free entry in a weekly competition to win cup final tickets, text the word now " * 3
    rows = predict(model, np.array(["short one", "two\tlines\nhere", long], dtype=object))
    assert rows[0]["input"] == 'row 0: "short one"'
    assert rows[1]["input"] == 'row 1: "two lines here"'
    assert rows[2]["input"] == f'row 2: "{long[:59]}…"'
    res = runner.invoke(app, ["predict", str(model), str(_write_txt(tmp_path, ["short one", long]))])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith('line 1: "short one"\t') and lines[1].startswith(f'line 2: "{long[:59]}…"\t')


def _write_txt(tmp_path, texts):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    return path
