"""Measurements of the lesion in a mask (scikit-image region properties).

Definitions (all foreground pixels form the lesion):

* ``area``: number of lesion pixels (mm² with a pixel size).
* ``perimeter``: length of the outline, scikit-image's ``perimeter`` (a 4-connected contour
  estimate that weights straight and diagonal steps).
* ``max_diameter``: maximum Feret diameter, the largest distance between two outline points.
* ``asymmetry``: mean over the lesion's two principal axes of the share of the lesion that its
  mirror image across that axis (through the centroid) does not cover; 0 for a symmetric shape,
  up to 1. Both axes are also reported (``asymmetry_major``, ``asymmetry_minor``).
* ``border_irregularity``: compactness index perimeter² / (4π·area); 1 for a disc, larger for
  ragged or elongated borders.
* ``solidity``: area / area of the convex hull (1 for a convex lesion).

Numbers for people (:func:`display_rows`) are fixed-point with thousands separators, never in
exponent notation (``60,650 px²``, not ``6.065e+04``): a clinician reads them at a glance and
copies them into a report. With a pixel size the physical value comes first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from skimage.measure import regionprops

__all__ = ["LesionMeasurements", "display_rows", "format_number", "format_quantity", "measure_lesion"]


@dataclass(frozen=True)
class LesionMeasurements:
    area_px: float
    perimeter_px: float
    max_diameter_px: float
    asymmetry: float
    asymmetry_major: float
    asymmetry_minor: float
    border_irregularity: float
    solidity: float
    pixel_size_mm: float | None = None

    @property
    def area_mm2(self) -> float | None:
        return None if self.pixel_size_mm is None else self.area_px * self.pixel_size_mm**2

    @property
    def perimeter_mm(self) -> float | None:
        return None if self.pixel_size_mm is None else self.perimeter_px * self.pixel_size_mm

    @property
    def max_diameter_mm(self) -> float | None:
        return None if self.pixel_size_mm is None else self.max_diameter_px * self.pixel_size_mm

    def as_dict(self) -> dict[str, float | None]:
        data = asdict(self)
        data.update(area_mm2=self.area_mm2, perimeter_mm=self.perimeter_mm, max_diameter_mm=self.max_diameter_mm)
        return data


def _mirror_uncovered(coords: np.ndarray, centroid: np.ndarray, axis: np.ndarray, mask: np.ndarray) -> float:
    """Share of lesion pixels whose mirror image across ``axis`` (through ``centroid``) is outside."""
    rel = coords - centroid
    along = rel @ axis
    mirrored = centroid + 2.0 * along[:, None] * axis[None, :] - rel
    r = np.rint(mirrored).astype(np.int64)
    inside = (r[:, 0] >= 0) & (r[:, 0] < mask.shape[0]) & (r[:, 1] >= 0) & (r[:, 1] < mask.shape[1])
    covered = np.zeros(len(coords), dtype=bool)
    covered[inside] = mask[r[inside, 0], r[inside, 1]]
    return float(1.0 - covered.mean())


def measure_lesion(mask: np.ndarray, pixel_size_mm: float | None = None) -> LesionMeasurements | None:
    """Measure the lesion in a 2-D mask; None when the mask is empty."""
    binary = np.asarray(mask) > 0
    if binary.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {binary.shape}")
    if not binary.any():
        return None
    region = regionprops(binary.astype(np.uint8))[0]
    coords = region.coords.astype(np.float64)
    centroid = np.asarray(region.centroid)
    theta = region.orientation  # angle between axis 0 (rows) and the major axis
    major = np.array([np.cos(theta), np.sin(theta)])
    minor = np.array([-np.sin(theta), np.cos(theta)])
    a_major = _mirror_uncovered(coords, centroid, major, binary)
    a_minor = _mirror_uncovered(coords, centroid, minor, binary)
    area = float(region.area)
    perimeter = float(region.perimeter)
    return LesionMeasurements(
        area_px=area,
        perimeter_px=perimeter,
        max_diameter_px=float(region.feret_diameter_max),
        asymmetry=(a_major + a_minor) / 2.0,
        asymmetry_major=a_major,
        asymmetry_minor=a_minor,
        border_irregularity=perimeter**2 / (4.0 * np.pi * area) if area else float("nan"),
        solidity=float(region.solidity),
        pixel_size_mm=pixel_size_mm,
    )


def format_number(value: float, decimals: int) -> str:
    """Fixed-point with thousands separators (``60650.4, 0 -> '60,650'``); never an exponent."""
    if not math.isfinite(value):
        return "–"
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text  # no "-0.00"


def readable_decimals(value: float, significant: int = 3, most: int = 4) -> int:
    """Decimals that keep ``significant`` figures of a small value and none of a large one
    (0.0523 -> 4, 6.07 -> 2, 123 -> 0), at most ``most``."""
    if not math.isfinite(value) or value == 0:
        return 0
    return int(min(most, max(0, significant - 1 - math.floor(math.log10(abs(value))))))


def format_quantity(value: float, unit: str, significant: int = 3) -> str:
    """A measured value with its unit, to about ``significant`` figures: ``'6.07 mm²'``."""
    return f"{format_number(value, readable_decimals(value, significant))} {unit}".strip()


#: the rows a person reads: (label, pixel key, millimetre key or None, pixel unit, mm unit)
DISPLAY_ROWS = (
    ("area", "area_px", "area_mm2", "px²", "mm²"),
    ("perimeter", "perimeter_px", "perimeter_mm", "px", "mm"),
    ("max diameter", "max_diameter_px", "max_diameter_mm", "px", "mm"),
    ("asymmetry", "asymmetry", None, "", ""),
    ("border irregularity", "border_irregularity", None, "", ""),
    ("solidity", "solidity", None, "", ""),
)


def display_rows(measured: LesionMeasurements) -> list[tuple[str, str]]:
    """``(label, text)`` per measurement: mm first when a pixel size is set, pixels beside it;
    ratios with two decimals (finer differences are below what a mask edit changes)."""
    rows = []
    for label, px_key, mm_key, px_unit, mm_unit in DISPLAY_ROWS:
        px_value: float = getattr(measured, px_key)
        if not px_unit:
            rows.append((label, format_number(px_value, 2)))
            continue
        in_px = f"{format_number(px_value, 0)} {px_unit}"
        mm_value: float | None = getattr(measured, mm_key) if mm_key else None
        rows.append((label, in_px if mm_value is None else f"{format_quantity(mm_value, mm_unit)}  ({in_px})"))
    return rows
