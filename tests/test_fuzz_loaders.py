"""Fuzzing the loaders (hypothesis): any input either loads correctly or raises a transferlab error —
never another exception, never a hang.

Each loader gets raw bytes and structured-but-wrong inputs: .npz archives of odd arrays, IDX files with
lying headers, numeric CSV tables, text CSV/JSONL files, compare's YAML config and a model folder's
config.json. What loads must also be sane (as many labels as inputs, finite numbers). Every bug the
fuzzing found is pinned as an `@example`.
"""

from __future__ import annotations

import datetime
import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transferlab.errors import TransferlabError
from transferlab.artifacts.model_folder import seal_config

# No deadline (the project profile in conftest.py): a busy machine must not fail a test; a hang is caught by
# the bounds the loaders enforce (YAML depth and size, IDX headers), each tested in test_hostile_inputs.py.
FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
FUZZ_SLOW = settings(FUZZ, max_examples=60)

_ROOT = Path()  # set per module run by the fixture below; every fuzzed file is written under it


@pytest.fixture(scope="module", autouse=True)
def _root(tmp_path_factory):
    global _ROOT
    _ROOT = tmp_path_factory.mktemp("fuzz")
    yield
    shutil.rmtree(_ROOT, ignore_errors=True)


def _file(name: str, content: bytes | str) -> Path:
    path = _ROOT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    return path


def _loads_or_refuses(data: Path | str, **kwargs):
    """load_task: a sane Task, or a TransferlabError; anything else fails the property."""
    from transferlab.data import load_task

    try:
        task = load_task(str(data), **kwargs)
    except TransferlabError:
        return None
    assert len(task.x_pool) == len(task.y_pool) > 0 and len(task.x_test) == len(task.y_test) > 0
    if task.input_spec.kind != "text":
        assert np.isfinite(task.x_pool).all() and np.isfinite(task.x_test).all()
    if not task.is_numeric:
        assert len(task.class_names) >= 2 and task.y_pool.min() >= 0 and task.y_pool.max() < len(task.class_names)
    return task


# ---- .npz ----

NAMES = st.sampled_from(["x", "y", "x_test", "y_test", "x_train", "y_train", "other"])
DTYPES = st.sampled_from(["u1", "i1", "i8", "u8", "f2", "f4", "f8", "?", "c8", "U3", "S2", "M8[D]", "m8[s]"])
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))


@FUZZ
@given(st.dictionaries(NAMES, ARRAYS, max_size=4), st.booleans())
@example({"x": np.zeros((6, 2)), "y": np.array([0, 0, 0, 1, 1, 1e300])}, False)  # a label past int64
@example({"x": np.zeros((6, 2)), "y": np.array(5)}, False)  # 0-d labels
@example({"x": np.array(3.0), "y": np.array([1])}, False)  # 0-d inputs
def test_npz_structured(arrays, numeric):
    path = _file("s.npz", b"")
    np.savez(path, **arrays)
    _loads_or_refuses(path, target="numeric" if numeric else "class")


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"]))
def test_npz_bytes(data, prefix):
    _loads_or_refuses(_file("b.npz", prefix + data))


# ---- IDX ----

def _idx(type_byte: int, dims: list[int], data: bytes) -> bytes:
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


IDX_TYPES = st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0x00])


