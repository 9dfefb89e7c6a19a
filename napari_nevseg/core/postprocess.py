"""Lesion clean-up of a binary mask: keep the largest region, fill holes, smooth the border."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import label

__all__ = ["Cleanup", "keep_largest_region", "fill_holes", "smooth_border", "clean_mask"]


@dataclass(frozen=True)
class Cleanup:
    """Which clean-up steps to run; ``smooth_sigma`` is a fraction of the image diagonal."""

    keep_largest: bool = True
    fill_holes: bool = True
    smooth: bool = True
    smooth_sigma: float = 0.004

    @classmethod
    def none(cls) -> Cleanup:
        return cls(keep_largest=False, fill_holes=False, smooth=False)


def keep_largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected foreground region (an empty mask stays empty)."""
    labels = label(mask, connectivity=2)
    if labels.max() <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border."""
    return ndimage.binary_fill_holes(mask)


def smooth_border(mask: np.ndarray, sigma_fraction: float = 0.004) -> np.ndarray:
    """Smooth the outline: Gaussian blur of the mask re-thresholded at one half.

    ``sigma_fraction`` times the image diagonal is the blur's sigma in pixels (about 4 px on a
    PH2 image), so the same setting acts alike at any resolution.
    """
    sigma = sigma_fraction * float(np.hypot(*mask.shape[:2]))
    if sigma < 0.5 or not mask.any():
        return mask.astype(bool, copy=True)
    blurred = ndimage.gaussian_filter(mask.astype(np.float32), sigma, mode="nearest", truncate=3.0)
    return blurred > 0.5


def clean_mask(mask: np.ndarray, cleanup: Cleanup = Cleanup()) -> np.ndarray:
    """Run the enabled steps in the order smooth, keep largest, fill holes; returns bool."""
    out = np.asarray(mask) > 0
    if cleanup.smooth:
        out = smooth_border(out, cleanup.smooth_sigma)
    if cleanup.keep_largest:
        out = keep_largest_region(out)
    if cleanup.fill_holes:
        out = fill_holes(out)
    return out
