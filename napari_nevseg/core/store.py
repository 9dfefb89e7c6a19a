"""The project's state in SQLite (``nevseg/project.sqlite``): one row per image, one transaction
per change, so a change costs the same in a project of 20 images or 20,000.

Durability: the database is opened in WAL mode with ``synchronous=FULL`` (each commit is on disk
when it returns; a process killed at any moment leaves the last committed state). On a network
file system WAL is unsafe (its shared-memory index is per machine), so there the classic rollback
journal (``journal_mode=DELETE``) is used instead; see :mod:`napari_nevseg.core.fs_kind`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from napari_nevseg.core.errors import NevsegError
from napari_nevseg.core.records import Effort, ImageRecord, Status

__all__ = ["ProjectStore", "SCHEMA_VERSION", "IMAGE_COLUMNS"]

SCHEMA_VERSION = 2  # state.json was version 1
KEEP = object()  # update_image: leave the mask stamp as it is

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    stem TEXT PRIMARY KEY, file TEXT NOT NULL, status TEXT NOT NULL,
    model_version TEXT, model_hash TEXT, uncertainty REAL, dice_prediction_vs_final REAL,
    predicted_at TEXT, reviewed_at TEXT, reviewed_by TEXT,
    effort_seconds REAL NOT NULL DEFAULT 0, effort_strokes INTEGER NOT NULL DEFAULT 0,
    effort_clicks INTEGER NOT NULL DEFAULT 0,
    mask_stamp TEXT  -- "mtime_ns:size" of masks/<stem>.png as last written or seen by nevseg
);
CREATE TABLE IF NOT EXISTS rounds (id INTEGER PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mask_versions (
    id INTEGER PRIMARY KEY, stem TEXT NOT NULL, saved_at TEXT NOT NULL, user TEXT,
    status TEXT NOT NULL, action TEXT NOT NULL, file TEXT NOT NULL, mask_stamp TEXT
);
CREATE INDEX IF NOT EXISTS mask_versions_by_stem ON mask_versions (stem, id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT, stem TEXT, action TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_stem ON audit (stem, id);
"""

IMAGE_COLUMNS = (
    "stem", "file", "status", "model_version", "model_hash", "uncertainty", "dice_prediction_vs_final",
    "predicted_at", "reviewed_at", "reviewed_by", "effort_seconds", "effort_strokes", "effort_clicks",
)


def _row(record: ImageRecord) -> tuple:
    e = record.effort
    return (record.stem, record.file, record.status.value, record.model_version, record.model_hash,
            record.uncertainty, record.dice_prediction_vs_final, record.predicted_at, record.reviewed_at,
            record.reviewed_by, e.seconds, e.strokes, e.clicks)


def _record(row: tuple) -> ImageRecord:
    (stem, file, status, version, model_hash, uncertainty, dice_value, predicted_at, reviewed_at,
     reviewed_by, seconds, strokes, clicks) = row
    return ImageRecord(stem, file, Status(status), version, model_hash, uncertainty, dice_value,
                       predicted_at, reviewed_at, reviewed_by, Effort(seconds, strokes, clicks))


