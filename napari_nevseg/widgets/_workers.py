"""Generator functions that run in napari thread workers: they call the core and yield
small results; they never touch layers (the slots on the main thread do that)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Predicted:
    """One finished prediction (``error`` set instead when the image could not be used)."""

    key: Any
    shape: tuple[int, int]
    mask: np.ndarray | None = None
    probability: np.ndarray | None = None
    uncertainty: float = float("nan")
    version: str = ""
    error: str | None = None
    #: the model's content hash, so the project records which model made the mask
    model_hash: str | None = None
    notes: tuple[str, ...] = ()


def load_session(spec: str, device: str = "auto"):
    """Import torch and load a model (slow the first time: run it in a worker).

    Returns the session, or a :class:`LoadFailed` that says why the model cannot be used (the
    widget shows it as a one-line notification, not a traceback).
    """
    # Import what predictions and measurements use here, once, before any other worker can
    # run: two threads importing scipy.spatial for the first time at once can fail with a
    # circular-import error (seen with a predict worker and the measure panel).
    import napari_nevseg.core.measure  # noqa: F401
    import napari_nevseg.core.postprocess  # noqa: F401
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.session import ModelSession

    try:
        return ModelSession.load(spec, device)
    except (NevsegError, ValueError) as exc:
        return LoadFailed(str(exc))


#: set once the fine-tune path's one-off imports are done (scripts wait on it before measuring)
TRAINING_WARM = threading.Event()


def warm_up_training() -> None:
    """Do the first training step's one-off imports off the GUI thread (see training.warm_up)."""
    from napari_nevseg.core.training import warm_up

    try:
        warm_up()
    finally:
        TRAINING_WARM.set()


@dataclass(frozen=True)
class LoadFailed:
    """Why a model could not be loaded (a returned Exception would be re-raised by the worker)."""

    message: str


def predict_arrays(session, jobs: Sequence[tuple[Any, np.ndarray]], threshold, cleanup, probability: bool) -> Iterator[Predicted]:
    """Predict images already in memory (copies taken on the main thread)."""
    for key, rgb in jobs:
        notes: list[str] = []
        pred = session.predict(rgb, threshold, cleanup, probability, notes.append)
        yield Predicted(key, rgb.shape[:2], pred.mask, pred.probability, pred.uncertainty,
                        session.version, notes=tuple(notes), model_hash=session.content_hash)


def predict_project(session, project, project_paths: Sequence[tuple[str, Any]], threshold, cleanup) -> Iterator[Predicted]:
    """Read, predict and write the prediction file of project images, one yield per image
    (the GUI thread then only commits the record: no PNG encoding there)."""
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import read_image

    for stem, path in project_paths:
        try:
            rgb = read_image(path)
        except NevsegError as exc:
            yield Predicted(stem, (0, 0), error=str(exc))
            continue
        notes: list[str] = []
        pred = session.predict(rgb, threshold, cleanup, False, notes.append)
        try:
            project.write_prediction_file(stem, pred.mask)
        except NevsegError as exc:
            yield Predicted(stem, rgb.shape[:2], error=f"{exc} (prediction of {stem} not saved)")
            continue
        yield Predicted(stem, rgb.shape[:2], pred.mask, None, pred.uncertainty, session.version,
                        notes=tuple(notes), model_hash=session.content_hash)