@st.composite
def idx_files(draw):
    type_byte = draw(IDX_TYPES)
    dims = draw(st.lists(st.integers(0, 6) | st.sampled_from([2**31, 2**32 - 1, 2**16]), min_size=0, max_size=5))
    size = math.prod(dims) * {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(type_byte, 1)
    size = size if size < 4096 else draw(st.integers(0, 64))
    delta = draw(st.sampled_from([0, 0, 0, -1, 1]))
    return _idx(type_byte, dims, draw(st.binary(min_size=max(0, size + delta), max_size=max(0, size + delta))))


@FUZZ
@given(idx_files(), idx_files(), st.booleans())
@example(_idx(0x08, [2**16] * 4, b""), _idx(0x08, [1], b"\x00"), False)  # 2**64 elements: int64 overflow to 0
@example(_idx(0x08, [2, 2, 2], bytes(8)), _idx(0x0D, [2], struct.pack(">ff", 0.0, float("nan"))), False)
def test_idx_structured(images, labels, gz):
    import gzip

    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    folder = _ROOT / "idx"
    shutil.rmtree(folder, ignore_errors=True)
    path = _file(f"idx/train-images-idx3-ubyte{suffix}", pack(images))
    _file(f"idx/train-labels-idx1-ubyte{suffix}", pack(labels))
    _loads_or_refuses(path)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
@example(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", True)  # a gzip header, then corrupt deflate data
def test_idx_bytes(data, gz_name):
    folder = _ROOT / "idxb"
    shutil.rmtree(folder, ignore_errors=True)
    suffix = ".gz" if gz_name else ""
    path = _file(f"idxb/t-images-idx3-ubyte{suffix}", data)
    _file(f"idxb/t-labels-idx1-ubyte{suffix}", data[::-1])
    _loads_or_refuses(path)


# ---- numeric CSV tables ----

CELLS = st.one_of(st.integers(-3, 3).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["", " ", "nan", "inf", "1e999", "a", "cat", '"1,2"', "0x10", "1_0", "\x00"]),
                  st.text(max_size=4))


@FUZZ
@given(st.lists(st.sampled_from(["label", "a", "b", "", "label"]), min_size=0, max_size=4),
       st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=12), st.booleans())
@example(["a", "label"], [["1", "x"], ["\x00", "y"]], False)  # a NUL byte
@example(["a", "label"], [["1" * 140_000, "x"]], False)  # a field beyond the csv module's limit
def test_csv_structured(header, rows, numeric):
    text = "\n".join(",".join(r) for r in [header, *rows])
    _loads_or_refuses(_file("t.csv", text), target="numeric" if numeric else "class")


@FUZZ
@given(st.binary(max_size=400))
@example(b"a,label\n1,\xff\xfe\n")
def test_csv_bytes(data):
    _loads_or_refuses(_file("b.csv", b"a,label\n" + data))


# ---- text CSV and JSONL ----

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
RECORDS = st.fixed_dictionaries({}, optional={"text": JSON | st.text(max_size=12), "label": JSON,
                                              "other": JSON}) | JSON


@FUZZ
@given(st.lists(RECORDS, max_size=10), st.lists(st.sampled_from(["", "{", "[" * 3000, "1" * 5000, "\ufeff"]),
                                                max_size=2))
@example([{"text": "a", "label": 1}, {"text": "b", "label": 2}], ["[" * 100_000])  # deep nesting: RecursionError
@example([{"text": "a", "label": 1}], ["1" * 5000])  # an int too long for str(): ValueError
def test_jsonl_structured(records, junk):
    lines = [json.dumps(r) for r in records] + junk
    _loads_or_refuses(_file("t.jsonl", "\n".join(lines)))


@FUZZ
@given(st.lists(st.lists(CELLS | st.text(max_size=10), min_size=0, max_size=3), max_size=10),
       st.sampled_from([["text", "label"], ["label", "text"], ["text"], ["text", "label", "x"]]))
def test_text_csv_structured(rows, header):
    text = "\n".join(",".join(r) for r in [header, *rows])
    _loads_or_refuses(_file("text.csv", text))


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["t.jsonl", "text.csv"]))
@example(b"\xff\xfe{\x00}", "t.jsonl")
def test_text_bytes(data, name):
    head = b"text,label\n" if name.endswith(".csv") else b""
    _loads_or_refuses(_file(f"tb/{name}", head + data))


# ---- compare --config (YAML) ----

