"""Projects written before the SQLite store kept their state in ``nevseg/state.json``.

On the first open by this version its content is copied into the database in one transaction;
the file is then renamed ``state.json.migrated`` (kept, never deleted), so an interrupted
migration simply runs again and a finished one is never repeated.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_nevseg.core.errors import NevsegError
from napari_nevseg.core.records import ImageRecord, now_utc
from napari_nevseg.core.store import SCHEMA_VERSION, ProjectStore

__all__ = ["LegacyState", "read_state_json", "initialise", "retire_state_json", "STATE_JSON"]

STATE_JSON = "state.json"


@dataclass
class LegacyState:
    """What a ``state.json`` (format version 1) held."""

    records: dict[str, ImageRecord] = field(default_factory=dict)
    validation: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    pixel_size_mm: float | None = None
    saved_at: str | None = None


def read_state_json(path: Path) -> LegacyState:
    """Parse a state.json as version 1 wrote it; an unreadable one is reported, not guessed at."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = {r["stem"]: ImageRecord.from_json(r) for r in data.get("images", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NevsegError(
            f"{path} is unreadable ({exc}); move it away to start the review state afresh"
        ) from exc
    return LegacyState(records, list(data.get("validation", [])), list(data.get("rounds", [])),
                       data.get("pixel_size_mm"), data.get("saved_at"))


def initialise(store: ProjectStore, state_dir: Path) -> None:
    """Fill a new database: from ``state.json`` when there is one, else empty."""
    legacy_file = state_dir / STATE_JSON
    legacy = read_state_json(legacy_file) if legacy_file.exists() else None
    with store.transaction() as conn:
        if legacy is not None:
            store.insert_images(conn, legacy.records.values())
            store.put_setting(conn, "validation", legacy.validation)
            store.put_setting(conn, "pixel_size_mm", legacy.pixel_size_mm)
            for entry in legacy.rounds:
                store.add_round(conn, entry)
            store.add_audit(conn, now_utc(), None, None, "migrated from state.json",
                            {"images": len(legacy.records), "state_json_saved_at": legacy.saved_at})
        else:
            store.put_setting(conn, "validation", [])
            store.put_setting(conn, "pixel_size_mm", None)
        store.put_setting(conn, "schema", SCHEMA_VERSION)
    retire_state_json(state_dir)


def retire_state_json(state_dir: Path) -> Path | None:
    """Rename a migrated ``state.json`` out of the way (never over an earlier one)."""
    legacy_file = state_dir / STATE_JSON
    if not legacy_file.exists():
        return None
    target = state_dir / f"{STATE_JSON}.migrated"
    n = 1
    while target.exists():
        target = state_dir / f"{STATE_JSON}.migrated.{n}"
        n += 1
    os.replace(legacy_file, target)
    return target
