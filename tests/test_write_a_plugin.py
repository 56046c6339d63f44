"""Adding a strategy or a backbone is one new file: the two files of docs/write-a-plugin.md, written into a
copy of the package, work through the CLI (their options as flags), the Python API, compare and the
conformance suite, with no other edit anywhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "write-a-plugin.md"


def page_files() -> dict[str, str]:
    """{relative path: code} of the blocks marked `<!-- file: PATH -->` on the docs page."""
    found = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    return dict(found)


@pytest.fixture(scope="module")
def plugged(tmp_path_factory) -> dict:
    import transferlab

    root = tmp_path_factory.mktemp("plugged")
    package = root / "transferlab"
    shutil.copytree(Path(transferlab.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    files = page_files()
    assert set(files) == {"strategies/shrink_head.py", "models/linear_net.py"}
    for rel, code in files.items():
        (package / rel).write_text(code)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.integers(0, 60, size=(60, 8, 8)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, c * 2 : c * 2 + 2] = 220
    np.savez(root / "data.npz", x=x, y=y)
    env = dict(os.environ, PYTHONPATH=str(root), TRANSFERLAB_HOME=str(root / "store"))
    return {"root": root, "env": env, "data": str(root / "data.npz")}


def _python(plugged, code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env=plugged["env"], cwd=plugged["root"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _cli(plugged, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "transferlab", *map(str, args)], capture_output=True, text=True,
                            env=plugged["env"], cwd=plugged["root"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_dropped_in_strategy_and_backbone_work_everywhere(plugged):
    root, data = plugged["root"], plugged["data"]
    assert _python(plugged, "import transferlab; print(transferlab.__file__)").startswith(str(root))
    strategies = {s["name"]: s for s in _cli(plugged, "strategies", "--json")["strategies"]}
    assert [o["flags"] for o in strategies["shrink-head"]["options"]] == [["--head-scale"], ["--smoothing"]]
    assert list(strategies)[-1] == "shrink-head"  # order=500: after the built-ins, whatever the import order
    backbones = {b["name"]: b for b in _cli(plugged, "backbones", "--json")["backbones"]}
    assert backbones["linear-net"]["options"] == {"width": 32}

    # CLI: the plug-ins' own options are flags
    pre = _cli(plugged, "pretrain", "--data", data, "--backbone", "linear-net", "--width", "12", "--epochs", "2",
               "--out", root / "lin", "--quiet", "--json")
    assert json.loads((root / "lin" / "config.json").read_text())["architecture"]["backbone"]["config"] == {"width": 12}
    ft = _cli(plugged, "finetune", root / "lin", "--data", data, "--strategy", "shrink-head", "--head-scale", "0.25",
              "--smoothing", "0.1", "--shots", "5", "--epochs", "2", "--out", root / "ft", "--json")
    assert ft["strategy"] == "shrink-head" and pre["epochs"] == 2
    assert json.loads((root / "ft" / "config.json").read_text())["training"]["strategy_options"] == \
        {"head_scale": 0.25, "smoothing": 0.1}
    result = subprocess.run([sys.executable, "-m", "transferlab", "finetune", str(root / "lin"), "--data", data,
                             "--strategy", "shrink-head", "--head-scale", "2"], capture_output=True, text=True,
                            env=plugged["env"], cwd=root)
    assert result.returncode == 2 and "--head-scale must be in (0, 1]; got 2.0" in result.stderr

    # Python API, and compare with the option as a flag
    out = _python(plugged, f"""
        import transferlab
        r = transferlab.finetune({str(root / 'lin')!r}, {data!r}, strategy="shrink-head",
                                 strategy_options={{"head_scale": 0.5}}, shots=5,
                                 train=transferlab.TrainConfig(epochs=2))
        print(r.strategy, r.test_accuracy is not None)
    """)
    assert out.split() == ["shrink-head", "True"]
    summary = _cli(plugged, "compare", root / "lin", "--data", data, "--strategies", "shrink-head", "--head-scale",
                   "0.25", "--shots", "5", "--seeds", "1", "--epochs", "2", "--out", root / "cmp", "--quiet", "--json")
    cells = {c["strategy"] for c in summary["summary"]["cells"]} if "summary" in summary else \
        {c["strategy"] for c in summary["cells"]}
    assert cells == {"scratch", "shrink-head"}


@pytest.mark.slow
def test_the_dropped_in_plugins_pass_the_conformance_suite(plugged):
    selection = ("shrink-head-linear-net or shrink-head-mlp or partial-linear-net or lp-ft-linear-net "
                 "or (json_contract and (linear-net or shrink-head))")
    result = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_conformance.py"), "-o", "addopts=",
                             "-q", "-p", "no:cacheprovider", "-k", selection], capture_output=True, text=True,
                            env=plugged["env"], cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b6 passed\b", result.stdout), result.stdout[-500:]
