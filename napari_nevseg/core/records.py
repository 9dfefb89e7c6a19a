"""What a project knows about each image, as plain values (the store keeps them in SQLite)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["Status", "Effort", "ImageRecord", "MaskVersion", "now_utc"]


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Status(str, Enum):
    UNREVIEWED = "unreviewed"
    PREDICTED = "predicted"
    CORRECTED = "corrected"
    ACCEPTED = "accepted"
    NO_LESION = "no_lesion"
    UNUSABLE = "unusable"
    SECOND_OPINION = "second_opinion"

    @property
    def reviewed(self) -> bool:
        """A person settled the mask (it is training data): accepted, corrected or no lesion."""
        return self in (Status.CORRECTED, Status.ACCEPTED, Status.NO_LESION)

    @property
    def decided(self) -> bool:
        """Set by a person, so a new prediction never overrides it (reviewed, unusable or
        waiting for a second opinion)."""
        return self.reviewed or self in (Status.UNUSABLE, Status.SECOND_OPINION)


@dataclass(frozen=True)
class Effort:
    """What one review cost the person: seconds on screen, brush strokes, clicks."""

    seconds: float = 0.0
    strokes: int = 0
    clicks: int = 0

    def __add__(self, other: Effort) -> Effort:
        return Effort(self.seconds + other.seconds, self.strokes + other.strokes, self.clicks + other.clicks)


@dataclass
class ImageRecord:
    """What the project knows about one image."""

    stem: str
    file: str
    status: Status = Status.UNREVIEWED
    model_version: str | None = None
    model_hash: str | None = None
    uncertainty: float | None = None
    dice_prediction_vs_final: float | None = None
    predicted_at: str | None = None
    reviewed_at: str | None = None
    reviewed_by: str | None = None
    effort: Effort = field(default_factory=Effort)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["status"] = Status(known.get("status", "unreviewed"))
        if isinstance(known.get("effort"), dict):
            known["effort"] = Effort(**known["effort"])
        return cls(**known)


@dataclass(frozen=True)
class MaskVersion:
    """One stored version of an image's reviewed mask (``path``: its PNG in the history)."""

    id: int
    stem: str
    saved_at: str
    user: str | None
    status: Status
    action: str
    path: Path
