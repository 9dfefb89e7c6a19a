"""Outline overlays: the image with the mask's border drawn on it, for reports and the CLI."""

from __future__ import annotations

import numpy as np
from skimage.morphology import dilation, disk
from skimage.segmentation import find_boundaries

__all__ = ["outline_overlay"]


def outline_overlay(image_rgb: np.ndarray, mask: np.ndarray, color=(0, 255, 64), thickness: int | None = None) -> np.ndarray:
    """Copy of ``image_rgb`` with the outline of ``mask`` drawn in ``color``.

    ``thickness`` defaults to about 0.3% of the image diagonal (2-3 px on a PH2 image).
    """
    out = np.array(image_rgb, dtype=np.uint8, copy=True)
    edge = find_boundaries(np.asarray(mask) > 0, mode="inner")
    radius = thickness if thickness is not None else max(1, round(0.0015 * float(np.hypot(*mask.shape[:2]))))
    if radius > 1:
        edge = dilation(edge, disk(radius - 1))
    out[edge] = color
    return out