class ProjectStore:
    """A connection to one project's database; every write goes through :meth:`transaction`."""

    def __init__(self, path: Path, network_fs: str | None = None) -> None:
        self.path = path
        self.journal_mode = "DELETE" if network_fs else "WAL"
        self._lock = threading.RLock()  # the GUI thread and workers may both call in
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            mode = self.conn.execute(f"PRAGMA journal_mode={self.journal_mode}").fetchone()[0]
            self.journal_mode = str(mode).upper()  # what SQLite could set, not only what was asked
            self.conn.execute("PRAGMA synchronous=FULL")
            with self.transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self.conn.close()
            raise NevsegError(
                f"{path} is unreadable ({exc}); move it away to start the review state afresh "
                "(masks/ keeps every reviewed mask)"
            ) from exc

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback`` with every SQL statement run (None stops): lets a test count them."""
        self.conn.set_trace_callback(callback)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: everything inside commits together or not at all."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- settings and rounds ---------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put_setting(self, conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def rounds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r[0]) for r in self.conn.execute("SELECT entry FROM rounds ORDER BY id")]

    def add_round(self, conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
        conn.execute("INSERT INTO rounds (entry) VALUES (?)", (json.dumps(entry),))

    # -- images ------------------------------------------------------------------------------
    def load_images(self) -> tuple[dict[str, ImageRecord], dict[str, str | None]]:
        """Every image row (in stem order) and each one's mask stamp."""
        columns = ", ".join(IMAGE_COLUMNS)
        with self._lock:
            rows = self.conn.execute(f"SELECT {columns}, mask_stamp FROM images ORDER BY stem").fetchall()
        records = {row[0]: _record(row[:-1]) for row in rows}
        return records, {row[0]: row[-1] for row in rows}

    def insert_images(self, conn: sqlite3.Connection, records: Iterable[ImageRecord]) -> None:
        marks = ", ".join("?" * len(IMAGE_COLUMNS))
        conn.executemany(f"INSERT OR REPLACE INTO images ({', '.join(IMAGE_COLUMNS)}) VALUES ({marks})",
                         (_row(r) for r in records))

    def update_image(self, conn: sqlite3.Connection, record: ImageRecord, columns: Iterable[str],
                     mask_stamp: object = KEEP) -> None:
        """One UPDATE of the named columns of ``record``'s row (and its mask stamp when given)."""
        values = dict(zip(IMAGE_COLUMNS, _row(record), strict=True))
        names = list(columns)
        params = [values[c] for c in names]
        if mask_stamp is not KEEP:
            names.append("mask_stamp")
            params.append(mask_stamp)
        assignments = ", ".join(f"{c} = ?" for c in names)
        conn.execute(f"UPDATE images SET {assignments} WHERE stem = ?", (*params, record.stem))

    def set_mask_stamps(self, conn: sqlite3.Connection, stamps: Iterable[tuple[str | None, str]]) -> None:
        conn.executemany("UPDATE images SET mask_stamp = ? WHERE stem = ?", stamps)

    # -- mask history and audit ----------------------------------------------------------------
    def add_version(self, conn: sqlite3.Connection, stem: str, saved_at: str, user: str | None,
                    status: Status, action: str, file: str, mask_stamp: str | None) -> int:
        cursor = conn.execute(
            "INSERT INTO mask_versions (stem, saved_at, user, status, action, file, mask_stamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (stem, saved_at, user, status.value, action, file, mask_stamp))
        return int(cursor.lastrowid)

    def versions(self, stem: str) -> list[tuple]:
        """``(id, stem, saved_at, user, status, action, file, mask_stamp)``, newest first."""
        with self._lock:
            return self.conn.execute(
                "SELECT id, stem, saved_at, user, status, action, file, mask_stamp FROM mask_versions "
                "WHERE stem = ? ORDER BY id DESC", (stem,)).fetchall()

    def latest_version_stamp(self, stem: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT mask_stamp FROM mask_versions WHERE stem = ? ORDER BY id DESC "
                                    "LIMIT 1", (stem,)).fetchone()
        return None if row is None else row[0]

    def version_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.conn.execute("SELECT stem, COUNT(*) FROM mask_versions GROUP BY stem").fetchall())

    def latest_version_file(self, stem: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT file FROM mask_versions WHERE stem = ? ORDER BY id DESC LIMIT 1",
                                    (stem,)).fetchone()
        return None if row is None else row[0]

    def add_audit(self, conn: sqlite3.Connection, at: str, user: str | None, stem: str | None, action: str,
                  detail: dict[str, Any] | None = None) -> None:
        conn.execute("INSERT INTO audit (at, user, stem, action, detail) VALUES (?, ?, ?, ?, ?)",
                     (at, user, stem, action, None if detail is None else json.dumps(detail)))

    def audit(self, stem: str | None = None) -> list[dict[str, Any]]:
        """The audit trail (oldest first), of one image or of the whole project."""
        query = "SELECT at, user, stem, action, detail FROM audit"
        with self._lock:
            rows = (self.conn.execute(query + " WHERE stem = ? ORDER BY id", (stem,)) if stem is not None
                    else self.conn.execute(query + " ORDER BY id")).fetchall()
        return [{"at": at, "user": user, "stem": s, "action": action,
                 "detail": None if detail is None else json.loads(detail)} for at, user, s, action, detail in rows]
