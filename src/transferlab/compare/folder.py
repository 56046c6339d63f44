"""A comparison's --out folder: what compare writes there, and the check that it may write there."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .run_store import STORE

OUTPUTS = ("config.yaml", "results.csv", "summary.json", "report.html", "what_transferred.json")


def _is_comparison_store(path: Path) -> bool:
    """A runs.sqlite that compare wrote (read-only look: a meta table holding a config)."""
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone() is not None
        finally:
            db.close()
    except sqlite3.Error:
        return False


def claim_folder(out: str | Path) -> Path:
    """Check a comparison's --out before any work; returns the folder to write to.

    It must be new, empty, or hold only what compare wrote there (its manifest; a folder written by an
    older transferlab is recognised by its runs.sqlite, and only compare's own file names in it count
    as its). Anything else — a user's config.yaml, report.html, a model — is refused, never replaced.
    """
    from ..artifacts.ownership import foreign_entries, model_files, output_folder, read_manifest, record, refuse_foreign

    out = output_folder(out)
    if not out.exists():
        return out
    if model_files(out) is not None:
        raise ConfigError(f"--out {out} is a model folder; compare writes its runs and report into a folder of its "
                          "own — choose a new or empty folder")
    listed = None
    if read_manifest(out) is None and (out / STORE).is_file() and _is_comparison_store(out / STORE):
        listed = {STORE, f"{STORE}-wal", f"{STORE}-shm", f"{STORE}-journal", *OUTPUTS, "models", "checkpoints"}
        listed |= {f"models/{p.name}" for p in (out / "models").glob("*") if model_files(p) is not None}
        listed |= {f"checkpoints/{p.name}" for p in (out / "checkpoints").glob("*.pt") if p.is_file()}
    refuse_foreign(out, foreign_entries(out, listed), "compare --out",
                   "choose a new or empty folder for --out, or move those files away")
    if listed is not None:
        record(out, {p for p in listed if (out / p).exists()})  # an older comparison: adopt what it wrote
    return out
