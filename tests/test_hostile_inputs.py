"""Hostile and unlucky inputs (issue 13): each ends in one line (exit 2: the value, what is allowed, the fix) or
correct behaviour; nothing a user causes prints a traceback, asks for many GiB, or blames the wrong thing.

The memory bombs run the real command in a subprocess under `resource.setrlimit(RLIMIT_AS)`: a regression
that allocates what the file asks for fails there (MemoryError, "out of memory") instead of swapping.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.artifacts import save_model_folder
from transferlab.data.task import InputSpec
from transferlab.errors import ConfigError, DataError
from transferlab.models import create_backbone
from transferlab.models.head import HeadSpec, TransferModel

SRC = Path(__file__).resolve().parents[1] / "src"
MEMORY_HEADROOM = 2 << 30  # bytes of address space a bomb subprocess may add; each bomb asks for ≥ 13 GiB


# ---- helpers ----

def cli(args: list[str], capsys, monkeypatch, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `transferlab ARGS` through main() (the top-level handler) in this process: (exit code, stdout, stderr)."""
    from transferlab.cli import main

    env = {"TRANSFERLAB_DEBUG": "", **(env or {})}  # --debug sets it in this process: start each call without it
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["transferlab", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    return stop.value.code, out, err


# The child imports what every command imports, then caps its address space at what it uses now plus
# MEMORY_HEADROOM (so a CUDA build's large libraries do not count against the bound), then runs the command.
_LIMITED_MAIN = """
import resource, sys
import numpy, torch
from transferlab.cli import main
size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
cap = size + int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv[0] = "transferlab"
main()
"""


def limited(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `transferlab ARGS` in a subprocess allowed MEMORY_HEADROOM bytes of address space beyond its imports."""
    full_env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    full_env.pop("TRANSFERLAB_DEBUG", None)
    return subprocess.run([sys.executable, "-c", _LIMITED_MAIN, str(MEMORY_HEADROOM), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def one_error_line(stderr: str) -> str:
    """The stderr of a refused command: exactly one line, starting with "error:"; returns it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def model_folder(path: Path, spec: InputSpec, *, text_path: str | None = None, prep: dict | None = None,
                 pretrained: bool = False) -> Path:
    """A fine-tuned model folder (3 classes) for inputs of `spec`, or a pretrained one (backbone only)."""
    torch.manual_seed(0)
    if spec.kind == "text":
        backbone = create_backbone("hf", spec, path=text_path)
    else:
        backbone = create_backbone("mlp", spec, hidden=[8])
    model = TransferModel(backbone, HeadSpec(3))
    default = {"text_column": "text"} if spec.kind == "text" else {"image_size": None, "image_margin": 0}
    if pretrained:
        save_model_folder(path, backbone=model.backbone, head=None, head_spec=None,
                          info={"label_names": [], "preprocessing": prep or default})
    else:
        save_model_folder(path, backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                          info={"label_names": ["a", "b", "c"], "target": "class", "preprocessing": prep or default})
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width×height (1-bit grayscale) and whose pixel data is a few zero rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + (width + 7) // 8) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A complete, valid side×side 1-bit PNG of zeros (~50 KB on disk; 400 M pixels decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (side + 7) // 8)
    deflate = zlib.compressobj(9)
    body = b"".join(deflate.compress(row * 1000) for _ in range(side // 1000)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def vector_model(tmp_path):
    return model_folder(tmp_path / "vec", InputSpec("vector", (4,)))


@pytest.fixture
def image_model(tmp_path):
    return model_folder(tmp_path / "img", InputSpec("image", (1, 8, 8)))


# ---- the top-level handler: one line, exit 2; --debug; internal errors ----

def test_a_user_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch, tmp_path):
    args = ["pretrain", "--data", "digits", "--image-size", "100000", "--out", str(tmp_path / "m")]
    code, _, err = cli(args, capsys, monkeypatch)
    line = one_error_line(err)
    assert code == 2
    assert "image_size 100000 is above the limit of 4,096 pixels per side" in line
    assert "TRANSFERLAB_MAX_IMAGE_SIZE=N" in line
    code, _, err = cli(["--debug", *args], capsys, monkeypatch)
    assert code == 2 and "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1] == line
    code, _, err = cli([*args, "--debug"], capsys, monkeypatch)  # after the command's name works too
    assert code == 2 and "Traceback" in err
    code, _, err = cli(args, capsys, monkeypatch, env={"TRANSFERLAB_DEBUG": "1"})
    assert code == 2 and "Traceback" in err


def test_one_line_messages_drop_cpp_stack_frames():
    from transferlab.failures import flat

    torch_text = ('empty(): argument \'size\' failed ("Overflow when unpacking long long\nException raised from '
                  'THPUtils_unpackLong at python_numbers.h:79 (most recent call first):\nframe #0: c10::Error::Error')
    assert flat(torch_text) == "empty(): argument 'size' failed (\"Overflow when unpacking long long …"


def test_an_internal_error_says_so_and_where_to_report(capsys, monkeypatch):
    import transferlab.data

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(transferlab.data, "list_datasets", broken)
    code, _, err = cli(["datasets"], capsys, monkeypatch)
    assert code == 1
    assert err.splitlines()[0] == "internal error: ZeroDivisionError: division by zero"
    assert "please report it" in err and "--debug" in err and "Traceback" not in err
    code, _, err = cli(["--debug", "datasets"], capsys, monkeypatch)
    assert code == 1 and "Traceback (most recent call last)" in err and "internal error" in err


@pytest.mark.parametrize("exc, message, code", [
    (MemoryError(), r"^error: out of memory: .* use a smaller --batch-size", 2),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 40000000000 bytes"), r"^error: out of memory", 2),
    (OSError(errno.EACCES, "Permission denied", "/data/x.npz"),
     r"^error: cannot use /data/x.npz: Permission denied \(errno 13 EACCES\); .*choose a folder you own", 2),
    (KeyboardInterrupt(), r"^interrupted", 130),
])
def test_memory_permission_and_interrupt_end_in_one_line(capsys, monkeypatch, exc, message, code):
    import transferlab.data

    def failing(*args, **kwargs):
        raise exc

    monkeypatch.setattr(transferlab.data, "list_datasets", failing)
    got, _, err = cli(["datasets"], capsys, monkeypatch)
    assert got == code and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err


def _fail_writes(monkeypatch, errnum: int, *, after: int = 0, name: str = "checkpoint"):
    """Every atomic write of a file whose name holds `name` fails with `errnum` once `after` such writes succeeded."""
    import transferlab.artifacts.files as files

    real_fdopen = os.fdopen
    seen = {"n": 0}

    class Failing:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errnum, os.strerror(errnum))

        def __getattr__(self, attr):
            return getattr(self._f, attr)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        target = os.readlink(f"/proc/self/fd/{fd}")
        if name in Path(target).name:
            seen["n"] += 1
            if seen["n"] > after:
                return Failing(f)
        return f

    monkeypatch.setattr(files.os, "fdopen", fdopen)


def _digits_source(tmp_path) -> Path:
    """A pretrained mlp for digits' 1×8×8 images (random weights: these tests are about files, not accuracy)."""
    return model_folder(tmp_path / "src", InputSpec("image", (1, 8, 8)), pretrained=True)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_full_disk_or_read_only_out_during_finetune_is_one_line_and_keeps_the_old_model(
        tmp_path, capsys, monkeypatch):
    source = _digits_source(tmp_path)
    out = tmp_path / "tgt"
    base = ["finetune", str(source), "--data", "digits", "--classes", "5-9", "--out", str(out), "--epochs", "2", "-q"]
    model_folder(out, InputSpec("image", (1, 8, 8)))  # the model a previous run saved there
    before = _snapshot(out)
    _fail_writes(monkeypatch, errno.ENOSPC)  # the first checkpoint (end of epoch 1) finds the disk full
    code, _, err = cli([*base, "--overwrite"], capsys, monkeypatch)
    line = one_error_line(err)
    assert code == 2
    assert "No space left on device (errno 28 ENOSPC); free disk space or write to another disk" in line
    assert "checkpoint.pt" in line  # the file it could not write, not torch's "unexpected pos"
    monkeypatch.undo()
    _fail_writes(monkeypatch, errno.EROFS, after=1)  # the folder turns read-only after the first epoch
    code, _, err = cli([*base, "--overwrite"], capsys, monkeypatch)
    line = one_error_line(err)
    assert code == 2 and "Read-only file system (errno 30 EROFS); the file system is read-only" in line
    after = _snapshot(out)
    # the model is intact (where an interrupted run keeps its checkpoint is the overwrite tests' concern)
    assert {name: after.get(name) for name in before} == before


def test_a_full_disk_during_compare_is_one_line(tmp_path, capsys, monkeypatch):
    import sqlite3

    from transferlab.failures import one_line, user_caused

    source = _digits_source(tmp_path)
    _fail_writes(monkeypatch, errno.ENOSPC, name="")  # every file compare writes
    code, _, err = cli(["compare", str(source), "--data", "digits", "--classes", "5-9", "--strategies", "linear-probe",
                        "--shots", "1", "--seeds", "1", "--out", str(tmp_path / "cmp"), "-q"], capsys, monkeypatch)
    assert code == 2 and "No space left on device (errno 28 ENOSPC)" in one_error_line(err)
    full = sqlite3.OperationalError("database or disk is full")  # the run store on a full disk
    assert user_caused(full)
    assert one_line(full).startswith("cannot write the comparison's run store (runs.sqlite in --out): database or "
                                     "disk is full; free disk space")


# ---- bounded resources ----

def test_image_size_is_bounded_before_allocating(tmp_path, monkeypatch):
    from transferlab.data import load_inputs, load_task, preprocess_inputs

    with pytest.raises(DataError, match=r"image_size 100000 is above the limit of 4,096 pixels per side .* "
                                        r"TRANSFERLAB_MAX_IMAGE_SIZE=N"):
        load_task("digits", image_size=100000)
    # a model's recorded preprocessing (config.json) is checked where it is used, whatever else checks the file
    with pytest.raises(DataError, match="image_size 60000 is above the limit of 4,096"):
        preprocess_inputs(np.zeros((2, 1, 8, 8), np.float32), {"image_size": 60000, "image_margin": 0})
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(DataError, match="image_size 60000 is above the limit"):
        load_inputs(tmp_path / "one.png", preprocessing={"image_size": 60000})
    monkeypatch.setenv("TRANSFERLAB_MAX_IMAGE_SIZE", "100000")  # raised: the memory bound still holds
    with pytest.raises(DataError, match=r"1797 images framed to 1×100000×100000 float32 is above the limit of "
                                        r"4,294,967,296 bytes .* TRANSFERLAB_MAX_INPUT_BYTES=N"):
        load_task("digits", image_size=100000)
    monkeypatch.setenv("TRANSFERLAB_MAX_IMAGE_SIZE", "lots")
    with pytest.raises(DataError, match=r"TRANSFERLAB_MAX_IMAGE_SIZE='lots': a limit must be a whole number ≥ 1"):
        load_task("digits", image_size=28)


def test_an_edited_config_image_size_is_refused_under_a_memory_limit(tmp_path, image_model):
    config = json.loads((image_model / "config.json").read_text())
    config["preprocessing"]["image_size"] = 60000
    (image_model / "config.json").write_text(json.dumps(config))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one.png")
    res = limited(["predict", str(image_model), "one.png"], tmp_path)
    line = one_error_line(res.stderr)  # refused (by the bound, or by a check of the edited file), not allocated
    assert res.returncode == 2 and "out of memory" not in line, res.stderr


def test_a_decompression_bomb_png_is_refused_from_its_header(tmp_path, image_model, monkeypatch):
    from transferlab.data import load_inputs

    png_header_only(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(DataError, match=r"huge.png .*is above the limit of 50,000,000 pixels per image .* "
                                        r"TRANSFERLAB_MAX_IMAGE_PIXELS=N"):
        load_inputs(tmp_path / "huge.png")
    png_header_only(tmp_path / "wide.png", 9000, 6000)  # 54 M: above ours, below Pillow's own error bound
    with pytest.raises(DataError, match=r"wide.png .*is above the limit of 50,000,000 pixels"):
        load_inputs(tmp_path / "wide.png")
    monkeypatch.setenv("TRANSFERLAB_MAX_IMAGE_PIXELS", "10")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(DataError, match=r"small.png of 8×8 pixels is above the limit of 10 pixels per image \(width × height\) \(asked for 64\)"):
        load_inputs(tmp_path / "small.png")


def test_a_real_20000_square_png_under_a_memory_limit(tmp_path, image_model):
    png_bomb(tmp_path / "bomb.png")
    assert (tmp_path / "bomb.png").stat().st_size < 200_000
    res = limited(["predict", str(image_model), "bomb.png"], tmp_path)
    line = one_error_line(res.stderr)
    assert res.returncode == 2 and "is above the limit of 50,000,000 pixels per image" in line, res.stderr


def _idx_gz(path: Path, shape: tuple[int, ...], data_bytes: int) -> Path:
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        zeros = b"\0" * (1 << 20)
        for _ in range(data_bytes >> 20):
            f.write(zeros)
        f.write(b"\0" * (data_bytes & ((1 << 20) - 1)))
    return path


def test_a_gzipped_idx_is_checked_before_inflating(tmp_path, monkeypatch):
    from transferlab.data.idx import read_idx_array

    # the header asks for 60000×2000×2000 bytes (240 GB): refused from 20 bytes of header
    bomb = _idx_gz(tmp_path / "a-images-idx3-ubyte.gz", (60000, 2000, 2000), 1 << 20)
    with pytest.raises(DataError, match=r"IDX header shape \(60000, 2000, 2000\) \(1-byte values\) is above the limit "
                                        r"of 4,294,967,296 bytes .*TRANSFERLAB_MAX_INPUT_BYTES=N"):
        read_idx_array(bomb)
    # a header that matches its data, but inflates past the limit: refused before inflating (here 64 MiB > 8 MiB)
    monkeypatch.setenv("TRANSFERLAB_MAX_INPUT_BYTES", str(8 << 20))
    honest = _idx_gz(tmp_path / "b-images-idx3-ubyte.gz", (64, 1024, 1024), 64 << 20)
    assert honest.stat().st_size < 1 << 20
    with pytest.raises(DataError, match=r"is above the limit of 8,388,608 bytes"):
        read_idx_array(honest)
    monkeypatch.setenv("TRANSFERLAB_MAX_INPUT_BYTES", str(1 << 30))
    # a header that claims more than the file holds: "truncated", with memory only for what is there
    short = _idx_gz(tmp_path / "c-images-idx3-ubyte.gz", (900, 1000, 1000), 1000)
    with pytest.raises(DataError, match=r"IDX header says shape \(900, 1000, 1000\) \(900000000 bytes of data\) but "
                                        r"the file has 1000; the file is truncated"):
        read_idx_array(short)


def test_an_npz_member_is_checked_before_inflating(tmp_path, monkeypatch):
    from transferlab.data.formats import load_npz_arrays

    np.savez_compressed(tmp_path / "big.npz", x=np.zeros((16, 1, 512, 512), np.float32), y=np.zeros(16, np.int64))
    assert (tmp_path / "big.npz").stat().st_size < 1 << 20
    monkeypatch.setenv("TRANSFERLAB_MAX_INPUT_BYTES", str(1 << 20))
    with pytest.raises(DataError, match=r"big.npz: array 'x' \(16,777,344 bytes uncompressed\) is above the limit of "
                                        r"1,048,576 bytes"):
        load_npz_arrays(tmp_path / "big.npz")


def test_yaml_alias_bombs_depth_and_size_are_refused_fast(tmp_path, monkeypatch, capsys):
    from transferlab.compare.config import load_config_file

    text = "pretrained: m\ndata: d\n" + "\n".join(
        ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]) + "\nclasses: *a9\n"
    (tmp_path / "bomb.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"bomb.yaml \(aliases expanded\) is above the limit of 100,000 values in a "
                                          r"YAML config.* TRANSFERLAB_MAX_YAML_NODES=N"):
        load_config_file(tmp_path / "bomb.yaml")
    (tmp_path / "deep.yaml").write_text("a: " + "{a: " * 40 + "1" + "}" * 40 + "\n")
    with pytest.raises(ConfigError, match=r"deep.yaml \(line 1\) is above the limit of 32 levels of nesting"):
        load_config_file(tmp_path / "deep.yaml")
    (tmp_path / "flow.yaml").write_text("[" * 200_000)
    with pytest.raises(ConfigError, match=r"flow.yaml (\(line 1\) is above the limit of 32 levels|is nested too deeply)"):
        load_config_file(tmp_path / "flow.yaml")
    (tmp_path / "big.yaml").write_text("pretrained: m\ndata: d\n# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match=r"config file .*big.yaml is above the limit of 1,048,576 bytes"):
        load_config_file(tmp_path / "big.yaml")
    # through the CLI: one line, exit 2 (no MemoryError from expanding `classes:`)
    code, _, err = cli(["compare", "--config", str(tmp_path / "bomb.yaml")], capsys, monkeypatch)
    assert code == 2 and "TRANSFERLAB_MAX_YAML_NODES" in one_error_line(err)
    # anchors and aliases of ordinary size still work
    (tmp_path / "ok.yaml").write_text("pretrained: m\ndata: d\ntrain: &t {epochs: 2}\nstrategies:\n"
                                      "  - {name: full, train: *t}\n")
    assert load_config_file(tmp_path / "ok.yaml")["strategies"][0]["train"] == {"epochs": 2}


def test_backbone_size_is_bounded_on_the_meta_device(capsys, monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match=r"backbone 'mlp' with options .*1000000000000000000000000000000.* cannot be "
                                          r"built \(.*Overflow.*\); use smaller sizes"):
        create_backbone("mlp", InputSpec("vector", (4,)), hidden=[10**30])
    with pytest.raises(ConfigError, match=r"is above the limit of 1,000,000,000 parameters of a backbone or head built "
                                          r"from options or a config.json \(asked for 1,000,006,000,000\).* "
                                          r"TRANSFERLAB_MAX_PARAMETERS=N"):
        create_backbone("mlp", InputSpec("vector", (4,)), hidden=[1_000_000, 1_000_000])
    from transferlab.models.head import build_head

    with pytest.raises(ConfigError, match=r"head \{.*\} is above the limit of 1,000,000,000 parameters .*asked for "
                                          r"12,000,000,000,000,000,000,000,000,000,003\)"):
        build_head(8, HeadSpec(3, hidden=[10**30]))
    code, _, err = cli(["pretrain", "--data", "digits", "--backbone", "mlp", "--hidden", str(10**30),
                        "--out", str(tmp_path / "m")], capsys, monkeypatch)
    line = one_error_line(err)
    assert code == 2 and "cannot be built" in line and "c10" not in err and "frame" not in err


def test_text_length_and_csv_field_size_are_bounded(tmp_path, monkeypatch):
    from transferlab.data import load_task

    rows = [{"text": f"short text {i}", "label": "ab"[i % 2]} for i in range(10)]
    rows[3]["text"] = "word " * 30_000
    (tmp_path / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"long.jsonl: line 4, key 'text' \(149,999 characters\) is above the limit of "
                                        r"100,000 characters of one text .* TRANSFERLAB_MAX_TEXT_CHARS=N"):
        load_task(str(tmp_path / "long.jsonl"))
    monkeypatch.setenv("TRANSFERLAB_MAX_TEXT_CHARS", "200000")
    assert load_task(str(tmp_path / "long.jsonl")).x_pool.dtype == object
    with open(tmp_path / "field.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], *([f"t {i}", "ab"[i % 2]] for i in range(9)),
                                 ["x" * (2 << 20), "a"]])
    with pytest.raises(DataError, match=r"field.csv: line 11 has a field above the limit of 131,072 characters of "
                                        r"one CSV field.* TRANSFERLAB_MAX_CSV_FIELD=N"):
        load_task(str(tmp_path / "field.csv"))
    monkeypatch.setenv("TRANSFERLAB_MAX_CSV_FIELD", str(4 << 20))  # raised: the text limit is next
    with pytest.raises(DataError, match=r"line 11, column 'text' \(2,097,152 characters\) is above the limit"):
        load_task(str(tmp_path / "field.csv"))


# ---- wrong input kind: checked before any work, one line naming both ----

def test_predict_refuses_inputs_of_the_wrong_kind(tmp_path, image_model, vector_model, tiny_bert_path, capsys,
                                                  monkeypatch):
    text_model = model_folder(tmp_path / "txt", InputSpec("text", ()), text_path=str(tiny_bert_path))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 4), np.float32))
    (tmp_path / "texts.txt").write_text("hello there\nwhat is this\n")
    (tmp_path / "texts.jsonl").write_text('{"text": "hello"}\n')
    (tmp_path / "texts.csv").write_text("text\nhello\n")
    (tmp_path / "five.csv").write_text("a,b,c,d,e\n1,2,3,4,5\n")
    cases = [
        (text_model, "one.png", r"one.png gives 1×8×8 image inputs but the model '.*txt' takes text"),
        (text_model, "x.npz", r"x.npz gives 4-feature vector inputs but the model '.*txt' takes text"),
        (image_model, "texts.txt", r"texts.txt gives text inputs but the model '.*img' expects 1×8×8 images; "
                                   r"a model for images cannot read text"),
        (image_model, "texts.jsonl", r"texts.jsonl gives text inputs but the model '.*img' expects 1×8×8 images"),
        (image_model, "texts.csv", r"texts.csv gives text inputs but the model '.*img' expects 1×8×8 images"),
        (image_model, "rgb.png", r"rgb.png gives 3×8×8 image inputs but the model '.*img' expects 1×8×8 images; "
                                 r"convert the images to grayscale"),
        (vector_model, "five.csv", r"five.csv has 5 features per example but this backbone expects 4"),
        (vector_model, "texts.txt", r"texts.txt gives text inputs but the model '.*vec' expects 4-feature vectors"),
    ]
    for model, inputs, message in cases:
        code, out, err = cli(["predict", str(model), str(tmp_path / inputs)], capsys, monkeypatch)
        assert code == 2 and out == "", (inputs, out)
        assert __import__("re").search(message, one_error_line(err)), err


