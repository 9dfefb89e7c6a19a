"""Lesion measurements and how they read: no exponents, thousands separators, mm with a pixel
size; the project CSV rounded, with a pixel-size column (no Qt)."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_nevseg.core.measure import (
    display_rows,
    format_number,
    format_quantity,
    measure_lesion,
    readable_decimals,
)
from napari_nevseg.core.measurements_table import CSV_FIELDS, DECIMALS, csv_number, measurements_csv

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
EXPONENT = re.compile(r"\d[eE][+-]?\d")


def _disc(shape=(400, 500), radius=139) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 <= radius**2


def test_a_disc_measures_as_a_disc():
    m = measure_lesion(_disc())
    assert m.area_px == pytest.approx(np.pi * 139**2, rel=0.01)
    assert m.max_diameter_px == pytest.approx(279, abs=3)
    assert m.asymmetry < 0.02 and m.solidity > 0.98
    assert 0.95 < m.border_irregularity < 1.2  # the digital outline runs a little long
    assert measure_lesion(np.zeros((5, 5))) is None


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [(60650.4, 0, "60,650"), (1234567.891, 2, "1,234,567.89"), (0.5, 2, "0.50"), (-0.001, 2, "0.00"),
     (float("nan"), 2, "–")],
)
def test_format_number_is_fixed_point_with_separators(value, decimals, text):
    assert format_number(value, decimals) == text


def test_quantities_keep_three_figures_without_exponent():
    assert readable_decimals(6.0651) == 2 and readable_decimals(123.4) == 0 and readable_decimals(0.0523) == 4
    assert format_quantity(6.0651, "mm²") == "6.07 mm²"
    assert format_quantity(60650.0, "px²") == "60,650 px²"
    assert format_quantity(0.00001234, "mm") == "0.0000 mm"  # tiny, but still not 1.234e-05
    for value in (6.065e4, 1.5e7, 3.2e-6, 0.0):
        assert not EXPONENT.search(format_quantity(value, "px")), value


def test_display_rows_in_pixels_then_in_mm_with_a_pixel_size():
    mask = _disc()
    rows = dict(display_rows(measure_lesion(mask)))
    assert rows["area"] == f"{int(mask.sum()):,} px²" and "," in rows["area"]
    assert rows["asymmetry"].count(".") == 1 and len(rows["asymmetry"].split(".")[1]) == 2
    with_mm = dict(display_rows(measure_lesion(mask, pixel_size_mm=0.01)))
    area_mm2 = mask.sum() * 1e-4
    assert with_mm["area"] == f"{area_mm2:.2f} mm²  ({int(mask.sum()):,} px²)"
    assert with_mm["max diameter"].startswith("2.8") and "mm" in with_mm["max diameter"]
    for text in [*rows.values(), *with_mm.values()]:
        assert not EXPONENT.search(text), text


def test_csv_numbers_are_rounded_and_plain():
    assert csv_number(60650.4, 0) == "60650"
    assert csv_number(0.123456, 3) == "0.123"
    assert csv_number(0.0105, None) == "0.0105"
    assert csv_number(None, 3) == "" and csv_number(float("nan"), 3) == ""
    assert not EXPONENT.search(csv_number(1e-7, 3))


@pytest.fixture
def reviewed_project(tmp_path):
    from napari_nevseg.core.project import Project

    root = tmp_path / "clinic"
    (root / "images").mkdir(parents=True)
    for stem in ("IMD003", "IMD008"):
        shutil.copy(SAMPLES / "images" / f"{stem}.png", root / "images")
    project = Project.open(root)
    from napari_nevseg.core.image_io import read_mask

    project.review("IMD003", read_mask(SAMPLES / "masks" / "IMD003.png"))
    yield project
    project.close()


def test_measurements_csv_has_rounded_values_and_a_pixel_size_column(reviewed_project):
    project = reviewed_project
    project.pixel_size_mm = 0.0105
    rows = list(csv.DictReader(io.StringIO(measurements_csv(project))))
    assert tuple(rows[0]) == CSV_FIELDS
    by_image = {r["image"]: r for r in rows}
    reviewed, unseen = by_image["IMD003"], by_image["IMD008"]
    assert reviewed["mask_source"] == "reviewed" and unseen["mask_source"] == "none"
    assert reviewed["pixel_size_mm"] == "0.0105"
    mask_px = int((project.read_mask("IMD003") > 0).sum())
    assert reviewed["area_px"] == str(mask_px)
    assert float(reviewed["area_mm2"]) == pytest.approx(mask_px * 0.0105**2, abs=5e-4)
    for key, decimals in DECIMALS.items():
        text = reviewed[key]
        if text and decimals is not None:
            assert len(text.partition(".")[2]) == decimals, (key, text)
        assert not EXPONENT.search(text)
    assert all(unseen[key] == "" for key in ("area_px", "area_mm2", "solidity"))


def test_measurements_csv_without_a_pixel_size_leaves_mm_empty(reviewed_project):
    rows = list(csv.DictReader(io.StringIO(measurements_csv(reviewed_project))))
    reviewed = next(r for r in rows if r["image"] == "IMD003")
    assert reviewed["pixel_size_mm"] == "" and reviewed["area_mm2"] == ""
    assert int(reviewed["area_px"]) > 1000

