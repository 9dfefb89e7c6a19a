"""The two halves of recording a prediction: the file (worker thread) and the row (main thread).

Kept apart so the GUI thread never encodes a PNG: a worker calls
:func:`write_prediction_file`, the slot calls :func:`commit_prediction`. Both use the project
store's own methods where it has them (``Project.write_prediction_file`` and
``Project.commit_prediction``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from napari_nevseg.core.project import ImageRecord, Project


def write_prediction_file(project: Project, stem: str, mask: np.ndarray) -> Path:
    """Encode and atomically write the predicted mask; safe in a worker (no project state)."""
    writer = getattr(project, "write_prediction_file", None)
    if writer is not None:
        return writer(stem, mask)
    from napari_nevseg.core.image_io import write_mask_png

    return write_mask_png(project.prediction_path(stem), mask)


def commit_prediction(project: Project, stem: str, version: str, uncertainty: float) -> ImageRecord:
    """Record a prediction whose file is already written (main thread)."""
    commit = getattr(project, "commit_prediction", None)
    if commit is not None:
        return commit(stem, version, uncertainty)
    from napari_nevseg.core.project import Status, _now

    record = project.records[stem]
    record.model_version = version
    record.uncertainty = float(uncertainty)
    record.predicted_at = _now()
    if not record.status.reviewed:
        record.status = Status.PREDICTED
    project.save()
    return record
