"""SQLite persistence of jobs (standard library ``sqlite3``, WAL journal).

One connection shared by all threads behind a lock: the server writes a few
rows per second at most (progress is kept in memory and persisted only at stage
changes and about once a second), so one serialised connection is plenty and
keeps the transaction story simple.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    stage         TEXT NOT NULL,
    frames_done   INTEGER NOT NULL DEFAULT 0,
    frames_total  INTEGER NOT NULL DEFAULT 0,
    fps           REAL NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL,
    source_name   TEXT NOT NULL,
    source_kind   TEXT NOT NULL,      -- 'upload' | 'path'
    source_path   TEXT NOT NULL,      -- the file the worker reads
    options       TEXT NOT NULL,      -- JSON of ReconstructOptions fields
    summary       TEXT,               -- JSON, set when done
    resubmit_of   TEXT,
    seq           INTEGER NOT NULL    -- insertion order (newest first listing)
);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs(seq);
"""

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled", "interrupted")


def _create_private(path: Path) -> None:
    """Create the database file user-only (0600) before SQLite opens it; SQLite
    gives its -wal and -shm files the database file's mode."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if os.name == "posix":
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if p.exists():
                os.chmod(p, 0o600)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class JobRecord:
    """One row of ``jobs``; ``options`` and ``summary`` are decoded JSON."""

    id: str
    state: str
    stage: str
    frames_done: int
    frames_total: int
    fps: float
    error_code: Optional[str]
    error_message: Optional[str]
    created: str
    updated: str
    source_name: str
    source_kind: str
    source_path: str
    options: dict[str, Any]
    summary: Optional[dict[str, Any]] = None
    resubmit_of: Optional[str] = None
    seq: int = 0


_COLUMNS = (
    "id state stage frames_done frames_total fps error_code error_message created updated "
    "source_name source_kind source_path options summary resubmit_of seq"
).split()


def _row_to_record(row: sqlite3.Row) -> JobRecord:
    d = dict(zip(_COLUMNS, row))
    d["options"] = json.loads(d["options"])
    d["summary"] = json.loads(d["summary"]) if d["summary"] else None
    return JobRecord(**d)


class JobStore:
    """Jobs table access.  All methods are thread-safe."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; each statement is its own transaction,
        # and multi-statement changes use explicit BEGIN/COMMIT.
        _create_private(self.path)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes (WAL); only an OS crash
        # can lose the last transactions, which then look like unfinished jobs.
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, rec: JobRecord) -> None:
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            rec.seq = seq
            values = [getattr(rec, c) for c in _COLUMNS]
            values[_COLUMNS.index("options")] = json.dumps(rec.options)
            values[_COLUMNS.index("summary")] = json.dumps(rec.summary) if rec.summary is not None else None
            self._db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", values
            )

    def get(self, job_id: str) -> Optional[JobRecord]:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_record(row) if row else None

    def list(self, limit: int = 100) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY seq DESC LIMIT ?", (int(limit),)
            ).fetchall()
        return [_row_to_record(r) for r in rows]

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set columns of one job (``updated`` is set too); False when the job is gone."""
        if "summary" in fields and fields["summary"] is not None:
            fields["summary"] = json.dumps(fields["summary"])
        fields["updated"] = now_iso()
        bad = set(fields) - set(_COLUMNS)
        if bad:
            raise KeyError(f"unknown job columns {sorted(bad)}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            cur = self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))
        return cur.rowcount > 0

    def delete(self, job_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return cur.rowcount > 0

    def mark_interrupted(self, message: str) -> list[str]:
        """Turn every queued/running job into ``interrupted`` (called at start-up:
        whatever was active when the previous server stopped did not finish)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [r[0] for r in self._db.execute("SELECT id FROM jobs WHERE state IN ('queued', 'running')")]
                self._db.execute(
                    "UPDATE jobs SET state = 'interrupted', error_code = 'interrupted', error_message = ?, "
                    "updated = ? WHERE state IN ('queued', 'running')",
                    (message, now_iso()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def ids_in_state(self, *states: str) -> list[str]:
        with self._lock:
            q = f"SELECT id FROM jobs WHERE state IN ({', '.join('?' * len(states))})"
            return [r[0] for r in self._db.execute(q, states)]

    def all_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs")}
