"""A human-readable copy of a project's state: JSON (everything) or CSV (one row per image)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_nevseg.core.atomic import atomic_write_text
from napari_nevseg.core.records import now_utc

if TYPE_CHECKING:
    from napari_nevseg.core.project import Project

__all__ = ["export_project", "CSV_COLUMNS"]

CSV_COLUMNS = (
    "stem", "file", "status", "model_version", "model_hash", "uncertainty", "dice_prediction_vs_final",
    "predicted_at", "reviewed_at", "reviewed_by", "effort_seconds", "effort_strokes", "effort_clicks",
    "mask_versions",
)


def _json(project: Project) -> str:
    data: dict[str, Any] = {
        "format": "napari-nevseg-project-export",
        "exported_at": now_utc(),
        "root": str(project.root),
        "pixel_size_mm": project.pixel_size_mm,
        "validation": project.validation,
        "rounds": project.rounds,
        "images": [r.to_json() for r in project.records.values()],
        "audit": project.audit(),
    }
    return json.dumps(data, indent=1)


def _csv(project: Project) -> str:
    counts = project.version_counts()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in project.records.values():
        writer.writerow([
            r.stem, r.file, r.status.value, r.model_version or "", r.model_hash or "",
            "" if r.uncertainty is None else round(r.uncertainty, 4),
            "" if r.dice_prediction_vs_final is None else round(r.dice_prediction_vs_final, 4),
            r.predicted_at or "", r.reviewed_at or "", r.reviewed_by or "",
            round(r.effort.seconds, 1), r.effort.strokes, r.effort.clicks, counts.get(r.stem, 0),
        ])
    return buffer.getvalue()


def export_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write the export; ``.csv`` gives one row per image, anything else JSON."""
    target = Path(path)
    text = _csv(project) if target.suffix.lower() == ".csv" else _json(project)
    return atomic_write_text(target, text)
