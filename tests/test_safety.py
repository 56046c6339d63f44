"""Nothing in transferlab can run code hidden in a file: no pickle, no torch.load without weights_only=True."""

import re
from pathlib import Path

SOURCES = sorted((Path(__file__).resolve().parents[1] / "src").rglob("*.py"))


def test_sources_never_unpickle():
    assert SOURCES
    offenders = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\bpickle\.loads?\(|\bcloudpickle\.loads?\(|\bjoblib\.load\(", code):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
            if re.search(r"torch\.load\(", code) and "weights_only=True" not in code:
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_the_check_catches_what_it_guards_against(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nstate = torch.load(path)\nimport pickle\nx = pickle.loads(data)\n")
    lines = bad.read_text().splitlines()
    hits = [ln for ln in lines if re.search(r"torch\.load\(", ln) and "weights_only=True" not in ln]
    hits += [ln for ln in lines if re.search(r"\bpickle\.loads?\(", ln)]
    assert len(hits) == 2
