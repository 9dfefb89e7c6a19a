"""What one click prediction needs and gives back, and the function a worker runs for it.

Qt-free and napari-free: the click tool copies everything on the main thread into a
:class:`ClickRequest`; the worker calls the core and returns a :class:`ClickResult`; the slot
on the main thread decides whether the result is still wanted (see ``click_tool``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_nevseg.core.clicks import check_clicks
from napari_nevseg.core.threads import torch_threads

#: ``(row0, col0, row1, col1)`` in image pixels
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ClickRequest:
    """One click set to predict: the base mask, the box (if any) and every current point.

    ``box_mask`` is the box's own prediction when an earlier request of the same set already
    made it (a box is predicted once; the clicks then refine its result)."""

    generation: int
    rgb: np.ndarray
    base: np.ndarray
    clicks: tuple[tuple[float, float, bool], ...]
    box: Box | None
    box_mask: np.ndarray | None
    threshold: float
    cleanup: Any


@dataclass(frozen=True)
class ClickResult:
    generation: int
    mask: np.ndarray
    box: Box | None
    box_mask: np.ndarray | None
    seconds: float


def predict_click_set(session: Any, request: ClickRequest, threads: int | None = None) -> ClickResult:
    """The mask of ``request``: the box predicted inside itself from the base, then the clicks
    from that (or from the base when there is no box). Runs in a worker thread, with ``threads``
    torch threads (None: the thread's own count)."""
    with torch_threads(threads):
        return _predict_click_set(session, request)


def _predict_click_set(session: Any, request: ClickRequest) -> ClickResult:
    start = time.perf_counter()
    prior, box_mask = request.base, request.box_mask
    if request.box is not None:
        if box_mask is None:
            box_mask = session.predict(request.rgb, request.threshold, request.cleanup,
                                       box=request.box, prior=request.base).mask
        prior = box_mask
    mask = prior
    if request.clicks:
        mask = session.predict(request.rgb, request.threshold, request.cleanup,
                               clicks=list(request.clicks), box=request.box, prior=prior).mask
    return ClickResult(request.generation, mask, request.box, box_mask, time.perf_counter() - start)


def clicks_in_image(points: np.ndarray, positive: np.ndarray, hw: tuple[int, int]) -> tuple[list, list[int]]:
    """``(row, col, positive)`` of the points inside an ``hw`` image (rounded as the core rounds),
    and the indices of those outside it."""
    inside, outside = [], []
    h, w = hw
    for i, ((row, col), pos) in enumerate(zip(np.asarray(points, float).reshape(-1, 2), positive, strict=True)):
        r, c = np.floor(row + 0.5), np.floor(col + 0.5)
        if np.isfinite(r) and np.isfinite(c) and 0 <= r < h and 0 <= c < w:
            inside.append((float(row), float(col), bool(pos)))
        else:
            outside.append(i)
    return inside, outside


def box_of(vertices: np.ndarray) -> Box:
    """The bounding box ``(row0, col0, row1, col1)`` of a rectangle's vertices."""
    v = np.asarray(vertices, float).reshape(-1, 2)
    return float(v[:, 0].min()), float(v[:, 1].min()), float(v[:, 0].max()), float(v[:, 1].max())


def box_in_image(box: Box | None, hw: tuple[int, int]) -> tuple[Box | None, bool]:
    """The set's box (None: no box), and False when the box lies wholly outside an ``hw`` image."""
    if box is None or (box[0] < hw[0] and box[1] < hw[1] and box[2] >= 0 and box[3] >= 0):
        return box, True
    return None, False


def same_work(a: ClickRequest, b: ClickRequest) -> bool:
    """Whether two requests ask for the same prediction, so a running one can stand for the
    other: the same image (its pixels are read once per image, so the same array), base, box
    and clicks on the same pixels as the core rounds them (napari adds a point where the button
    comes up, a fraction of a pixel from the press that started the prediction)."""
    hw = a.rgb.shape[:2]
    return (a.rgb is b.rgb and check_clicks(a.clicks, hw) == check_clicks(b.clicks, hw) and a.box == b.box
            and a.threshold == b.threshold and a.cleanup == b.cleanup
            and (a.base is b.base or np.array_equal(a.base, b.base)))
