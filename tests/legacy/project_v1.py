"""FROZEN COPY of napari_nevseg/core/project.py at commit 5d8b90b (state in nevseg/state.json),
kept verbatim so the migration test builds its project with the code that wrote such projects.
Do not edit or import it from the package.

A project folder: ``images/``, ``masks/`` and the plugin's state in ``nevseg/``.

Layout (also in the README and written to ``nevseg/README.txt``)::

    project/
      images/<stem>.<ext>          the inputs (any readable image format)
      masks/<stem>.png             reviewed masks, 0/255, full size: the training set
      nevseg/state.json            per image: status, model version, Dice(prediction, final),
                                   uncertainty, timestamps; the fixed validation pool; rounds
      nevseg/predictions/<stem>.png  the model's mask as predicted (to measure corrections)
      nevseg/models/               model versions (v1.safetensors, ...) and registry.json

Masks already in ``masks/`` when a folder is first opened count as accepted annotations.
Every file is written atomically, so a crash never leaves a half-written one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from napari_nevseg.core.atomic import atomic_write_text
from napari_nevseg.core.errors import MaskError, NevsegError, NoPairsError
from napari_nevseg.core.image_io import list_images, read_image, read_mask, write_mask_png
from napari_nevseg.core.metrics import dice

__all__ = ["Status", "ImageRecord", "Project", "STATE_DIR"]

STATE_DIR = "nevseg"
STATE_VERSION = 1
_README = """napari-nevseg project state (human-readable; safe to read, edit with care)

state.json        one record per image in ../images:
                    status        unreviewed | predicted | corrected | accepted
                    model_version the model that made the prediction
                    uncertainty   1 - soft Dice of the probabilities with their own mask (0 = sure)
                    dice_prediction_vs_final  how much the reviewer changed the prediction
                    predicted_at / reviewed_at  UTC timestamps
                  validation: images kept for validating fine-tunes (chosen once, never reshuffled)
                  rounds: per model version, the mean Dice(prediction, final) of images it predicted
predictions/      the masks as the model predicted them (0/255 PNG)
models/           fine-tuned model versions (.safetensors, metadata inside) and registry.json
../masks/         the reviewed masks (0/255 PNG, full size): a training set for `nevseg train`
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Status(str, Enum):
    UNREVIEWED = "unreviewed"
    PREDICTED = "predicted"
    CORRECTED = "corrected"
    ACCEPTED = "accepted"

    @property
    def reviewed(self) -> bool:
        return self in (Status.CORRECTED, Status.ACCEPTED)


@dataclass
class ImageRecord:
    """What the project knows about one image."""

    stem: str
    file: str
    status: Status = Status.UNREVIEWED
    model_version: str | None = None
    uncertainty: float | None = None
    dice_prediction_vs_final: float | None = None
    predicted_at: str | None = None
    reviewed_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["status"] = Status(known.get("status", "unreviewed"))
        return cls(**known)


