"""Saves survive SIGKILL: a model folder, a training checkpoint, a comparison's reports and a run-store row
are rewritten in a tight loop and the writer is killed at 20 random moments; after every kill the files
on disk load through the public loaders and pass their checksums — the previous version or the new one,
never a torn file — and what a killed writer left behind breaks nothing.

The writers are forked from one "zygote" process that imported torch once (this file run as a script),
so twenty kills cost seconds, not twenty interpreter starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

KINDS = ("model", "checkpoint", "report", "run_store")
KILLS = 20
STEP = 100_000  # versions written after kill i are i·STEP + 1, i·STEP + 2, …: each kill's writes are told apart
CKPT_CONFIG = {"run": "crash-test"}


# ---- the writer side: one version of each kind of file, written by transferlab's own save paths ----

def _model(version: int):
    from transferlab.data.task import InputSpec
    from transferlab.models import HeadSpec, TransferModel, create_backbone

    model = TransferModel(create_backbone("mlp", InputSpec("vector", (4,)), hidden=[8]), HeadSpec(3))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float(version))  # exact in float32 below 2**24
    return model


def _runs(version: int) -> list[dict]:
    history = [{"epoch": 1, "val_accuracy": 0.5, "elapsed_seconds": 1.0, "train_loss": 1.0}]
    return [{"strategy": "scratch", "shots": 1, "seed": seed, "status": "finished", "test_accuracy": 0.5,
             "macro_f1": 0.5, "val_accuracy": 0.5, "train_seconds": float(version), "history": history}
            for seed in range(2)]


def write_version(kind: str, folder: Path, version: int, store=None) -> None:
    """Write version `version` of one kind of file into `folder` (the real save path, overwriting)."""
    if kind == "model":
        from transferlab.artifacts import save_model_folder

        model = _model(version)
        save_model_folder(folder / "m", backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                          info={"label_names": ["a", "b", "c"], "metrics": {"version": version}}, overwrite=True)
    elif kind == "checkpoint":
        from transferlab.engine.checkpoint import LoopState, save_checkpoint

        model = _model(version)
        save_checkpoint(folder / "checkpoint.pt", config=CKPT_CONFIG, state=LoopState(epoch=version), model=model,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None,
                        order=torch.Generator().manual_seed(version))
    elif kind == "report":
        from transferlab.compare.outputs import write_outputs

        write_outputs(folder, _runs(version), {"pretrained": "p", "data": "d"})
    else:
        store.record({"strategy": "s", "shots": 1, "seed": version % 3, "status": "finished", "version": version,
                      "padding": "x" * 4000})


def _save_forever(kind: str, folder: Path, base: int) -> None:
    store = None
    if kind == "run_store":
        from transferlab.compare.run_store import RunStore

        store = RunStore(folder / "runs.sqlite")
    version = base
    while True:
        version += 1
        write_version(kind, folder, version, store)


def zygote() -> None:
    """Read `kind folder base` lines; fork a writer for each, report its pid, and reap it once it is killed."""
    torch.set_num_threads(1)
    import transferlab.artifacts  # noqa: F401 — everything the writers need, imported once before forking
    import transferlab.compare.outputs  # noqa: F401
    import transferlab.compare.run_store  # noqa: F401
    import transferlab.engine.checkpoint  # noqa: F401
    import transferlab.report  # noqa: F401

    warm = Path(tempfile.mkdtemp(prefix="crash-warm-"))  # first calls import more (torch._dynamo for an optimizer)
    from transferlab.compare.run_store import RunStore

    with RunStore(warm / "runs.sqlite") as store:
        for kind in KINDS:
            write_version(kind, warm, 1, store)
    shutil.rmtree(warm)
    print("ready", flush=True)
    for line in sys.stdin:
        kind, folder, base = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                _save_forever(kind, Path(folder), int(base))
            finally:
                os._exit(1)
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)


# ---- the checking side: load each kind through the public loaders, return the version on disk ----

def read_version(kind: str, folder: Path) -> int | set[int]:
    if kind == "model":
        import transferlab

        loaded = transferlab.load("m")  # by store name: the folder lives in $TRANSFERLAB_HOME; sha256 checked
        version = loaded.config["metrics"]["version"]
        assert all(torch.all(p == float(version)) for p in loaded.model.parameters()), "config and weights disagree"
        return version
    if kind == "checkpoint":
        from transferlab.engine.checkpoint import LoopState, load_checkpoint

        state, model = LoopState(), _model(0)
        load_checkpoint(folder / "checkpoint.pt", config=CKPT_CONFIG, state=state, model=model,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None, order=torch.Generator())
        assert all(torch.all(p == float(state.epoch)) for p in model.parameters()), "loop state and weights disagree"
        return state.epoch
    if kind == "report":
        import csv

        summary = json.loads((folder / "summary.json").read_text())
        rows = list(csv.DictReader((folder / "results.csv").open()))
        assert len(rows) == 2 and len({r["train_seconds"] for r in rows}) == 1, rows
        assert (folder / "report.html").read_text().rstrip().endswith("</html>")
        return {int(summary["cells"][0]["train_seconds_mean"]), int(float(rows[0]["train_seconds"]))}
    from transferlab.compare.run_store import RunStore

    with RunStore(folder / "runs.sqlite") as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = store.runs()
    assert len(runs) == 3 and all(r["version"] % 3 == r["seed"] and len(r["padding"]) == 4000 for r in runs)
    return {r["version"] for r in runs}


def _stamp(kind: str, folder: Path) -> tuple[int, int] | None:
    """Changes whenever a writer finishes a version (a renamed file or folder, a committed transaction)."""
    path = {"model": folder / "m", "checkpoint": folder / "checkpoint.pt", "report": folder / "summary.json",
            "run_store": folder / "runs.sqlite-wal"}[kind]
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _litter(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if ".tmp" in p.name or ".old-" in p.name)


def test_twenty_sigkills_during_saves_leave_loadable_files(tmp_path, isolated_store):
    folders = {"model": isolated_store, **{k: tmp_path / k for k in KINDS if k != "model"}}
    seen: dict[str, set[int]] = {}
    from transferlab.compare.run_store import RunStore

    for kind, folder in folders.items():  # version 0 of everything, written before any kill
        folder.mkdir(exist_ok=True)
        store = RunStore(folder / "runs.sqlite") if kind == "run_store" else None
        for v in range(3):
            write_version(kind, folder, v, store)
        if store is not None:
            store.close()
        got = read_version(kind, folder)
        seen[kind] = got if isinstance(got, set) else {got}
    rng = np.random.default_rng(20)
    schedule = list(KINDS) * (KILLS // len(KINDS))
    rng.shuffle(schedule)
    proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    mid_save = 0
    try:
        assert proc.stdout.readline().strip() == "ready"
        for i, kind in enumerate(schedule, start=1):
            base = i * STEP
            before = _stamp(kind, folders[kind])
            proc.stdin.write(f"{kind} {folders[kind]} {base}\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            deadline = time.monotonic() + 60
            while _stamp(kind, folders[kind]) == before and time.monotonic() < deadline:
                time.sleep(0.002)  # until the writer has finished one new version
            assert _stamp(kind, folders[kind]) != before, f"the {kind} writer made no progress"
            time.sleep(float(rng.uniform(0, 0.3)))  # then a random moment of its write loop
            if i % 2 == 0 and kind in ("model", "checkpoint"):  # half of these: the moment a temporary file exists
                deadline = time.monotonic() + 3
                while not _litter(folders[kind]) and time.monotonic() < deadline:
                    time.sleep(0.0002)  # yield the core: on a busy machine the writer needs it
            os.kill(pid, signal.SIGKILL)
            assert proc.stdout.readline().strip() == "reaped"
            mid_save += bool(_litter(folders[kind]))
            got = read_version(kind, folders[kind])
            versions = got if isinstance(got, set) else {got}
            for v in versions:  # the previous version, or one this writer wrote — nothing else exists
                assert v in seen[kind] or base < v < base + STEP, (kind, i, v, seen[kind])
            assert max(versions) > base, (kind, i, versions)  # it had finished at least one version
            seen[kind] = versions
    finally:
        proc.kill()
        proc.wait()
    from transferlab.artifacts import list_models

    for kind in KINDS:  # each kind was killed 5 times; all still load, at the last version seen
        got = read_version(kind, folders[kind])
        assert (got if isinstance(got, set) else {got}) == seen[kind]
    assert [m["name"] for m in list_models() if not m.get("packaged")] == ["m"]  # litter is never listed
    assert mid_save >= 1, "no kill landed while a temporary file existed; the test did not test mid-save kills"
    # the next save by a live writer removes what the killed writers left behind
    for kind, folder in folders.items():
        store = RunStore(folder / "runs.sqlite") if kind == "run_store" else None
        write_version(kind, folder, 10 * KILLS * STEP, store)
        if store is not None:
            store.close()
        assert _litter(folder) == [], kind


def test_replacing_a_model_folder_never_leaves_the_path_empty(tmp_path, monkeypatch):
    """At every rename of a save over an existing folder, the folder's path holds a complete version."""
    from transferlab.artifacts import files

    out = tmp_path / "m"

    def save(version: int) -> None:
        m = _model(version)
        from transferlab.artifacts import save_model_folder

        save_model_folder(out, backbone=m.backbone, head=m.head, head_spec=m.head_spec,
                          info={"label_names": ["a", "b", "c"], "metrics": {"version": version}}, overwrite=True)

    save(1)
    renames = []
    real_replace = os.replace

    def watched_replace(src, dst):
        real_replace(src, dst)
        renames.append((src, dst))
        from transferlab.artifacts import load_model_folder

        assert load_model_folder(out).config["metrics"]["version"] in (1, 2)  # never missing, never mixed

    monkeypatch.setattr(files.os, "replace", watched_replace)
    save(2)
    from transferlab.artifacts import load_model_folder

    assert load_model_folder(out).config["metrics"]["version"] == 2
    if sys.platform.startswith("linux"):
        assert renames == []  # one atomic swap (renameat2 RENAME_EXCHANGE), no two-step rename


