"""The run store: one SQLite file per comparison (`runs.sqlite`), one row per finished run.

A run is written in one transaction when it ends, so a killed comparison leaves only whole runs;
started again, it skips them. The comparison's config is stored too, and a different config for
the same folder is refused.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    strategy TEXT NOT NULL,
    shots TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (strategy, shots, seed)
);
"""


STORE = "runs.sqlite"  # the run store of a comparison folder

class RunStore:
    """Runs of one comparison in `path` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")  # a kill mid-write leaves the last committed state
        self._db.execute("PRAGMA synchronous=FULL")
        with self._db:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def finished(self) -> set[tuple[str, str, int]]:
        """(strategy label, shots, seed) of every finished run; shots as text ('5', 'all')."""
        rows = self._db.execute("SELECT strategy, shots, seed FROM runs WHERE status = 'finished'")
        return {(s, sh, int(seed)) for s, sh, seed in rows}

    def record(self, run: dict[str, Any]) -> None:
        """Write one run (a JSON-able dict with strategy, shots, seed, status) in one transaction."""
        key = (run["strategy"], str(run["shots"]), int(run["seed"]))
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO runs (strategy, shots, seed, status, record, finished_at) VALUES (?, ?, ?, ?, ?, ?)",
                (*key, run["status"], json.dumps(run, allow_nan=True), now),
            )

    def runs(self, status: str | None = "finished") -> list[dict[str, Any]]:
        """Stored runs (by default the finished ones), in insertion order."""
        query = "SELECT record FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY rowid"
        return [json.loads(r[0]) for r in self._db.execute(query, (status,) if status else ())]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
