import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transferlab.artifacts import add_model, list_models, load_model_folder, remove_model, resolve_model, save_model_folder
from transferlab.artifacts.store import packaged_models
from transferlab.errors import ArtifactError, ConfigError
from transferlab.models import HeadSpec, TransferModel, create_backbone, wrap_module
from transferlab.artifacts.model_folder import seal_config

INFO = {
    "source_task": {"data": "tiny", "label_names": ["a", "b"], "n_train": 4},
    "label_names": ["a", "b"],
    "preprocessing": {"image_size": None, "image_margin": 0, "classes": None},
    "metrics": {"source_val_accuracy": 0.5},
}


def _save(path: Path, *, head: bool = False, overwrite: bool = False) -> TransferModel:
    torch.manual_seed(0)
    model = TransferModel(create_backbone("cnn", (1, 8, 8)), HeadSpec(num_outputs=2))
    save_model_folder(
        path, backbone=model.backbone, head=model.head if head else None, head_spec=model.head_spec if head else None,
        info=INFO, overwrite=overwrite,
    )
    return model


def test_pretrained_folder_holds_the_backbone_only(tmp_path):
    model = _save(tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    tensors = load_file(str(tmp_path / "src" / "model.safetensors"))
    assert tensors and all(k.startswith("backbone.") for k in tensors)
    cfg = json.loads((tmp_path / "src" / "config.json").read_text())
    assert cfg["kind"] == "pretrained" and cfg["architecture"]["head"] is None
    assert [b["name"] for b in cfg["blocks"]] == ["conv1", "conv2", "fc"]
    assert sorted(p for b in cfg["blocks"] for p in b["params"]) == sorted(tensors)
    for key in ("architecture", "input_spec", "preprocessing", "source_task", "label_names", "metrics", "versions"):
        assert key in cfg
    assert len(cfg["weights"]["sha256"]) == 64 and cfg["versions"]["torch"] == torch.__version__
    loaded = load_model_folder(tmp_path / "src")
    assert loaded.kind == "pretrained" and loaded.model is None
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, loaded.backbone.state_dict()[k])
    card = (tmp_path / "src" / "README.md").read_text()
    assert "pretrained backbone" in card and "tiny" in card and cfg["weights"]["sha256"] in card


def test_finetuned_folder_adds_the_head(tmp_path):
    model = _save(tmp_path / "tgt", head=True)
    tensors = load_file(str(tmp_path / "tgt" / "model.safetensors"))
    assert {k.split(".")[0] for k in tensors} == {"backbone", "head"}
    loaded = load_model_folder(tmp_path / "tgt")
    x = torch.rand(3, 1, 8, 8)
    model.eval()
    assert torch.equal(loaded.model(x), model(x))


def test_bit_flip_is_refused_naming_both_hashes(tmp_path):
    _save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    expected = json.loads((tmp_path / "m" / "config.json").read_text())["weights"]["sha256"]
    with pytest.raises(ArtifactError, match=rf"model.safetensors fails its checksum: config.json expects sha256 {expected} but the file has [0-9a-f]{{64}}"):
        load_model_folder(tmp_path / "m")


def test_truncated_file_is_refused(tmp_path):
    _save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="fails its checksum"):
        load_model_folder(tmp_path / "m")


def test_a_pickle_in_place_of_weights_never_runs(tmp_path):
    _save(tmp_path / "m")
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(pickle.dumps(Evil()))
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    import hashlib

    cfg["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # even with a matching hash
    cfg_path.write_text(json.dumps(seal_config(cfg)))  # a forger re-hashes config.json too
    with pytest.raises(ArtifactError, match="is not a readable safetensors file"):
        load_model_folder(tmp_path / "m")
    assert not marker.exists()


def test_missing_and_damaged_folders(tmp_path):
    with pytest.raises(ArtifactError, match="is not a transferlab model folder: config.json is missing"):
        load_model_folder(tmp_path)
    _save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="is incomplete: model.safetensors is missing"):
        load_model_folder(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="config.json is not valid JSON"):
        load_model_folder(tmp_path / "m")


def test_existing_out_needs_overwrite_and_never_replaces_other_folders(tmp_path):
    _save(tmp_path / "m")
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite to replace it, or choose another --out"):
        _save(tmp_path / "m")
    _save(tmp_path / "m", overwrite=True)  # a model folder may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary or old folder left behind
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("years of work")
    with pytest.raises(ArtifactError, match="is not a transferlab model folder; refusing to replace it"):
        _save(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "thesis.txt").read_text() == "years of work"


