"""rank, advise, explain and the source head, end to end on tiny models and the built-in digits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import transferlab
from transferlab import TrainConfig
from transferlab.analysis import advise, explain, rank, weight_drift
from transferlab.analysis.advice import recommend
from transferlab.analysis.forgetting import source_accuracy, source_task
from transferlab.cli import app
from transferlab.compare.run_store import RunStore
from transferlab.errors import ArtifactError, ConfigError
from transferlab.artifacts.model_folder import seal_config

TINY_CNN = {"channels": [4, 8], "hidden": 16}
runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny cnn and mlp pretrained on digits 0-4, and the cnn fine-tuned on digits 5-9 with conv1 frozen."""
    root = tmp_path_factory.mktemp("analysis")
    cnn = transferlab.pretrain("digits", classes="0-4", backbone="cnn", backbone_config=TINY_CNN, out=root / "cnn",
                               train=TrainConfig(epochs=2))
    transferlab.pretrain("digits", classes="0-4", backbone="mlp", backbone_config={"hidden": [16]}, out=root / "mlp",
                         train=TrainConfig(epochs=1))
    transferlab.finetune(root / "cnn", "digits", classes="5-9", strategy="partial", strategy_options={"freeze": 1},
                         shots=10, out=root / "tgt", train=TrainConfig(epochs=4))
    return {"cnn": root / "cnn", "mlp": root / "mlp", "tgt": root / "tgt", "root": root,
            "cnn_test_accuracy": cnn.test_accuracy}


def _without_source_head(src: Path, dest: Path) -> Path:
    """A copy of a pretrained folder as transferlab wrote it before the source head was kept."""
    shutil.copytree(src, dest)
    (dest / "source_head.safetensors").unlink()
    config = json.loads((dest / "config.json").read_text())
    del config["source_head"]
    (dest / "config.json").write_text(json.dumps(seal_config(config)))
    return dest


def invoke(*args) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return " ".join(result.stderr.split())


# --- the source head --------------------------------------------------------------------------------


def test_pretraining_keeps_its_output_layer_as_a_verified_source_head(models):
    folder = models["cnn"]
    config = json.loads((folder / "config.json").read_text())
    record = config["source_head"]
    assert (folder / record["file"]).is_file() and record["shapes"] == {"out.weight": [5, 16], "out.bias": [5]}
    assert record["spec"]["num_outputs"] == 5 and len(record["sha256"]) == 64
    assert config["kind"] == "pretrained"  # still a backbone without an output layer
    assert "source_head.safetensors" in (folder / "README.md").read_text()
    loaded = transferlab.load(folder)
    assert loaded.model is None and loaded.source_head is not None
    head, task = source_task(loaded)
    # backbone + source head reproduce the source test accuracy pretraining reported
    assert source_accuracy(loaded.backbone, head, task) == pytest.approx(models["cnn_test_accuracy"], abs=1e-6)