def _resolve(path: Path):
    from transferlab.compare.config import resolve_config

    try:
        config, execution = resolve_config(path, {}, {"freeze": None, "hidden": None}, {"epochs": None, "lr": None})
    except TransferlabError:
        return
    json.dumps(config.to_dict() | {"execution": execution})  # the identity is stored as JSON in runs.sqlite
    assert isinstance(config.pretrained, str) and isinstance(config.data, str) and config.seeds >= 1


KEYS = st.sampled_from(["pretrained", "data", "strategies", "shots", "seeds", "classes", "image_size", "image_margin",
                        "label_column", "text_column", "test_data", "train", "jobs", "threads", "unknown"])
YAML_VALUES = (JSON | st.dates() | st.sampled_from(["scratch", "partial", "all", "1,5", "models/src", "digits"])
               | st.lists(st.sampled_from(["scratch", "full", {"name": "partial", "options": {"freeze": 1}},
                                           {"name": "x"}, {"options": {}}, 3]), max_size=3)
               | st.dictionaries(st.sampled_from(["lr", "epochs", "batch_size", "schedule", "patience", "x"]), JSON,
                                 max_size=3))


@FUZZ_SLOW
@given(st.dictionaries(KEYS, YAML_VALUES, max_size=7), st.booleans())
@example({"pretrained": "m", "data": "d", "train": {"lr": "fast"}}, True)  # a string learning rate
@example({"pretrained": "m", "data": datetime.date(2020, 1, 1)}, True)  # YAML reads 2020-01-01 as a date
@example({"pretrained": "m", "data": "d", "shots": 5}, True)  # a bare number of shots
@example({"pretrained": "m", "data": "d", "train": {"epochs": "5"}}, True)
@example({"pretrained": "m", "data": "d", "seeds": 2, "jobs": "two"}, True)
@example({"pretrained": "m", "train": 1}, True)  # train settings that are not a mapping
@example({"pretrained": "m", "data": "d", "strategies": [{"name": "full", "options": [1]}]}, True)
def test_compare_config_structured(settings_, with_required):
    import yaml

    if with_required:
        settings_ = {"pretrained": "models/src", "data": "digits"} | settings_
    _resolve(_file("exp.yaml", yaml.safe_dump(settings_, allow_unicode=True)))


@FUZZ
@given(st.binary(max_size=300))
@example(b"pretrained: m\ndata: \xff\n")  # not UTF-8
@example(b"a: &a [*a]\n")  # a recursive alias
@example(b"[" * 2000)  # deep nesting
def test_compare_config_bytes(data):
    _resolve(_file("b.yaml", data))


# ---- a model folder's config.json ----

@pytest.fixture(scope="module")
def model_folders(tmp_path_factory):
    """Real folders — fine-tuned (mlp, 4 features, 3 classes) and pretrained with its source head (cnn on
    1×8×8 images); the fuzz rewrites only their config.json."""
    from transferlab.artifacts import save_model_folder
    from transferlab.data.task import InputSpec
    from transferlab.models import HeadSpec, TransferModel, create_backbone

    root = tmp_path_factory.mktemp("fuzz-model")
    model = TransferModel(create_backbone("mlp", InputSpec("vector", (4,)), hidden=[8]), HeadSpec(3))
    save_model_folder(root / "finetuned", backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                      info={"label_names": ["a", "b", "c"], "preprocessing": {"classes": None}, "target": "class"})
    cnn = TransferModel(create_backbone("cnn", InputSpec("image", (1, 8, 8)), channels=[2], hidden=4), HeadSpec(2))
    save_model_folder(root / "pretrained", backbone=cnn.backbone, head=None, head_spec=None, source_head=cnn.head,
                      source_head_spec=cnn.head_spec, info={"label_names": ["x", "y"], "preprocessing": {}})
    return {"finetuned": root / "finetuned", "pretrained": root / "pretrained"}


