"""Click- and box-guided prediction: the network re-run in a window around the clicked object.

The window ("focus", as in FocalClick and nnInteractive's zoom-in) is the bounding box of the
clicks, the box and the prior's regions near a click, widened for context and given the working
aspect ratio, then resampled to the working resolution: a lesion that is a few per cent of a
large photo is seen with as many pixels as a large one. Outside the changed region the mask is
the prior, bit for bit, so clicks act where they are put and hand edits elsewhere survive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch.nn.functional as F

from napari_nevseg.core.clicks import Click, check_clicks, guidance_tensor
from napari_nevseg.core.convert import to_rgb_uint8
from napari_nevseg.core.data import resize_mask, resize_rgb
from napari_nevseg.core.inference import Prediction, Predictor, uncertainty
from napari_nevseg.core.postprocess import Cleanup, clean_mask
from napari_nevseg.core.window import Window, focus_window

__all__ = ["predict_guided", "focus_window", "check_box", "check_prior"]

def check_box(box: Sequence[float] | None, hw: tuple[int, int]) -> Window | None:
    """``(row0, col0, row1, col1)`` in any corner order, clipped to the image; ValueError if
    nothing of it lies inside the image."""
    if box is None:
        return None
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise ValueError(f"a box is (row0, col0, row1, col1), not {tuple(box)!r}")
    r0, r1 = sorted((round(float(box[0])), round(float(box[2]))))
    c0, c1 = sorted((round(float(box[1])), round(float(box[3]))))
    h, w = hw
    clipped = (max(0, r0), max(0, c0), min(h, r1 + 1), min(w, c1 + 1))
    if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
        raise ValueError(f"box {tuple(box)!r} is outside the image ({h} x {w} pixels)")
    return clipped


def check_prior(prior: np.ndarray | None, hw: tuple[int, int]) -> np.ndarray | None:
    """The prior as a bool array of the image's size (bool or 0/1 values), else ValueError."""
    if prior is None:
        return None
    arr = np.asarray(prior)
    if arr.shape != tuple(hw):
        raise ValueError(f"the prior mask is {arr.shape}, the image is {tuple(hw)}: give a mask of the image's size")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError("the prior mask must be bool or hold only 0 and 1")
    return arr.astype(bool)


def _to_window(clicks: Sequence[Click], window: Window, work_hw: tuple[int, int]) -> list[tuple[float, float, bool]]:
    """Click positions in the working pixels of the window (pixel centres map to centres)."""
    top, left, bottom, right = window
    sy, sx = work_hw[0] / (bottom - top), work_hw[1] / (right - left)
    return [((r - top + 0.5) * sy - 0.5, (c - left + 0.5) * sx - 0.5, p) for r, c, p in clicks]


def _unchanged(prior: np.ndarray, work_hw: tuple[int, int], return_probability: bool) -> Prediction:
    """No clicks and no box: the prior as it is (no network ran, so nothing is uncertain)."""
    probability = prior.astype(np.float32) if return_probability else None
    return Prediction(prior.copy(), probability, resize_mask(prior, work_hw), 0.0, None)


def predict_guided(
    predictor: Predictor,
    image: np.ndarray,
    clicks: Sequence[Sequence[Any]] | None = None,
    box: Sequence[float] | None = None,
    prior: np.ndarray | None = None,
    threshold: float | None = None,
    cleanup: Cleanup = Cleanup(),
    return_probability: bool = False,
    on_fallback: Callable[[str], None] | None = None,
) -> Prediction:
    """The mask after ``clicks`` ``[(row, col, positive), ...]`` and/or a ``box`` in full-image
    pixels, starting from ``prior`` (the mask the user sees; ``None``: the automatic mask).

    Without clicks and box: the automatic prediction, or ``prior`` unchanged. The clean-up keeps
    every region holding a positive click besides the largest. A model without clicks takes a
    box (re-run in the box) but refuses clicks.
    """
    rgb = to_rgb_uint8(image)
    hw = rgb.shape[:2]
    points, window_box, prior = check_clicks(clicks, hw), check_box(box, hw), check_prior(prior, hw)
    if points and predictor.clicks is None:
        raise ValueError("this model was trained without clicks and cannot take them: "
                         "use a click model (ModelSession.supports_clicks), a box or the brush")
    if not points and window_box is None:
        if prior is None:
            return predictor.predict(rgb, threshold, cleanup, return_probability, on_fallback)
        return _unchanged(prior, predictor.work_hw, return_probability)
    if prior is None:
        prior = predictor.predict(rgb, threshold, cleanup, False, on_fallback).mask
    t = predictor.threshold if threshold is None else float(threshold)
    window = focus_window(hw, predictor.work_hw, prior, points, window_box)
    top, left, bottom, right = window
    guidance = None
    if predictor.clicks is not None:
        # a box alone asks for a fresh outline inside it: the previous mask is not given
        prev = resize_mask(prior[top:bottom, left:right], predictor.work_hw) if points else None
        guidance = guidance_tensor(_to_window(points, window, predictor.work_hw), prev,
                                   predictor.work_hw, predictor.clicks.radius)
    low = predictor.guided_probability(resize_rgb(np.ascontiguousarray(rgb[top:bottom, left:right]),
                                                  predictor.work_hw), guidance)
    full = F.interpolate(low[None, None], size=(bottom - top, right - left), mode="bilinear",
                         align_corners=False)[0, 0].numpy()
    region = window if points else window_box
    assert region is not None
    r0, c0, r1, c1 = region
    merged = prior.copy()
    merged[r0:r1, c0:c1] = full[r0 - top : r1 - top, c0 - left : c1 - left] > t
    cleaned = clean_mask(merged, cleanup, keep_points=[(r, c) for r, c, p in points if p])
    mask = prior.copy()
    mask[r0:r1, c0:c1] = cleaned[r0:r1, c0:c1]
    probability = None
    if return_probability:
        probability = prior.astype(np.float32)
        probability[r0:r1, c0:c1] = full[r0 - top : r1 - top, c0 - left : c1 - left]
    return Prediction(mask, probability, low.numpy(), uncertainty(low, t), region)

