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
from scipy import ndimage

from napari_nevseg.core.clicks import Click, check_clicks, guidance_tensor
from napari_nevseg.core.convert import to_rgb_uint8
from napari_nevseg.core.data import resize_mask, resize_rgb
from napari_nevseg.core.inference import Prediction, Predictor, uncertainty
from napari_nevseg.core.postprocess import Cleanup, clean_mask

__all__ = ["predict_guided", "focus_window", "check_box", "check_prior"]

Window = tuple[int, int, int, int]  # row0, col0, row1, col1 (ends excluded)

#: the window is the object's box times this, at least this share of the image's sides; a
#: box's window is 1.5 times it, inside the 1.3-2.2 of the focus crops the click model trains
#: on (ISIC validation, box alone: Dice 0.867 at 1.2, 0.873 at 1.5, 0.875 at 1.8)
_WIDEN, _MIN_SHARE, _BOX_WIDEN = 1.4, 0.3, 1.5
#: the prior's regions within this share of the image diagonal from a click belong to its object,
#: and the window reaches at least this far around every click (a click on missed lesion says
#: nothing of how far the lesion goes on)
_NEAR = 0.08


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


def _near_objects(prior: np.ndarray, clicks: Sequence[Click]) -> list[Window]:
    """Bounding boxes of the prior's regions near a click, found on a coarse grid (a block is
    foreground if any pixel is), so a 12-megapixel prior costs a few milliseconds."""
    h, w = prior.shape
    step = max(1, math.ceil(max(h, w) / 256))
    ph, pw = -(-h // step) * step, -(-w // step) * step
    padded = np.zeros((ph, pw), bool)
    padded[:h, :w] = prior
    coarse = padded.reshape(ph // step, step, pw // step, step).any(axis=(1, 3))
    labels, _ = ndimage.label(coarse, structure=np.ones((3, 3)))
    near = _NEAR * math.hypot(h, w)
    boxes = []
    for sl in ndimage.find_objects(labels):
        r0, r1 = sl[0].start * step, min(h, sl[0].stop * step)
        c0, c1 = sl[1].start * step, min(w, sl[1].stop * step)
        for row, col, _ in clicks:
            if math.hypot(max(r0 - row, 0, row - r1 + 1), max(c0 - col, 0, col - c1 + 1)) <= near:
                boxes.append((r0, c0, r1, c1))
                break
    return boxes


def focus_window(
    hw: tuple[int, int], work_hw: tuple[int, int], prior: np.ndarray, clicks: Sequence[Click], box: Window | None
) -> Window:
    """The window the network is re-run in (see the module's docstring)."""
    h, w = hw
    reach = round(_NEAR * math.hypot(h, w))
    parts = [(r - reach, c - reach, r + reach + 1, c + reach + 1) for r, c, _ in clicks]
    parts += _near_objects(prior, clicks)
    if box is not None:
        parts.append(box)
    r0, c0 = min(p[0] for p in parts), min(p[1] for p in parts)
    r1, c1 = max(p[2] for p in parts), max(p[3] for p in parts)
    widen = _WIDEN if clicks else _BOX_WIDEN
    min_share = _MIN_SHARE if clicks else 0.0
    wh, ww = max((r1 - r0) * widen, min_share * h, 8.0), max((c1 - c0) * widen, min_share * w, 8.0)
    aspect = work_hw[0] / work_hw[1]
    wh, ww = max(wh, ww * aspect), max(ww, wh / aspect)
    wh, ww = min(h, round(wh)), min(w, round(ww))
    top = min(max(0, round((r0 + r1) / 2 - wh / 2)), h - wh)
    left = min(max(0, round((c0 + c1) / 2 - ww / 2)), w - ww)
    return top, left, top + wh, left + ww


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

