"""The click evaluation protocol: how many clicks a simulated annotator needs.

The annotator starts from the automatic mask; each click goes to the pixel deepest inside
(largest distance to the region's border) whichever error, missed lesion or extra skin, is
deeper: positive on missed lesion, negative on extra (:func:`~napari_nevseg.core.clicks.next_click`).
It keeps clicking until the IoU reaches 0.90 and at least 5 clicks are made (so the IoU after 1,
3 and 5 clicks is measured on every image), or ``max_clicks`` are spent; after stopping, the
mask stays as it is.

Scores (as the interactive-segmentation literature reports them, RITM and after): NoC@85 and
NoC@90, the mean number of clicks until the IoU first reaches 0.85 / 0.90 (0 where the
automatic mask already does, ``max_clicks`` where it never does); the failure rate, the share of
images that never reach 0.90; the mean IoU after 1, 3 and 5 clicks; milliseconds per click; and
the same by lesion size (under 2%, 2-10%, over 10% of the image).

The brush baseline paints instead: each click stamps a disk of radius diag/64 (lesion on a
positive click, skin on a negative one) on the mask.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_nevseg.core.clicks import Click, next_click
from napari_nevseg.core.metrics import jaccard

__all__ = [
    "ClickCurve", "SIZE_BINS", "click_curve", "model_corrector", "brush_corrector", "summarise", "evaluate_clicks",
]

#: lesion size bins: (name, lowest share of the image, highest share)
SIZE_BINS = (("under 2%", 0.0, 0.02), ("2-10%", 0.02, 0.10), ("over 10%", 0.10, 1.01))
_MIN_CLICKS = 5
_TARGET = 0.90

#: ``corrector(clicks so far, current mask) -> new mask``
Corrector = Callable[[list[Click], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ClickCurve:
    """One image: ``ious[k]`` after ``k`` clicks (``ious[0]``: the automatic mask)."""

    stem: str
    lesion_fraction: float
    ious: tuple[float, ...]
    seconds_per_click: tuple[float, ...]

    def clicks_to(self, target: float, max_clicks: int) -> int:
        """Clicks until the IoU first reaches ``target`` (``max_clicks`` if it never does)."""
        return next((k for k, iou in enumerate(self.ious) if iou >= target), max_clicks)

    def iou_after(self, k: int) -> float:
        """IoU after ``k`` clicks (the last one if the annotator stopped before)."""
        return self.ious[min(k, len(self.ious) - 1)]


def click_curve(
    stem: str, truth: np.ndarray, automatic: np.ndarray, corrector: Corrector, max_clicks: int = 20
) -> ClickCurve:
    """Run the simulated annotator on one image."""
    truth = np.asarray(truth, bool)
    mask = np.asarray(automatic, bool)
    clicks: list[Click] = []
    ious, seconds = [jaccard(mask, truth)], []
    while len(clicks) < max_clicks and (ious[-1] < _TARGET or len(clicks) < _MIN_CLICKS):
        click = next_click(mask, truth)
        if click is None:  # nothing left to correct
            break
        clicks.append(click)
        started = time.perf_counter()
        mask = np.asarray(corrector(list(clicks), mask), bool)
        seconds.append(time.perf_counter() - started)
        ious.append(jaccard(mask, truth))
    return ClickCurve(stem, float(truth.mean()), tuple(ious), tuple(seconds))


def model_corrector(session, image: np.ndarray) -> Corrector:
    """Clicks through ``session.predict``, the current mask as the prior."""

    def correct(clicks: list[Click], mask: np.ndarray) -> np.ndarray:
        return session.predict(image, clicks=clicks, prior=mask).mask

    return correct


def brush_corrector(hw: tuple[int, int]) -> Corrector:
    """Each click stamps a disk of radius diag/64: lesion if positive, skin if negative."""
    radius = math.hypot(*hw) / 64
    rows = np.arange(hw[0])[:, None]
    cols = np.arange(hw[1])[None, :]

    def correct(clicks: list[Click], mask: np.ndarray) -> np.ndarray:
        row, col, positive = clicks[-1]
        out = mask.copy()
        out[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = positive
        return out

    return correct


def _scores(curves: Sequence[ClickCurve], max_clicks: int) -> dict[str, float]:
    if not curves:
        return {"n": 0}
    seconds = [s for c in curves for s in c.seconds_per_click]
    return {
        "n": len(curves),
        "noc85": float(np.mean([c.clicks_to(0.85, max_clicks) for c in curves])),
        "noc90": float(np.mean([c.clicks_to(0.90, max_clicks) for c in curves])),
        "failure_rate": float(np.mean([max(c.ious) < 0.90 for c in curves])),
        "iou_auto": float(np.mean([c.ious[0] for c in curves])),
        **{f"iou_after_{k}": float(np.mean([c.iou_after(k) for c in curves])) for k in (1, 3, 5)},
        "ms_per_click": 1000 * float(np.mean(seconds)) if seconds else float("nan"),
    }


def summarise(curves: Sequence[ClickCurve], max_clicks: int) -> dict[str, object]:
    """The protocol's scores over a set, overall and by lesion size."""
    by_size = {name: _scores([c for c in curves if low <= c.lesion_fraction < high], max_clicks)
               for name, low, high in SIZE_BINS}
    return {**_scores(curves, max_clicks), "by_size": by_size}


def evaluate_clicks(
    samples: Iterable[tuple[str, np.ndarray, np.ndarray]],
    session,
    max_clicks: int = 20,
    modes: Sequence[str] = ("model",),
) -> dict[str, list[ClickCurve]]:
    """Curves per mode (``"model"``: clicks through the session, ``"brush"``: painted disks),
    both from the session's automatic mask, for ``(stem, image, truth)`` samples."""
    curves: dict[str, list[ClickCurve]] = {mode: [] for mode in modes}
    for stem, image, truth in samples:
        automatic = session.predict(image).mask
        for mode in modes:
            corrector = model_corrector(session, image) if mode == "model" else brush_corrector(truth.shape)
            curves[mode].append(click_curve(stem, truth, automatic, corrector, max_clicks))
    return curves