def test_a_modified_source_head_fails_its_checksum(models, tmp_path):
    folder = tmp_path / "cnn"
    shutil.copytree(models["cnn"], folder)
    data = bytearray((folder / "source_head.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "source_head.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"source_head.safetensors fails its checksum: config.json expects sha256 "
                                            r"[0-9a-f]{64} but the file has [0-9a-f]{64}"):
        transferlab.load(folder)
    (folder / "source_head.safetensors").unlink()
    with pytest.raises(ArtifactError, match="lists a source head but source_head.safetensors is missing"):
        transferlab.load(folder)


def test_a_folder_saved_before_source_heads_loads_and_explains_what_it_lacks(models, tmp_path):
    old = _without_source_head(models["cnn"], tmp_path / "old")
    assert transferlab.load(old).source_head is None
    result = rank([old], "digits", classes="5-9", shots=5)
    assert result.models[0].leep is None
    assert any("LEEP skipped" in n and "re-pretrain" in n for n in result.notes)
    tgt = tmp_path / "tgt"
    shutil.copytree(models["tgt"], tgt)
    with pytest.raises(ArtifactError, match="has no source head .* Re-pretrain it"):
        explain(tgt, pretrained=old, source_data="digits", examples=0)


# --- rank --------------------------------------------------------------------------------------------


def test_rank_scores_models_best_first_by_logme_with_every_score_and_its_cost(models):
    result = rank([models["mlp"], models["cnn"]], "digits", classes="5-9", shots=10)
    out = result.to_json()
    assert out["n_examples"] == 50 and out["shots"] == 10
    assert [set(m) >= {"model", "logme", "leep", "hscore", "probe_accuracy", "seconds"} for m in out["models"]] == [True] * 2
    logmes = [m["logme"] for m in out["models"]]
    assert logmes == sorted(logmes, reverse=True)
    for m in out["models"]:
        assert m["leep"] < 0 and m["hscore"] > 0 and 0 <= m["probe_accuracy"] <= 1 and m["seconds"] > 0


def test_rank_layers_scores_every_block_and_suggests_a_cut(models):
    result = rank([models["cnn"]], "digits", classes="5-9", shots=10, layers=True)
    out = result.to_json()
    assert [l["block"] for l in out["layers"]] == ["conv1", "conv2", "fc"]
    assert [l["freeze"] for l in out["layers"]] == [1, 2, 3]
    assert [l["leep"] is None for l in out["layers"]] == [True, True, False]  # the source head sits on the last block
    best = out["suggested_freeze"]
    assert out["suggestion"] == ("linear-probe" if best == 3 else f"partial --freeze {best}")


def test_rank_refuses_what_it_cannot_do_naming_the_fix(models):
    with pytest.raises(ConfigError, match=r"--layers scores the blocks of one model; got 2 models"):
        rank([models["cnn"], models["mlp"]], "digits", layers=True)
    with pytest.raises(ConfigError, match="each model is ranked once"):
        rank([models["cnn"], models["cnn"]], "digits")
    with pytest.raises(ConfigError, match="at least one pretrained model"):
        rank([], "digits")
    assert "no runs.sqlite there" in fails("rank", models["cnn"], "--data", "digits", "--compare", models["root"])


def _store(folder: Path, pretrained: Path, accuracies: dict[str, float], *, data: str = "digits",
           classes: str = "5-9") -> None:
    """A comparison folder holding one run per strategy at 10 shots (as compare would record them)."""
    sha = json.loads((pretrained / "config.json").read_text())["weights"]["sha256"]
    with RunStore(folder / "runs.sqlite") as store:
        store.set_meta("config", {"pretrained": str(pretrained), "data": data, "classes": classes, "image_size": None,
                                  "image_margin": 0, "label_column": "label", "text_column": "text",
                                  "test_data": None, "pretrained_sha256": sha})
        for label, acc in accuracies.items():
            name, _, freeze = label.rpartition("-") if label[-1].isdigit() else (label, "", "")
            store.record({"strategy": label, "strategy_name": name, "options": {"freeze": int(freeze)} if freeze else {},
                          "shots": 10, "seed": 0, "status": "finished", "test_accuracy": acc, "train_seconds": 2.0})


def test_rank_validates_scores_by_kendall_tau_against_compare_results(models, tmp_path):
    from scipy.stats import kendalltau

    _store(tmp_path / "a", models["cnn"], {"scratch": 0.99, "full": 0.8, "linear-probe": 0.7})
    _store(tmp_path / "b", models["mlp"], {"scratch": 0.5, "full": 0.6})
    _store(tmp_path / "c", models["mlp"], {"full": 0.9}, classes="0-4")  # another target: skipped
    result = rank([models["cnn"], models["mlp"]], "digits", classes="5-9", shots=10,
                  compare=[tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    v = result.to_json()["validation"]
    got = {a["model"]: (a["accuracy"], a["strategy"]) for a in v["accuracies"]}
    assert got == {str(models["cnn"]): (0.8, "full"), str(models["mlp"]): (0.6, "full")}  # scratch never counts
    logme = {m.model: m.logme for m in result.models}
    expected = kendalltau([logme[str(models["cnn"])], logme[str(models["mlp"])]], [0.8, 0.6]).statistic
    assert v["kendall_tau"]["logme"]["tau"] == pytest.approx(expected) and v["kendall_tau"]["logme"]["n"] == 2
    assert any("another target task" in n and "classes" in n for n in v["notes"])
    assert any("says little" in n for n in v["notes"])


def test_rank_layers_validates_against_partial_and_linear_probe_cells(models, tmp_path):
    _store(tmp_path / "a", models["cnn"], {"partial-1": 0.9, "partial-2": 0.8, "linear-probe": 0.7, "full": 0.95})
    v = rank([models["cnn"]], "digits", classes="5-9", shots=10, layers=True, compare=[tmp_path / "a"]).validation
    assert [(a["freeze"], a["accuracy"]) for a in v.accuracies] == [(1, 0.9), (2, 0.8), (3, 0.7)]
    assert v.correlations["logme"].n == 3


def test_rank_cli_prints_the_json_contract(models):
    out = invoke("rank", models["cnn"], models["mlp"], "--data", "digits", "--classes", "5-9", "--shots", "5", "--json")
    assert [set(m) >= {"model", "logme", "leep", "hscore", "probe_accuracy", "seconds"} for m in out["models"]] == [True] * 2
    assert out["validation"] is None
    text = runner.invoke(app, ["rank", str(models["cnn"]), "--data", "digits", "--classes", "5-9", "--layers"])
    assert text.exit_code == 0 and "conv1" in text.stdout and "cut after" in text.stdout


# --- advise ------------------------------------------------------------------------------------------


def test_the_advice_table():
    assert recommend(5, "small", best=2, blocks=3) == ("linear-probe", {}, 3)
    assert recommend(5, "moderate", best=0, blocks=3) == ("partial", {"freeze": 1}, 1)
    assert recommend(5, "unknown", best=2, blocks=3) == ("linear-probe", {}, 3)
    assert recommend(5, "large", best=2, blocks=3) == ("lp-ft", {}, 0)
    assert recommend(50, "small", best=0, blocks=3) == ("full", {}, 0)
    assert recommend(50, "moderate", best=2, blocks=3) == ("lp-ft", {}, 0)
    assert recommend(50, "unknown", best=2, blocks=3) == ("lp-ft", {}, 0)


def test_advise_recommends_a_registered_strategy_with_its_measurements(models):
    from transferlab.strategies import list_strategies

    a = advise(models["cnn"], "digits", classes="5-9", shots=5)
    assert a.strategy in list_strategies() and 0 <= a.freeze <= 3
    assert a.labels_per_class == 5 and a.gap_level in ("small", "moderate", "large")
    assert 0 <= a.domain_gap <= 1 and a.gap_within_source is not None
    assert f"{a.domain_gap:.2f}" in a.reason and "5 labelled examples per class" in a.reason
    assert a.command.startswith(f"transferlab finetune {models['cnn']} --data digits --strategy {a.strategy}")
    out = invoke("advise", models["cnn"], "--data", "digits", "--classes", "5-9", "--shots", "5", "--json")
    assert out["strategy"] == a.strategy and out["freeze"] == a.freeze and out["reason"] == a.reason


def test_advise_without_source_data_says_the_gap_is_unknown(models):
    a = advise(models["cnn"], "digits", classes="5-9", shots=5, source_data=str(models["root"] / "missing.npz"))
    assert a.domain_gap is None and a.gap_level == "unknown"
    assert any("domain gap unknown" in n and "missing.npz" in n for n in a.notes)


# --- explain -----------------------------------------------------------------------------------------


def test_drift_is_zero_and_cka_one_for_the_frozen_block(models):
    r = explain(models["tgt"], source_data="digits", examples=0)
    assert r.pretrained == str(models["cnn"])  # as the fine-tuned folder records it
    assert r.drift["conv1"] == 0.0 and r.drift["conv2"] > 0 and r.drift["fc"] > 0
    assert r.cka["conv1"] == pytest.approx(1.0, abs=1e-9)
    assert all(0 <= r.cka[b] <= 1 + 1e-9 for b in r.blocks)
    assert r.forgetting is not None and r.forgetting.n > 0
    assert r.forgetting.drop == pytest.approx(r.forgetting.before - r.forgetting.after)
    direct = weight_drift(transferlab.load(models["cnn"]).backbone, transferlab.load(models["tgt"]).backbone)
    assert direct == r.drift


def test_explain_writes_heatmaps_and_json(models, tmp_path):
    out = invoke("explain", models["tgt"], "--examples", "2", "--out", tmp_path / "ex", "--json")
    assert [b["block"] for b in out["blocks"]] == ["conv1", "conv2", "fc"] and out["forgetting"] is None
    assert len(out["attributions"]) == 2 and out["attributions"][0]["kind"] == "image"
    page = (tmp_path / "ex" / "explain.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "http" not in page.split("<body>")[1].split("Kornblith")[0]
    assert json.loads((tmp_path / "ex" / "explain.json").read_text())["blocks"] == out["blocks"]
    saliency = explain(models["tgt"], method="saliency", examples=1)
    assert saliency.attributions[0].heat.shape == (8, 8) and (saliency.attributions[0].heat >= 0).all()


def test_explain_refuses_mismatches_naming_the_fix(models):
    with pytest.raises(ConfigError, match=r"fine-tuned from weights with sha256 [0-9a-f]{64}, but --pretrained .*mlp has "
                                          r"sha256 [0-9a-f]{64}"):
        explain(models["tgt"], pretrained=models["mlp"], examples=0)
    with pytest.raises(ArtifactError, match="is a pretrained backbone, not a fine-tuned model"):
        explain(models["cnn"], examples=0)
    with pytest.raises(ConfigError, match=r"--method 'gradcam' is not one of \['integrated-gradients', 'saliency'\]"):
        explain(models["tgt"], method="gradcam")
    with pytest.raises(ConfigError, match="--examples must be 0 or more.*got -1"):
        explain(models["tgt"], examples=-1)
    assert "no such file" in fails("explain", models["tgt"], "--source-data", models["root"] / "none.npz",
                                   "--examples", "0")


def _digits_npz(path: Path, low: int, high: int) -> Path:
    """UCI digits low..high as an .npz whose class names are the digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = (d.target >= low) & (d.target <= high)
    np.savez(path, x=d.images[keep], y=d.target[keep])
    return path


def test_forgetting_refuses_source_data_with_other_classes(tmp_path):
    source = _digits_npz(tmp_path / "d012.npz", 0, 2)
    transferlab.pretrain(str(source), backbone="mlp", backbone_config={"hidden": [8]}, out=tmp_path / "src",
                         train=TrainConfig(epochs=1))
    transferlab.finetune(tmp_path / "src", "digits", classes="5-9", strategy="linear-probe", out=tmp_path / "tgt",
                         train=TrainConfig(epochs=1))
    other = _digits_npz(tmp_path / "d345.npz", 3, 5)
    with pytest.raises(ConfigError, match=r"d345.npz has classes \['3', '4', '5'\] but the source head of .* predicts "
                                          r"\['0', '1', '2'\]; pass the source task"):
        explain(tmp_path / "tgt", source_data=str(other), examples=0)
    assert explain(tmp_path / "tgt", source_data=str(source), examples=0).forgetting.drop == 0.0  # a frozen backbone


# --- compare report ------------------------------------------------------------------------------------


def test_compare_report_shows_what_transferred_in_the_saved_models(models, tmp_path):
    from transferlab.compare import CompareConfig, StrategySpec, run_comparison

    cfg = CompareConfig(pretrained=str(models["cnn"]), data="digits", classes="5-9",
                        strategies=["linear-probe", StrategySpec("partial", {"freeze": 1})], shots=[5], seeds=1,
                        train={"epochs": 2})
    run_comparison(cfg, tmp_path / "cmp", save_models=True)
    summary = json.loads((tmp_path / "cmp" / "what_transferred.json").read_text())
    rows = {m["name"]: m for m in summary["models"]}
    assert set(rows) == {"linear-probe-5shot", "partial-5shot"}  # scratch is left out
    assert rows["linear-probe-5shot"]["drift"] == {"conv1": 0.0, "conv2": 0.0, "fc": 0.0}
    assert rows["linear-probe-5shot"]["source_accuracy"] == summary["source_accuracy_before"]
    assert rows["partial-5shot"]["drift"]["conv1"] == 0.0 and rows["partial-5shot"]["drift"]["fc"] > 0
    assert len(summary["attributions"]) == 3
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert '<section id="what-transferred">' in page and "CKA conv1" in page
    from transferlab.compare.outputs import what_transferred

    stored = cfg.to_dict() | {"pretrained_sha256": "0" * 64}  # as if the pretrained folder were retrained since
    result, note = what_transferred(tmp_path / "cmp", stored, {})
    assert result is None and f"not the {'0' * 64} this comparison was run from" in note
    saved = tmp_path / "cmp" / "models" / "partial-5shot"
    # compare's saved models carry the same provenance record as finetune's (pretrained_from included)
    assert json.loads((saved / "config.json").read_text())["pretrained_from"]["path"] == str(models["cnn"])
    with pytest.raises(ConfigError, match="records no target data file; pass --data"):
        explain(saved, examples=0)
    assert explain(saved, data="digits", examples=0).drift["conv1"] == 0.0
    older = tmp_path / "older"  # a folder that does not record where it came from (written before it was recorded)
    shutil.copytree(saved, older)
    config = json.loads((older / "config.json").read_text())
    del config["pretrained_from"]
    from transferlab.artifacts.model_folder import seal_config

    (older / "config.json").write_text(json.dumps(seal_config(config)))  # an honest older record, not an edit
    with pytest.raises(ConfigError, match="does not record the pretrained model it was fine-tuned from; pass --pretrained"):
        explain(older, data="digits", examples=0)
    assert explain(saved, pretrained=models["cnn"], data="digits", examples=0).drift["conv1"] == 0.0
    run_comparison(cfg, tmp_path / "plain")
    assert "run compare with --save-models" in (tmp_path / "plain" / "report.html").read_text()
    assert not (tmp_path / "plain" / "what_transferred.json").exists()


# --- text ----------------------------------------------------------------------------------------------


def test_text_models_are_ranked_and_explained_with_token_highlights(tiny_bert_path, tmp_path):
    import csv

    from conftest import TEXT_TEMPLATES

    data = tmp_path / "topics.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(60):
            topic = list(TEXT_TEMPLATES)[i % 3]
            writer.writerow([TEXT_TEMPLATES[topic][i % 4] + " today", topic])
    transferlab.pretrain(str(data), backbone=f"hf:{tiny_bert_path}", out=tmp_path / "src", train=TrainConfig(epochs=1))
    transferlab.finetune(tmp_path / "src", str(data), strategy="full", out=tmp_path / "tgt", train=TrainConfig(epochs=1))
    layers = rank([tmp_path / "src"], str(data), shots=5, layers=True)
    assert [l.block for l in layers.layers] == ["embeddings", "layer0", "layer1", "pooling"]
    r = explain(tmp_path / "tgt", examples=2, out=tmp_path / "ex")
    assert r.attributions[0].tokens[0] == "[CLS]" and len(r.attributions[0].scores) == len(r.attributions[0].tokens)
    assert r.drift["embeddings"] > 0 and np.isnan(r.drift["pooling"])  # the pooling block has no weights
    assert 'class="tok"' in (tmp_path / "ex" / "explain.html").read_text()


def test_lower_level_analyses_refuse_mismatched_inputs(models, tmp_path):
    from transferlab.analysis.forgetting import forgetting
    from transferlab.analysis.representations import block_outputs

    cnn, mlp = transferlab.load(models["cnn"]), transferlab.load(models["mlp"])
    with pytest.raises(ConfigError, match=r"the pretrained blocks are \['conv1', 'conv2', 'fc'\] but the fine-tuned "
                                          r"model has \['fc1'\]"):
        weight_drift(cnn.backbone, mlp.backbone)
    with pytest.raises(ConfigError, match=r"no block\(s\) \['fc9'\] in this backbone; its blocks are"):
        block_outputs(cnn.backbone, np.zeros((2, 1, 8, 8), np.float32), blocks=["fc9"])
    with pytest.raises(ConfigError, match="max_examples must be at least 2.*got 1"):
        explain(models["tgt"], max_examples=1)
    folder = tmp_path / "nosource"
    shutil.copytree(models["cnn"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["source_task"] = {"data": "n/a", "label_names": config["label_names"]}
    (folder / "config.json").write_text(json.dumps(seal_config(config)))
    with pytest.raises(ConfigError, match="records no source dataset; pass --source-data"):
        forgetting(transferlab.load(folder), cnn.backbone)