@pytest.fixture(scope="module")
def model_folder(model_folders):
    return model_folders["finetuned"]


def _paths(obj, prefix=()):
    """Every key path of a nested config (dicts and lists)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutate(config, path, value, delete):
    if not path:
        return value
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return config


CONFIG_VALUES = JSON | st.sampled_from([10**9, -1, 0, 2**63, "hf", "cnn", "finetuned", "pretrained", [10**9], [],
                                        "model.pt", "../model.safetensors", {"name": "mlp", "config": {}}])


def _load_or_refuse(folder: Path) -> None:
    from transferlab.artifacts import load_model_folder

    try:
        loaded = load_model_folder(folder)
    except TransferlabError:
        return
    import torch

    x = torch.zeros(2, *loaded.input_spec.shape)
    net = loaded.model if loaded.model is not None else loaded.backbone
    assert net(x).shape[0] == 2
    if loaded.model is not None and loaded.config.get("target", "class") == "class":
        assert len(loaded.label_names) == loaded.model.head_spec.num_outputs


@FUZZ
@given(st.data(), CONFIG_VALUES, st.booleans(), st.sampled_from(["finetuned", "pretrained"]))
def test_model_config_structured(model_folders, data, value, delete, which):
    original = json.loads((model_folders[which] / "config.json").read_text())
    folder = _ROOT / "model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(model_folders[which], folder)
    paths = sorted(_paths(original), key=repr)
    path = data.draw(st.sampled_from(paths))
    mutated = _mutate(json.loads(json.dumps(original)), path, value, delete)
    (folder / "config.json").write_text(json.dumps(seal_config(mutated) if isinstance(mutated, dict) and path[:1] != ("config_sha256",) else mutated))
    _load_or_refuse(folder)


@pytest.mark.parametrize("which,change", [
    ("finetuned", ("architecture", "backbone", "config", "hidden", [10**9])),  # sizes that would allocate terabytes
    ("finetuned", ("architecture", "head", "num_outputs", 10**9)),
    ("finetuned", ("weights", "file", "model.pt")),
    ("finetuned", ("label_names", ["a", "b"])),  # fewer names than outputs
    ("finetuned", ("label_names", [])),
    ("finetuned", ("input_spec", "shape", [10**9])),
    ("finetuned", ("architecture", "head", "hidden", ["x"])),
    ("finetuned", ("input_spec", "kind", [])),  # an unhashable kind
    ("pretrained", ("source_head", "spec", "num_outputs", 10**9)),  # the source head, built before its shapes were checked
    ("pretrained", ("source_head", "spec", "num_outputs", 2**63)),
    ("pretrained", ("source_head", "spec", "hidden", [1, "x"])),
    ("pretrained", ("source_head", "file", 5)),
    ("pretrained", ("source_head", "spec", [])),
])
def test_model_config_examples(model_folders, which, change):
    """Edits the fuzzing found, each refused before any weights are allocated."""
    config = json.loads((model_folders[which] / "config.json").read_text())
    *keys, value = change
    _mutate(config, tuple(keys), value, False)
    folder = _ROOT / "model-example"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(model_folders[which], folder)
    (folder / "config.json").write_text(json.dumps(seal_config(config)))  # resealed: the deeper checks still refuse it
    from transferlab.artifacts import load_model_folder

    with pytest.raises(TransferlabError, match="config.json"):
        load_model_folder(folder)


@FUZZ
@given(st.binary(max_size=300))
@example(b'{"format": "transferlab.model"}')
@example(b'{"format": "transferlab.model", "kind": "finetuned", "architecture": []}')
@example(b"[" * 100_000)  # nesting deeper than the JSON decoder's recursion limit
def test_model_config_bytes(model_folder, data):
    folder = _ROOT / "model-bytes"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(model_folder, folder)
    (folder / "config.json").write_bytes(data)
    _load_or_refuse(folder)


# ---- the messages of the errors the fuzzing made us add: each names the file and what is wrong ----

@pytest.mark.parametrize("name,content,expected", [
    ("zero.npz", {"x": np.array(3.0), "y": np.array([1])}, ["zero.npz", "'x' is a single value"]),
    ("big.npz", {"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 2.0**60])}, ["big.npz", "y[3]", "1.15"]),
    ("train-images-idx3-ubyte", _idx(0x08, [0, 28, 28], b""), ["train-images-idx3-ubyte", "holds no data"]),
    ("train-images-idx3-ubyte.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage",
     ["train-images-idx3-ubyte.gz", "cannot read IDX file"]),
    ("long.csv", b"a,label\n1,x\n" + b"1" * 140_000 + b",y\n", ["long.csv", "line 3", "has a field above the limit of",
                                                                "TRANSFERLAB_MAX_CSV_FIELD"]),
    ("deep.jsonl", b'{"text": "a", "label": 1}\n' + b"[" * 100_000 + b"\n", ["deep.jsonl", "line 2", "nested too deeply"]),
    ("long.jsonl", b'{"text": "a", "label": ' + b"1" * 5000 + b"}\n", ["long.jsonl", "line 1", "cannot be read as JSON"]),
])
def test_data_error_messages(name, content, expected):
    path = _ROOT / "messages" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict):
        np.savez(path, **content)
    else:
        path.write_bytes(content)
    if name.startswith("train-images"):
        _file("messages/train-labels-idx1-ubyte" + (".gz" if name.endswith(".gz") else ""), _idx(0x08, [1], b"\x00"))
    from transferlab.data import load_task

    with pytest.raises(TransferlabError) as caught:
        load_task(str(path))
    missing = [e for e in expected if e not in str(caught.value)]
    assert not missing, (missing, str(caught.value))


@pytest.mark.parametrize("yaml_text,expected", [
    ("pretrained: m\ndata: 2020-01-01\n", ["data must be text", "datetime.date(2020, 1, 1)"]),
    ("pretrained: m\ndata: d\ntrain: {lr: fast}\n", ["train setting 'lr' is 'fast'", "a number"]),
    ("pretrained: m\ndata: d\ntrain: {epochs: '5'}\n", ["'epochs' is '5'", "a whole number"]),
    ("pretrained: m\ndata: d\ntrain: 1\n", ["train must be a mapping", "got 1"]),
    ("pretrained: m\ndata: d\nshots: {a: 1}\n", ["--shots", "{'a': 1}"]),
    ("pretrained: m\ndata: d\nstrategies: full\n", None),  # a comma-separated text is fine
    ("pretrained: m\ndata: d\nstrategies: {name: full}\n", ["strategies must be a list", "{'name': 'full'}"]),
    ("pretrained: m\ndata: d\nstrategies: [{name: full, options: [1]}]\n", ["'full'", "options must be a mapping", "[1]"]),
    ("pretrained: m\ndata: d\njobs: two\n", ["jobs must be a whole number", "'two'"]),
    ("pretrained: m\ndata: d\nimage_size: big\n", ["image_size must be", "'big'"]),
])
def test_compare_config_error_messages(yaml_text, expected):
    from transferlab.compare.config import resolve_config

    path = _file("messages/exp.yaml", yaml_text)
    if expected is None:
        resolve_config(path, {}, {}, {})
        return
    with pytest.raises(TransferlabError) as caught:
        resolve_config(path, {}, {}, {})
    missing = [e for e in expected if e not in str(caught.value)]
    assert not missing, (missing, str(caught.value))


def test_compare_config_not_utf8_names_the_file():
    from transferlab.compare.config import resolve_config

    path = _file("messages/latin1.yaml", b"pretrained: m\ndata: caf\xe9\n")
    with pytest.raises(TransferlabError, match=r"latin1\.yaml is not UTF-8 text \(byte 23\)"):
        resolve_config(path, {}, {}, {})
