"""On opening, make the records agree with the folder: images added or removed, and mask files
deleted, added or changed outside the plugin since the project was last open.

Every fix is written in one transaction and recorded in the audit trail. A mask is never
overwritten here: a missing one sends its image back to the queue (its last version stays in the
history, restorable); a new or changed one counts as an accepted annotation made outside nevseg.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from napari_nevseg.core.image_io import IMAGE_SUFFIXES
from napari_nevseg.core.records import ImageRecord, Status, now_utc
from napari_nevseg.core.store import KEEP, ProjectStore

__all__ = ["reconcile"]

_KEEPS_STATUS = (Status.UNUSABLE, Status.SECOND_OPINION)  # a person's flag outlives a mask edit


@dataclass
class _Fixes:
    new: list[ImageRecord] = field(default_factory=list)
    updates: list[tuple[ImageRecord, tuple[str, ...], object]] = field(default_factory=list)
    audit: list[tuple[str, str, dict]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new or self.updates)


def _image_names(images_dir: Path) -> list[str]:
    """The image files in ``images_dir`` by name, sorted (as :func:`list_images`, minus the cost of
    a Path per file: it matters at 20,000 images)."""
    with os.scandir(images_dir) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".")
                      and e.name[e.name.rfind("."):].lower() in IMAGE_SUFFIXES and e.is_file())


def _mask_stamps(masks_dir: Path) -> dict[str, str]:
    """``stem -> "mtime_ns:size"`` of every ``<stem>.png`` in ``masks/`` (one directory scan)."""
    if not masks_dir.is_dir():
        return {}
    stamps = {}
    with os.scandir(masks_dir) as entries:
        for entry in entries:
            if entry.name.lower().endswith(".png") and not entry.name.startswith(".") and entry.is_file():
                st = entry.stat()
                stamps[entry.name[:-4]] = f"{st.st_mtime_ns}:{st.st_size}"
    return stamps


def _same_as_saved(store: ProjectStore, history_dir: Path, stem: str, mask_file: Path) -> bool:
    """True when the mask file holds exactly the last version nevseg saved (only touched, copied)."""
    saved = store.latest_version_file(stem)
    try:
        return saved is not None and (history_dir / saved).read_bytes() == mask_file.read_bytes()
    except OSError:
        return False


def _check_mask(record: ImageRecord, known: str | None, current: str | None, fixes: _Fixes,
                unchanged: Callable[[], bool]) -> None:
    from napari_nevseg.core.history import stamp_time

    if current is not None and current != known:
        if (known is None and record.status.decided) or (known is not None and unchanged()):
            fixes.updates.append((record, (), current))  # a mask state.json knew, or the same bytes
            return
        action = "mask found on disk" if known is None else "mask newer than its record"
        if record.status not in _KEEPS_STATUS:
            record.status = Status.ACCEPTED
        record.dice_prediction_vs_final = None
        record.reviewed_at = stamp_time(current)
        record.reviewed_by = None
        fixes.updates.append((record, ("status", "dice_prediction_vs_final", "reviewed_at", "reviewed_by"), current))
        note = "counted as an accepted annotation made outside nevseg (or a save cut short before its record)"
        fixes.audit.append((record.stem, action, {"status": record.status.value, "note": note}))
    elif current is None and (known is not None or record.status.reviewed):
        if record.status.reviewed:
            record.status = Status.PREDICTED if record.model_version else Status.UNREVIEWED
            record.dice_prediction_vs_final = None
        fixes.updates.append((record, ("status", "dice_prediction_vs_final"), None))
        fixes.audit.append((record.stem, "mask file missing", {"status": record.status.value,
                                                               "note": "earlier versions stay in the history"}))


def reconcile(store: ProjectStore, images_dir: Path, masks_dir: Path, history_dir: Path,
              records: dict[str, ImageRecord], stamps: dict[str, str | None]) -> dict[str, ImageRecord]:
    """The records of the images in ``images_dir`` (stem order), the store brought up to date.

    Rows of images no longer in the folder stay in the database (they come back with the image)."""
    masks = _mask_stamps(masks_dir)
    fixes = _Fixes()
    out: dict[str, ImageRecord] = {}
    files = {name[: name.rfind(".")]: name for name in _image_names(images_dir)}  # case0.png over .jpg
    for stem, name in sorted(files.items()):
        record = records.get(stem)
        if record is None:
            record = ImageRecord(stem, name)
            fixes.new.append(record)
        elif record.file != name:
            record.file = name
            fixes.updates.append((record, ("file",), KEEP))
        known, current = stamps.get(stem), masks.get(stem)
        if current != known or current is None and (known is not None or record.status.reviewed):
            _check_mask(record, known, current, fixes,
                        lambda s=stem: _same_as_saved(store, history_dir, s, masks_dir / f"{s}.png"))
        out[stem] = record
    if fixes:
        _write(store, fixes)
    return out


def _write(store: ProjectStore, fixes: _Fixes) -> None:
    at = now_utc()
    with store.transaction() as conn:
        store.insert_images(conn, fixes.new)
        for record, columns, stamp in fixes.updates:
            store.update_image(conn, record, columns, mask_stamp=stamp)
        for stem, action, detail in fixes.audit:
            store.add_audit(conn, at, None, stem, action, detail)