@dataclass
class Project:
    """An opened project folder; every change is saved at once."""

    root: Path
    records: dict[str, ImageRecord] = field(default_factory=dict)
    validation: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    pixel_size_mm: float | None = None

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
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    # -- opening and saving -------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Project:
        """Open (or start) a project; a folder of images without ``images/`` is not one."""
        base = Path(root)
        if not base.is_dir():
            raise NoPairsError(f"{base} is not a folder")
        if not (base / "images").is_dir():
            raise NoPairsError(
                f"{base} has no images/ folder; a project folder holds images/ (inputs) and masks/"
            )
        project = cls(base.resolve())
        if project.state_file.exists():
            project._load_state()
        project._sync_with_disk()
        project.save()
        return project

    def _load_state(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NevsegError(
                f"{self.state_file} is unreadable ({exc}); move it away to start the review state afresh"
            ) from exc
        self.records = {r["stem"]: ImageRecord.from_json(r) for r in data.get("images", [])}
        self.validation = list(data.get("validation", []))
        self.rounds = list(data.get("rounds", []))
        self.pixel_size_mm = data.get("pixel_size_mm")

    def _sync_with_disk(self) -> None:
        files = {p.stem: p for p in list_images(self.images_dir)}
        if not files:
            raise NoPairsError(f"{self.images_dir} holds no images (PNG, JPEG, BMP or TIFF)")
        existing_masks = {p.stem for p in list_images(self.masks_dir)} if self.masks_dir.is_dir() else set()
        records = {}
        for stem, path in sorted(files.items()):
            record = self.records.get(stem) or ImageRecord(stem, path.name)
            record.file = path.name
            if stem in existing_masks and not record.status.reviewed:
                record.status = Status.ACCEPTED
                record.reviewed_at = record.reviewed_at or _now()
            records[stem] = record
        self.records = records
        self.validation = [s for s in self.validation if s in records]
        if not (self.state_dir / "README.txt").exists():
            atomic_write_text(self.state_dir / "README.txt", _README)

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        data = {
            "format": "napari-nevseg-project",
            "version": STATE_VERSION,
            "saved_at": _now(),
            "pixel_size_mm": self.pixel_size_mm,
            "validation": self.validation,
            "rounds": self.rounds,
            "images": [r.to_json() for r in self.records.values()],
        }
        atomic_write_text(self.state_file, json.dumps(data, indent=1))

    # -- files ---------------------------------------------------------------------------
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
        path = self.image_path(stem)
        if path.suffix.lower() in (".tif", ".tiff"):
            return None
        try:
            with Image.open(path) as image:
                w, h = image.size
                orientation = image.getexif().get(0x0112, 1)
        except (OSError, SyntaxError, ValueError):
            return None
        return (w, h) if orientation in (5, 6, 7, 8) else (h, w)

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

    # -- review actions --------------------------------------------------------------------
    def record_prediction(self, stem: str, mask: np.ndarray, model_version: str, uncertainty: float) -> None:
        """Store a fresh prediction; a reviewed image keeps its status and mask."""
        write_mask_png(self.prediction_path(stem), mask)
        record = self.records[stem]
        record.model_version = model_version
        record.uncertainty = float(uncertainty)
        record.predicted_at = _now()
        if not record.status.reviewed:
            record.status = Status.PREDICTED
        self.save()

    def review(self, stem: str, mask: np.ndarray) -> ImageRecord:
        """Write the reviewed mask at once and update the record: ``accepted`` when it equals
        the prediction, ``corrected`` when the reviewer changed it (or there was none)."""
        record = self.records[stem]
        binary = np.asarray(mask) > 0
        expected = self.image_shape(stem)
        if binary.ndim != 2 or (expected is not None and binary.shape != expected):
            raise MaskError(
                f"the mask for {stem} has shape {binary.shape} but its image is {expected}; "
                "a reviewed mask must have exactly the size of its image"
            )
        write_mask_png(self.mask_path(stem), binary)
        predicted = self.read_prediction(stem, binary.shape)
        changed = predicted is None or bool(np.any(predicted != binary))
        record.dice_prediction_vs_final = None if predicted is None else round(dice(predicted, binary), 5)
        record.status = Status.CORRECTED if changed else Status.ACCEPTED
        record.reviewed_at = _now()
        self.save()
        return record

    def training_stems(self) -> list[str]:
        """Images with a reviewed mask on disk."""
        return [s for s, r in self.records.items() if r.status.reviewed and self.mask_path(s).exists()]

    def ensure_validation(self, fraction: float = 0.2, minimum: int = 1, seed: int = 0) -> list[str]:
        """The fixed validation pool: chosen once from the reviewed images, then only grown.

        New reviewed images join it only to keep it at ``fraction`` of the reviewed set; images
        in it never leave, and training images never move into it.
        """
        reviewed = self.training_stems()
        pool = [s for s in self.validation if s in reviewed]
        target = max(minimum, round(fraction * len(reviewed))) if len(reviewed) >= 2 else 0
        trained_before = set(self._trained_stems())
        candidates = [s for s in reviewed if s not in pool and s not in trained_before]
        random.Random(seed + len(pool)).shuffle(candidates)
        while len(pool) < target and candidates and len(reviewed) - len(pool) > 1:
            pool.append(candidates.pop())
        if pool != self.validation:
            self.validation = pool
            self.save()
        return list(pool)

    def _trained_stems(self) -> list[str]:
        return [s for r in self.rounds for s in r.get("train_images", [])]

    def add_round(self, entry: dict[str, Any]) -> None:
        self.rounds.append(entry)
        self.save()

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