# ---- tracebacks where a one-line error is due ----

def test_a_pixel_beyond_float32_is_refused_at_load_without_numpy_warnings(tmp_path, capsys, monkeypatch):
    from transferlab.data import load_task

    x = np.random.default_rng(0).random((40, 1, 8, 8))
    x[7, 0, 1, 2] = 1e39
    np.savez(tmp_path / "big.npz", x=x, y=np.arange(40) % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        with pytest.raises(DataError, match=r"big.npz: x\[7, 0, 1, 2\] is 1e\+39 \(row 7\); inputs must be finite "
                                            r"numbers within float32's range"):
            load_task(str(tmp_path / "big.npz"))
    code, _, err = cli(["pretrain", "--data", str(tmp_path / "big.npz"), "--backbone", "mlp", "--out",
                        str(tmp_path / "m")], capsys, monkeypatch)
    line = one_error_line(err)
    assert code == 2 and "x[7, 0, 1, 2] is 1e+39" in line and "Warning" not in err and "diverge" not in err


def test_a_duplicate_header_column_is_refused(tmp_path):
    from transferlab.data import load_task

    (tmp_path / "features.csv").write_text("a,label,b,label\n" + "".join(f"{i},{i % 2},{i},{i % 2}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"features.csv: line 1 \(header\) names column 'label' twice \(columns 2 and "
                                        r"4\); every column needs its own name"):
        load_task(str(tmp_path / "features.csv"))
    (tmp_path / "texts.csv").write_text("text,label,label\n" + "".join(f"t {i},{i % 2},{i % 2}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"texts.csv: line 1 \(header\) names column 'label' twice"):
        load_task(str(tmp_path / "texts.csv"))


def test_a_test_class_missing_from_training_is_refused(tmp_path, capsys, monkeypatch):
    from transferlab.data import load_task

    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    (tmp_path / "test.csv").write_text("text,label\nhello,a\nthere,c\nagain,c\n")
    with pytest.raises(DataError, match=r"class\(es\) 'c' \(2 test rows\) appear in the test data \(test.csv\) but not "
                                        r"in the training data; every class must have training examples"):
        load_task(str(tmp_path / "train.csv"), test_data=str(tmp_path / "test.csv"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "own.npz", x=rng.random((20, 4)), y=np.arange(20) % 2, x_test=rng.random((6, 4)),
             y_test=np.array([0, 1, 2, 2, 0, 1]))
    source = model_folder(tmp_path / "src", InputSpec("vector", (4,)), pretrained=True)
    for shots in ("1", "all"):  # neither "at most 0 shots" nor a run to test accuracy 0 with exit 0
        code, _, err = cli(["finetune", str(source), "--data", str(tmp_path / "own.npz"), "--shots", shots,
                            "--out", str(tmp_path / f"t{shots}")], capsys, monkeypatch)
        assert code == 2 and "'2' (2 test rows) appear in the test data (x_test) but not in the training data" in \
            one_error_line(err)


def test_export_leaves_nothing_in_the_user_cache(tmp_path, vector_model):
    pytest.importorskip("onnxruntime")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env_clean = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    res = subprocess.run([sys.executable, "-m", "transferlab", "export", str(vector_model), "--out",
                          str(tmp_path / "m.onnx")], env={**env_clean, **env,
                                                          "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m.onnx").is_file()
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []


# ---- the suite itself ----

def test_hypothesis_has_no_deadline_project_wide():
    from hypothesis import settings

    assert settings().deadline is None
