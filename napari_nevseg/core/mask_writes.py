"""The order that makes a saved mask crash-safe: history copy, then ``masks/``, then the row.

Both files are written atomically before the transaction that points to them commits, so a
process killed at any moment leaves either the old row with its file or the new row with its
file; at worst a mask file newer than its row, which the next open reconciles.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.convert import mask_to_uint8
from napari_nevseg.core.history import file_stamp, stamp_time
from napari_nevseg.core.image_io import encode_png
from napari_nevseg.core.records import Effort, ImageRecord, Status, now_utc

if TYPE_CHECKING:
    from napari_nevseg.core.project import Project

__all__ = ["MaskWrites", "REVIEW_COLUMNS"]

REVIEW_COLUMNS = ("status", "dice_prediction_vs_final", "reviewed_at", "reviewed_by",
                  "effort_seconds", "effort_strokes", "effort_clicks")


def copy_into(record: ImageRecord, new: ImageRecord) -> None:
    """Update the record the widgets hold (in place) once its row has committed."""
    for f in fields(record):
        setattr(record, f.name, getattr(new, f.name))


class MaskWrites:
    """Saving masks and statuses of one project."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def save(self, stem: str, binary: np.ndarray, status: Status, action: str, score: float | None,
             user: str | None, effort: Effort | None) -> ImageRecord:
        """Write ``binary`` as the image's mask, keep it in the history, then commit its row."""
        project, store, history = self.project, self.project.store, self.project.history_store
        record = project.records[stem]
        user = user if user is not None else project.user
        effort = effort or Effort()
        png = encode_png(mask_to_uint8(binary))
        mask_file = project.mask_path(stem)
        found = history.untracked(stem, mask_file)  # a mask the history does not hold: keep it first
        found_file = history.write_file(stem, mask_file.read_bytes()) if found else None
        version_file = history.write_file(stem, png)
        atomic_write_bytes(mask_file, png)
        stamp = file_stamp(mask_file)
        at = now_utc()
        new = replace(record, status=status, dice_prediction_vs_final=score, reviewed_at=at,
                      reviewed_by=user, effort=record.effort + effort)
        with store.transaction() as conn:
            if found is not None and found_file is not None:
                kept = record.status if record.status.reviewed else Status.ACCEPTED
                store.add_version(conn, stem, stamp_time(found), None, kept, "found on disk", found_file, found)
            store.add_version(conn, stem, at, user, status, action, version_file, stamp)
            store.update_image(conn, new, REVIEW_COLUMNS, mask_stamp=stamp)
            store.add_audit(conn, at, user, stem, action, {"status": status.value, "effort": asdict(effort)})
        copy_into(record, new)
        return record

    def mark(self, stem: str, status: Status, user: str | None, effort: Effort | None) -> ImageRecord:
        """Change the status only (one row and one audit line); the mask stays as it is."""
        project, store = self.project, self.project.store
        record = project.records[stem]
        user = user if user is not None else project.user
        effort = effort or Effort()
        at = now_utc()
        new = replace(record, status=status, reviewed_at=at, reviewed_by=user, effort=record.effort + effort)
        columns = ("status", "reviewed_at", "reviewed_by", "effort_seconds", "effort_strokes", "effort_clicks")
        with store.transaction() as conn:
            store.update_image(conn, new, columns)
            store.add_audit(conn, at, user, stem, f"marked {status.value}",
                            {"status": status.value, "was": record.status.value, "effort": asdict(effort)})
        copy_into(record, new)
        return record
