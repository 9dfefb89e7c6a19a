"""A project's measurements as one CSV table: a row per image, values rounded to what they mean.

Numbers are fixed-point with a dot and no thousands separators (spreadsheets in any locale
read them), never in exponent notation, and rounded per column: whole pixels for areas, a
tenth of a pixel for lengths, micrometres (0.001 mm) for physical lengths, three decimals for
ratios. Digits beyond that are noise from the outline estimate, and they make a table hard to
read. The pixel size each row was measured with is a column of its own, so a row copied out
of the table still says what its millimetres rest on.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from napari_nevseg.core.errors import NevsegError
from napari_nevseg.core.measure import LesionMeasurements, measure_lesion

if TYPE_CHECKING:
    from napari_nevseg.core.project import Project

__all__ = ["CSV_FIELDS", "DECIMALS", "csv_number", "measurement_cells", "measurements_csv", "project_rows"]

#: decimals per numeric column (None: as entered, trailing zeros dropped)
DECIMALS: dict[str, int | None] = {
    "pixel_size_mm": None,
    "uncertainty": 3,
    "dice_prediction_vs_final": 3,
    "area_px": 0,
    "area_mm2": 3,
    "perimeter_px": 1,
    "perimeter_mm": 3,
    "max_diameter_px": 1,
    "max_diameter_mm": 3,
    "asymmetry": 3,
    "border_irregularity": 3,
    "solidity": 3,
}
MEASUREMENT_FIELDS = ("area_px", "area_mm2", "perimeter_px", "perimeter_mm", "max_diameter_px",
                      "max_diameter_mm", "asymmetry", "border_irregularity", "solidity")
CSV_FIELDS = ("image", "status", "model_version", "mask_source", "pixel_size_mm", "uncertainty",
              "dice_prediction_vs_final", *MEASUREMENT_FIELDS)


def csv_number(value: float | None, decimals: int | None) -> str:
    """``value`` as CSV text: fixed-point, rounded to ``decimals``; empty when missing."""
    if value is None or not math.isfinite(value):
        return ""
    if decimals is None:
        return f"{value:.9f}".rstrip("0").rstrip(".")
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def measurement_cells(measured: LesionMeasurements | None) -> dict[str, str]:
    """The measurement columns of one row (all empty for an empty or missing mask)."""
    if measured is None:
        return dict.fromkeys(MEASUREMENT_FIELDS, "")
    values = measured.as_dict()
    return {key: csv_number(values[key], DECIMALS[key]) for key in MEASUREMENT_FIELDS}


def _best_mask(project: Project, stem: str):
    """The reviewed mask, else the prediction, with where it came from."""
    try:
        mask = project.read_mask(stem)
        if mask is not None:
            return mask, "reviewed"
        mask = project.read_prediction(stem)
    except NevsegError:
        return None, "unreadable"
    return mask, ("prediction" if mask is not None else "none")


def project_rows(project: Project) -> Iterator[dict[str, str]]:
    """One row per project image: its status, model and Dice, and the measurements of its
    best mask (reviewed, else predicted) at the project's pixel size."""
    pixel_size = project.pixel_size_mm
    for stem, record in project.records.items():
        mask, source = _best_mask(project, stem)
        measured = measure_lesion(mask, pixel_size) if mask is not None else None
        yield {
            "image": stem,
            "status": record.status.value,
            "model_version": record.model_version or "",
            "mask_source": source,
            "pixel_size_mm": csv_number(pixel_size, DECIMALS["pixel_size_mm"]),
            "uncertainty": csv_number(record.uncertainty, DECIMALS["uncertainty"]),
            "dice_prediction_vs_final": csv_number(record.dice_prediction_vs_final,
                                                   DECIMALS["dice_prediction_vs_final"]),
            **measurement_cells(measured),
        }


def measurements_csv(project: Project) -> str:
    """The whole table as CSV text (the caller writes it atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(project_rows(project))
    return buffer.getvalue()
