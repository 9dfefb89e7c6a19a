"""Generator functions that run in napari thread workers: they call the core and yield
small results; they never touch layers (the slots on the main thread do that)."""

from __future__ import annotations

import itertools
import logging
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
        session = ModelSession.load(spec, device)
    except (NevsegError, ValueError) as exc:
        return LoadFailed(str(exc))
    if session.supports_clicks:
        warm_clicks(session)
    return session


def warm_clicks(session) -> None:
    """Trace the click path's network ahead of the first click (a third of a second on 2 cores;
    in a worker). A failure here only means the first click pays for it: never a failed load."""
    try:
        session.warm_clicks()
    except Exception:  # noqa: BLE001 (an ahead-of-time nicety; the click itself reports real errors)
        logging.getLogger(__name__).warning("preparing the click path failed", exc_info=True)


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


def predict_project(
    session, project, stems: Sequence[str], threshold, cleanup, batch_size: int = 8, workers: int = 2
) -> Iterator[Predicted]:
    """Read, predict and write the prediction file of the project images ``stems``, one yield
    per image, in order (the GUI thread then only commits the record: no PNG encoding there,
    and no path built for each of thousands of images before the first one starts).

    The stages of ``nevseg predict`` (:mod:`napari_nevseg.core.pipeline`), so a folder goes as
    fast here as on the command line: a small pool decodes the next images while the network
    runs on batches, and the same pool upsamples, cleans and PNG-encodes the masks. The file
    itself is written here, just before its image is yielded, so a run stopped between two
    yields leaves no prediction file that its record does not know of.
    """
    from concurrent.futures import ThreadPoolExecutor

    from napari_nevseg.core.pipeline import map_ahead

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="nevseg-predict")
    try:
        paths = (project.image_path(stem) for stem in stems)
        decoded = zip(stems, map_ahead(pool, _read_or_error, paths, max(1, workers) + batch_size), strict=True)
        while chunk := list(itertools.islice(decoded, batch_size)):
            yield from _predict_chunk(session, project, pool, chunk, threshold, cleanup)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _read_or_error(path):
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import read_image

    try:
        return read_image(path)
    except NevsegError as exc:
        return exc


def _low_res(session, rgbs: list[np.ndarray], notes: list[str]) -> list:
    """The network's output for ``rgbs`` (each first pass with its second look), as many
    images per hold of the lock as :meth:`ModelSession.bulk_pass` allows (the click tool shares
    the session: while a person clicks, a click waits for two images at most, not a whole
    batch)."""
    lows: list = []
    looks: list = []
    while len(lows) < len(rgbs):
        step = session.bulk_pass(len(rgbs) - len(lows))
        part = rgbs[len(lows) : len(lows) + step]
        with session.lock:
            part_lows = session.predictor.low_res_with_fallback(part, notes.append)
            looks += session.predictor.look_again(part, part_lows)  # a network pass too: under the lock
        lows += part_lows
    return list(zip(lows, looks, strict=True))


def _predict_chunk(session, project, pool, chunk: list[tuple[str, Any]], threshold, cleanup) -> Iterator[Predicted]:
    """One batch through the network, each mask finished and encoded in the pool, then
    written and yielded in order."""
    from napari_nevseg.core.convert import mask_to_uint8
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import encode_png

    notes: list[str] = []
    images = [(stem, rgb) for stem, rgb in chunk if not isinstance(rgb, NevsegError)]
    lows = _low_res(session, [rgb for _, rgb in images], notes) if images else []
    predictor = session.predictor

    def finish(rgb: np.ndarray, passes):
        low, look = passes  # the first pass and its second look (or None)
        pred = predictor.finish(low, rgb.shape[:2], threshold, cleanup, look=look)
        return pred, encode_png(mask_to_uint8(pred.mask))

    finished = {stem: pool.submit(finish, rgb, passes) for (stem, rgb), passes in zip(images, lows, strict=True)}
    for stem, rgb in chunk:
        if isinstance(rgb, NevsegError):
            yield Predicted(stem, (0, 0), error=str(rgb))
            continue
        pred, png = finished[stem].result()
        try:
            project.write_encoded_prediction(stem, png)
        except NevsegError as exc:
            yield Predicted(stem, rgb.shape[:2], error=f"{exc} (prediction of {stem} not saved)")
            continue
        said, notes = tuple(notes), []  # a fallback is told once, with the first image after it
        yield Predicted(stem, rgb.shape[:2], pred.mask, None, pred.uncertainty, session.version,
                        notes=said, model_hash=session.content_hash)
