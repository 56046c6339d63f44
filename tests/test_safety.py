"""Nothing in transferlab can run code hidden in a file: no pickle, no torch.load without weights_only=True."""

import re
from pathlib import Path

SOURCES = sorted((Path(__file__).resolve().parents[1] / "src").rglob("*.py"))
UNPICKLE = re.compile(r"\b(pickle|cloudpickle|dill)\.loads?\(|\bjoblib\.load\(")


def unsafe_loads(paths: list[Path]) -> list[str]:
    """Lines that unpickle, or call torch.load without weights_only=True (comments ignored)."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if UNPICKLE.search(code) or ("torch.load(" in code and "weights_only=True" not in code):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def test_sources_never_unpickle():
    assert len(SOURCES) > 20
    assert unsafe_loads(SOURCES) == []


def test_the_check_catches_what_it_guards_against(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("state = torch.load(path)\nok = torch.load(path, weights_only=True)\nx = pickle.loads(data)\n"
                   "# torch.load(path) in a comment is fine\n")
    assert [h.split(":")[1] for h in unsafe_loads([bad])] == ["1", "3"]
