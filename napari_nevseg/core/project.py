"""A project folder: ``images/``, ``masks/`` and the plugin's state in ``nevseg/``.

Layout (also in the README and written to ``nevseg/README.txt``)::

    project/
      images/<stem>.<ext>          the inputs (any readable image format)
      masks/<stem>.png             reviewed masks, 0/255, full size: the training set
      nevseg/project.sqlite        the state (SQLite): per image status, model, Dice, effort, who
                                   and when; every saved mask version; the audit trail; the fixed
                                   validation pool; fine-tune rounds
      nevseg/history/<stem>/       every mask version ever saved (0/255 PNG), restorable
      nevseg/predictions/<stem>.png  the model's mask as predicted (to measure corrections)
      nevseg/models/               model versions (v1.safetensors, ...) and registry.json
      nevseg/lock                  held while a process has the project open

Masks already in ``masks/`` when a folder is first opened count as accepted annotations. Every
file is written atomically, and a mask file before the row that points to it commits, so a crash
never leaves a half-written file or a row without its mask. Each change is one transaction that
touches one image's row: O(1) however large the project.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_nevseg.core.atomic import atomic_write_bytes, atomic_write_text
from napari_nevseg.core.errors import MaskError, NevsegError, NoPairsError, ProjectInUseError
from napari_nevseg.core.fs_kind import network_fs_type
from napari_nevseg.core.history import MaskHistory
from napari_nevseg.core.image_io import displayed_shape, read_image, read_mask, write_mask_png
from napari_nevseg.core.mask_writes import MaskWrites, copy_into
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.migrate import initialise, retire_state_json
from napari_nevseg.core.project_lock import ProjectLock
from napari_nevseg.core.readme import README
from napari_nevseg.core.reconcile import reconcile
from napari_nevseg.core.records import Effort, ImageRecord, MaskVersion, Status, now_utc
from napari_nevseg.core.store import SCHEMA_VERSION, ProjectStore

__all__ = ["Status", "Effort", "ImageRecord", "MaskVersion", "Project", "ProjectInUseError", "STATE_DIR",
           "grow_validation_pool"]

STATE_DIR = "nevseg"


def grow_validation_pool(pool: list[str], reviewed: list[str], trained: set[str], fraction: float = 0.2,
                         minimum: int = 1, seed: int = 0) -> list[str]:
    """The fixed validation pool grown to ``fraction`` of ``reviewed`` (at least ``minimum``):
    images already in it stay (those still reviewed), new ones come only from images never
    ``trained`` on, in a seeded order, and at least one reviewed image is left to train on."""
    pool = [s for s in pool if s in reviewed]
    target = max(minimum, round(fraction * len(reviewed))) if len(reviewed) >= 2 else 0
    candidates = [s for s in reviewed if s not in pool and s not in trained]
    random.Random(seed + len(pool)).shuffle(candidates)
    while len(pool) < target and candidates and len(reviewed) - len(pool) > 1:
        pool.append(candidates.pop())
    return pool
DATABASE = "project.sqlite"
_PREDICTION_COLUMNS = ("model_version", "model_hash", "uncertainty", "predicted_at", "status")


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


class Project:
    """An opened project folder; every change is saved at once. Call :meth:`close` when done."""

    def __init__(self, root: Path, store: ProjectStore, lock: ProjectLock, records: dict[str, ImageRecord]) -> None:
        self.root = root
        self.store = store
        self._lock = lock
        self.records = records
        self.validation: list[str] = [s for s in store.get_setting("validation", []) if s in records]
        self.rounds: list[dict[str, Any]] = store.rounds()
        self._pixel_size_mm: float | None = store.get_setting("pixel_size_mm")
        self.user: str | None = _os_user()  # recorded with every change; the widget may set a name
        self.history_store = MaskHistory(store, self.state_dir)
        self._writes = MaskWrites(self)
        # a project dropped without close() (a widget opening another) still frees its share of the lock
        self._finalizer = weakref.finalize(self, _release, store, lock)

    # -- folders ------------------------------------------------------------------------------
    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def database_path(self) -> Path:
        return self.state_dir / DATABASE

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    # -- opening and closing --------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Project:
        """Open (or start) a project; a folder of images without ``images/`` is not one.

        Raises :class:`ProjectInUseError` when another process has it open."""
        base = Path(root)
        if not base.is_dir():
            raise NoPairsError(f"{base} is not a folder")
        if not (base / "images").is_dir():
            raise NoPairsError(
                f"{base} has no images/ folder; a project folder holds images/ (inputs) and masks/"
            )
        base = base.resolve()
        images = base / "images"
        if not any(True for _ in _image_names(images)):
            raise NoPairsError(f"{images} holds no images (PNG, JPEG, BMP or TIFF)")
        state_dir = base / STATE_DIR
        lock = ProjectLock(state_dir / "lock", base)
        store = None
        try:
            store = ProjectStore(state_dir / DATABASE, network_fs_type(state_dir))
            schema = store.get_setting("schema")
            if schema is None:
                initialise(store, state_dir)
            elif schema > SCHEMA_VERSION:
                raise NevsegError(f"{store.path} was written by a newer napari-nevseg (state version "
                                  f"{schema}); update napari-nevseg to open this project")
            else:
                retire_state_json(state_dir)  # a migration interrupted after its commit
            records, stamps = store.load_images()
            records = reconcile(store, images, base / "masks", state_dir / "history", records, stamps)
            project = cls(base, store, lock, records)
            project._write_readme()
        except BaseException:
            if store is not None:
                store.close()
            lock.release()
            raise
        return project

    def close(self) -> None:
        """Release the database and the lock (a second call does nothing)."""
        self._finalizer()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write_readme(self) -> None:
        path = self.state_dir / "README.txt"
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != README:
            atomic_write_text(path, README)

    # -- settings -----------------------------------------------------------------------------
    @property
    def pixel_size_mm(self) -> float | None:
        return self._pixel_size_mm

    @pixel_size_mm.setter
    def pixel_size_mm(self, value: float | None) -> None:
        with self.store.transaction() as conn:
            self.store.put_setting(conn, "pixel_size_mm", value)
        self._pixel_size_mm = value

    def save(self) -> None:
        """Write the project-wide settings (pixel size, validation pool); records are always saved."""
        with self.store.transaction() as conn:
            self.store.put_setting(conn, "pixel_size_mm", self._pixel_size_mm)
            self.store.put_setting(conn, "validation", self.validation)

    # -- files --------------------------------------------------------------------------------
    @property
    def stems(self) -> list[str]:
        return list(self.records)

    def image_path(self, stem: str) -> Path:
        return self.images_dir / self.records[stem].file

    def mask_path(self, stem: str) -> Path:
        return self.masks_dir / f"{stem}.png"

    def prediction_path(self, stem: str) -> Path:
        return self.state_dir / "predictions" / f"{stem}.png"

    def image_shape(self, stem: str) -> tuple[int, int] | None:
        """``(H, W)`` of an image as displayed (EXIF rotation applied), read from its header
        only; None when the header cannot tell (TIFF stacks, damaged files)."""
        return displayed_shape(self.image_path(stem))

    def read_image(self, stem: str) -> np.ndarray:
        return read_image(self.image_path(stem))

    def read_mask(self, stem: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The reviewed mask, or None if there is none yet."""
        path = self.mask_path(stem)
        return read_mask(path, shape) if path.exists() else None

    def read_prediction(self, stem: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        path = self.prediction_path(stem)
        if not path.exists():
            return None
        try:
            return read_mask(path, shape)
        except MaskError:
            return None

    # -- predictions ------------------------------------------------------------------------------
    def write_prediction_file(self, stem: str, mask: np.ndarray) -> Path:
        """Encode and atomically write the predicted mask; touches no database, so a worker
        thread can do it and leave only :meth:`commit_prediction` to the main thread."""
        return write_mask_png(self.prediction_path(stem), mask)

    def write_encoded_prediction(self, stem: str, png: bytes) -> Path:
        """:meth:`write_prediction_file` for a mask another thread already encoded
        (``encode_png(mask_to_uint8(mask))``): the atomic write alone."""
        return atomic_write_bytes(self.prediction_path(stem), png)

    def commit_prediction(
        self, stem: str, model_version: str, uncertainty: float, model_hash: str | None = None
    ) -> ImageRecord:
        """Record a prediction whose file is written: one UPDATE of one row. An image a person
        decided on (reviewed, unusable, second opinion) keeps its status and mask."""
        record = self.records[stem]
        status = record.status if record.status.decided else Status.PREDICTED
        new = replace(record, model_version=model_version, model_hash=model_hash, uncertainty=float(uncertainty),
                      predicted_at=now_utc(), status=status)
        with self.store.transaction(synced=False) as conn:  # a lost prediction is predicted again
            self.store.update_image(conn, new, _PREDICTION_COLUMNS)
        copy_into(record, new)
        return record

    def record_prediction(
        self, stem: str, mask: np.ndarray, model_version: str, uncertainty: float, model_hash: str | None = None
    ) -> ImageRecord:
        """Store a fresh prediction: :meth:`write_prediction_file` then :meth:`commit_prediction`."""
        self.write_prediction_file(stem, mask)
        return self.commit_prediction(stem, model_version, uncertainty, model_hash)

    # -- review -----------------------------------------------------------------------------------
    def _checked_mask(self, stem: str, mask: np.ndarray) -> np.ndarray:
        binary = np.asarray(mask) > 0
        expected = self.image_shape(stem)
        if binary.ndim != 2 or (expected is not None and binary.shape != expected):
            raise MaskError(
                f"the mask for {stem} has shape {binary.shape} but its image is {expected}; "
                "a reviewed mask must have exactly the size of its image"
            )
        return binary

    def _dice_with_prediction(self, stem: str, binary: np.ndarray) -> float | None:
        predicted = self.read_prediction(stem, binary.shape)
        return None if predicted is None else round(dice(predicted, binary), 5)

    def review(self, stem: str, mask: np.ndarray, *, user: str | None = None,
               effort: Effort | None = None) -> ImageRecord:
        """Save the reviewed mask and update the record: ``accepted`` when it equals the
        prediction, ``corrected`` when the reviewer changed it (or there was none). The mask
        file is written before its row commits; the previous version stays in the history."""
        binary = self._checked_mask(stem, mask)
        predicted = self.read_prediction(stem, binary.shape)
        changed = predicted is None or bool(np.any(predicted != binary))
        score = None if predicted is None else round(dice(predicted, binary), 5)
        status = Status.CORRECTED if changed else Status.ACCEPTED
        return self._writes.save(stem, binary, status, "review", score, user, effort)

    def set_status(self, stem: str, status: Status | str, *, user: str | None = None,
                   effort: Effort | None = None) -> ImageRecord:
        """Mark an image. *No lesion* saves an empty mask (it is training data); *unusable* and
        *second opinion* keep the mask as it is and keep the image out of training."""
        status = Status(status)
        if status is Status.NO_LESION:
            shape = self.image_shape(stem) or self.read_image(stem).shape[:2]
            empty = np.zeros(shape, bool)
            return self._writes.save(stem, empty, status, "no lesion", self._dice_with_prediction(stem, empty),
                                     user, effort)
        if status.reviewed and not self.mask_path(stem).exists():
            raise MaskError(f"{stem} has no mask in masks/ to be {status.value}; review it with a mask first")
        return self._writes.mark(stem, status, user, effort)

    def history(self, stem: str) -> list[MaskVersion]:
        """Every saved version of the image's mask, newest first."""
        return self.history_store.versions(stem)

    def restore(self, stem: str, version_id: int, *, user: str | None = None) -> np.ndarray:
        """Put a stored version back in ``masks/`` (a new history entry; nothing is dropped)."""
        version = self.history_store.version(stem, version_id)
        binary = self._checked_mask(stem, read_mask(version.path))
        self._writes.save(stem, binary, version.status, f"restore of version {version_id}",
                          self._dice_with_prediction(stem, binary), user, None)
        return binary

    def audit(self, stem: str | None = None) -> list[dict[str, Any]]:
        """Who changed what and when (oldest first), for one image or the whole project."""
        return self.store.audit(stem)

    def log(self, action: str, detail: dict[str, Any] | None = None, *, stem: str | None = None,
            user: str | None = None) -> None:
        """Add a line to the audit trail (a fine-tune refused, an export, ...)."""
        with self.store.transaction() as conn:
            self.store.add_audit(conn, now_utc(), user or self.user, stem, action, detail)

    def version_counts(self) -> dict[str, int]:
        """How many mask versions each image has in the history."""
        return self.store.version_counts()

    def export(self, path: str | os.PathLike[str]) -> Path:
        """A human-readable copy of the state: CSV (one row per image) or JSON (everything)."""
        from napari_nevseg.core.export import export_project

        return export_project(self, path)

    # -- training data ------------------------------------------------------------------------------
    def training_stems(self) -> list[str]:
        """Images with a reviewed mask on disk; unusable and second-opinion images are left out."""
        return [s for s, r in self.records.items() if r.status.reviewed and self.mask_path(s).exists()]

    def ensure_validation(self, fraction: float = 0.2, minimum: int = 1, seed: int = 0) -> list[str]:
        """The fixed validation pool: chosen once from the reviewed images, then only grown.

        New reviewed images join it only to keep it at ``fraction`` of the reviewed set; images
        in it never leave, and training images never move into it.
        """
        pool = grow_validation_pool(self.validation, self.training_stems(), set(self._trained_stems()),
                                    fraction, minimum, seed)
        if pool != self.validation:
            with self.store.transaction() as conn:
                self.store.put_setting(conn, "validation", pool)
            self.validation = pool
        return list(pool)

    def _trained_stems(self) -> list[str]:
        return [s for r in self.rounds for s in r.get("train_images", [])]

    def add_round(self, entry: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            self.store.add_round(conn, entry)
            self.store.add_audit(conn, now_utc(), self.user, None, "fine-tune round",
                                 {"version": entry.get("version"), "parent": entry.get("parent")})
        self.rounds.append(entry)

    def correction_dice_by_version(self) -> dict[str, float]:
        """Mean Dice(prediction, final) of reviewed images, grouped by the model that predicted them."""
        groups: dict[str, list[float]] = {}
        for record in self.records.values():
            if record.status.reviewed and record.dice_prediction_vs_final is not None and record.model_version:
                groups.setdefault(record.model_version, []).append(record.dice_prediction_vs_final)

        def order(version: str) -> tuple:
            number = version[1:]
            return (version != "default", int(number) if number.isdigit() else float("inf"), version)

        return {k: float(np.mean(groups[k])) for k in sorted(groups, key=order)}

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for record in self.records.values():
            out[record.status.value] += 1
        return out


def _release(store: ProjectStore, lock: ProjectLock) -> None:
    with contextlib.suppress(Exception):
        store.close()
    lock.release()


def _image_names(folder: Path):
    from napari_nevseg.core.image_io import is_image_file

    with os.scandir(folder) as entries:
        for entry in entries:
            if is_image_file(entry.path):
                yield entry.name
