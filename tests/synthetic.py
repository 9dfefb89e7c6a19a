"""Synthetic pictures for the tests (Qt-free, importable from any test module or conftest)."""

from __future__ import annotations

import numpy as np

__all__ = ["blob_picture", "small_lesion_picture"]


def blob_picture(h: int, w: int, seed: int, grey: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured background with one dark, soft-edged elliptical 'lesion'.

    Returns ``(rgb uint8 (h, w, 3), mask bool (h, w))``. The lesion sits off-centre so a
    rotation or a flip changes the mask.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy = h * rng.uniform(0.3, 0.6)
    cx = w * rng.uniform(0.25, 0.5)
    ry = h * rng.uniform(0.15, 0.28)
    rx = w * rng.uniform(0.15, 0.28)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    inside = np.clip((1.15 - r) / 0.3, 0.0, 1.0)  # soft edge around r == 1
    skin = np.array(rng.uniform([170, 120, 100], [235, 190, 170]), dtype=np.float32)
    lesion = np.array(rng.uniform([50, 25, 15], [120, 80, 60]), dtype=np.float32)
    shade = 1.0 + 0.08 * (xx / max(w - 1, 1) - 0.5)
    rgb = (skin * (1 - inside[..., None]) + lesion * inside[..., None]) * shade[..., None]
    if grey:
        rgb = np.repeat(rgb.mean(axis=-1, keepdims=True), 3, axis=-1)
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return rgb, r < 1.0


def small_lesion_picture(h: int, w: int, seed: int, share: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """A blob picture ``share`` of the size, pasted at a random place into an ``(h, w)`` field of
    its own skin colour: a small lesion in a large photo. Returns ``(rgb, mask)``."""
    rng = np.random.default_rng(seed + 7)
    sh, sw = max(8, int(h * share)), max(8, int(w * share))
    rgb, mask = blob_picture(sh, sw, seed)
    out = np.empty((h, w, 3), np.uint8)
    out[:] = rgb[0, 0]
    full = np.zeros((h, w), bool)
    top, left = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    out[top : top + sh, left : left + sw] = rgb
    full[top : top + sh, left : left + sw] = mask
    return out, full