def test_a_failed_save_leaves_the_previous_version_intact(tmp_path, monkeypatch):
    _save(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    import transferlab.artifacts.model_folder as mf

    def boom(config):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mf, "model_card", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _save(tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    load_model_folder(tmp_path / "m")


def test_store_add_list_resolve_remove(tmp_path, isolated_store):
    _save(tmp_path / "m", head=True)
    def stored():
        rows = list_models()
        assert [m["name"] for m in rows if m.get("packaged")] == list(packaged_models())  # listed until first used
        return [m for m in rows if not m.get("packaged")]

    assert stored() == []
    add_model(tmp_path / "m", "digits-cnn")
    rows = stored()
    assert [r["name"] for r in rows] == ["digits-cnn"] and rows[0]["kind"] == "finetuned"
    assert resolve_model("digits-cnn") == isolated_store / "digits-cnn"
    assert resolve_model(tmp_path / "m") == tmp_path / "m"
    with pytest.raises(ArtifactError, match=r"the store already has a model 'digits-cnn'; pass --overwrite"):
        add_model(tmp_path / "m", "digits-cnn")
    with pytest.raises(ArtifactError, match=r"no model 'nope': it is neither a folder path nor a model in the store .*store has: \['digits-cnn', 'efficientnet-lite0', 'minilm'\]"):
        resolve_model("nope")
    remove_model("digits-cnn")
    assert stored() == []
    with pytest.raises(ArtifactError, match=r"the store has no model 'digits-cnn'"):
        remove_model("digits-cnn")


def test_wrapped_user_module_round_trip_needs_the_module(tmp_path):
    def net():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU())

    torch.manual_seed(0)
    backbone = wrap_module(net(), input_shape=(1, 8, 8))
    save_model_folder(tmp_path / "u", backbone=backbone, head=None, head_spec=None, info=INFO)
    with pytest.raises(ConfigError, match=r"saved from a wrapped user module.*load\(path, module=MyNet\(\)\)"):
        load_model_folder(tmp_path / "u")
    loaded = load_model_folder(tmp_path / "u", module=net())
    assert torch.equal(loaded.backbone.blocks["1"][1].weight, backbone.blocks["1"][1].weight)


def test_a_backbone_declaring_packaged_weights_is_a_model_name_with_no_other_edit(tmp_path, monkeypatch, isolated_store):
    """What `minilm` and `efficientnet-lite0` are to the store comes from their registry entries, not a name list."""
    import textwrap

    from transferlab.artifacts.ownership import STORE_MARKER
    from transferlab.artifacts.store import resolve_model
    from transferlab.models.mlp import MLPConfig, mlp
    from transferlab.models.registry import register_backbone, unregister_backbone

    (tmp_path / "shipped_weights.py").write_text(textwrap.dedent('''
        from transferlab.artifacts.model_folder import save_model_folder
        from transferlab.data.task import InputSpec
        from transferlab.models import create_backbone

        def write(dest, also_write=None):
            net = create_backbone("shipped-net", InputSpec("vector", (4,)), hidden=[3])
            info = {"source_task": {"data": "a package", "label_names": [], "n_train": "n/a"}, "label_names": [],
                    "preprocessing": {}, "metrics": {}, "origin": "weights shipped in a package"}
            save_model_folder(dest, backbone=net, head=None, head_spec=None, info=info, also_write=also_write)
            return dest
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    register_backbone("shipped-net", MLPConfig, "an mlp whose weights ship in a package",
                      packaged="weights shipped in a package", packaged_writer="shipped_weights:write")(mlp)
    try:
        assert packaged_models()["shipped-net"] == "weights shipped in a package"
        assert "shipped-net" in [m["name"] for m in list_models() if m.get("packaged")]
        folder = resolve_model("shipped-net")  # written into the store on first use, marked as the store's
        assert folder == isolated_store / "shipped-net" and (folder / STORE_MARKER).is_file()
        assert load_model_folder(folder).backbone.feature_dim == 3
        with pytest.raises(ValueError, match="packaged_writer"):
            register_backbone("shipped-net-2", MLPConfig, "no writer", packaged="somewhere")(mlp)
    finally:
        unregister_backbone("shipped-net")
    with pytest.raises(ArtifactError, match=r"backbone 'cnn' ships no pretrained weights .*pretrain it first"):
        from transferlab.artifacts.store import materialize

        materialize("cnn")