def test_fallback_without_an_atomic_swap_still_replaces(tmp_path, monkeypatch):
    """Where the system cannot swap two folders, the old one is moved aside and removed after the rename."""
    from transferlab.artifacts import files, load_model_folder, save_model_folder

    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    for version in (1, 2):
        m = _model(version)
        save_model_folder(tmp_path / "m", backbone=m.backbone, head=m.head, head_spec=m.head_spec,
                          info={"label_names": ["a", "b", "c"], "metrics": {"version": version}}, overwrite=True)
    assert load_model_folder(tmp_path / "m").config["metrics"]["version"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_litter_of_a_live_writer_is_kept(tmp_path):
    """Only a dead writer's temporary files are removed: a live process's are in use."""
    from transferlab.artifacts.files import remove_stale

    live = tmp_path / f".c.pt.{os.getpid()}.abc.tmp"
    dead_pid = 2**22 + 12345  # above the default pid_max of 4194304: no such process
    dead = tmp_path / f".c.pt.{dead_pid}.abc.tmp"
    other = tmp_path / f".d.pt.{dead_pid}.abc.tmp"  # another file's litter is not this file's business
    for p in (live, dead, other):
        p.write_bytes(b"x")
    remove_stale(tmp_path / "c.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


if __name__ == "__main__":
    zygote()
