"""Every mask a project ever saved, kept so nothing a person made is unrecoverable.

Each saved version is a PNG under ``nevseg/history/<stem>/`` (written atomically before the row
that lists it commits) and a row in the ``mask_versions`` table. A mask file found in ``masks/``
that the history does not hold yet (one made outside the plugin, or there before the first open)
is copied in before it is overwritten.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from pathlib import Path

from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.errors import MaskError
from napari_nevseg.core.records import MaskVersion, Status
from napari_nevseg.core.store import ProjectStore

__all__ = ["MaskHistory", "file_stamp", "stamp_time"]


def file_stamp(path: Path) -> str | None:
    """``"mtime_ns:size"`` of a file, None when there is none: tells a file nevseg wrote from
    one changed since."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_mtime_ns}:{st.st_size}"


def stamp_time(stamp: str) -> str:
    """The modification time in a stamp as an ISO UTC time."""
    seconds = int(stamp.split(":")[0]) / 1e9
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat(timespec="seconds")


class MaskHistory:
    """The files and rows of one project's mask history."""

    def __init__(self, store: ProjectStore, state_dir: Path) -> None:
        self.store = store
        self.folder = state_dir / "history"

    def write_file(self, stem: str, png: bytes) -> str:
        """Store a version's PNG (atomically); returns its name relative to the history folder.

        A random part in the name keeps a version written by a process killed before its row
        committed from ever being mistaken for a later one."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        name = f"{stem}/{stamp}-{secrets.token_hex(4)}.png"
        atomic_write_bytes(self.folder / name, png)
        return name

    def untracked(self, stem: str, mask_file: Path) -> str | None:
        """The stamp of ``mask_file`` when the history does not hold it yet (else None)."""
        current = file_stamp(mask_file)
        if current is None or current == self.store.latest_version_stamp(stem):
            return None
        return current

    def versions(self, stem: str) -> list[MaskVersion]:
        """Newest first."""
        return [self._version(row) for row in self.store.versions(stem)]

    def version(self, stem: str, version_id: int) -> MaskVersion:
        for row in self.store.versions(stem):
            if row[0] == version_id:
                return self._version(row)
        raise MaskError(f"{stem} has no stored mask version {version_id}; choose one from its history")

    def _version(self, row: tuple) -> MaskVersion:
        version_id, stem, saved_at, user, status, action, file, _stamp = row
        return MaskVersion(version_id, stem, saved_at, user, Status(status), action, self.folder / file)
