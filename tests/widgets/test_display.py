"""The mask overlay's display row: outline or fill, colour-blind-safe colours, on the Labels
layers themselves; the data never changes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nevseg.widgets._layers import MASK_COLOURS, MaskStyle, add_mask_layer
from napari_nevseg.widgets.display_row import MaskDisplayRow


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def _shown(layer, label: int) -> np.ndarray:
    return np.asarray(layer.colormap.map(np.array([label])))[0, :3]


@pytest.fixture
def viewer_and_row(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    row = MaskDisplayRow(viewer)
    qtbot.addWidget(row)
    yield viewer, row
    row.teardown()


def _mask() -> np.ndarray:
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:60] = True
    return mask


def test_masks_start_as_a_sky_blue_outline_and_every_label_shows(viewer_and_row):
    viewer, _row = viewer_and_row
    layer = add_mask_layer(viewer, _mask(), "m")
    assert layer.contour == MaskStyle().outline_width > 0 and layer.opacity == 1.0
    assert np.allclose(_shown(layer, 1), _rgb(MASK_COLOURS["sky blue"]), atol=1e-3)
    # napari's new-label key paints label 2: it must show as lesion too, not vanish
    assert np.allclose(_shown(layer, 2), _shown(layer, 1)) and np.asarray(layer.colormap.map(np.array([0])))[0, 3] == 0


def test_fill_toggle_and_colour_restyle_every_mask_and_keep_the_data(viewer_and_row):
    viewer, row = viewer_and_row
    first = add_mask_layer(viewer, _mask(), "first")
    data = first.data.copy()
    row.mode.setCurrentText("fill")
    assert first.contour == 0 and first.opacity == pytest.approx(0.45)
    row.colour.setCurrentText("yellow")
    assert np.allclose(_shown(first, 1), _rgb(MASK_COLOURS["yellow"]), atol=1e-3)
    assert np.array_equal(first.data, data)
    # a mask added later (another image predicted) follows the row
    later = add_mask_layer(viewer, _mask(), "later")
    assert later.contour == 0 and np.allclose(_shown(later, 1), _rgb(MASK_COLOURS["yellow"]), atol=1e-3)
    row.mode.setCurrentText("outline")
    assert first.contour > 0 and later.contour > 0 and later.opacity == 1.0


def test_a_mask_made_like_the_previous_keeps_the_reviewers_opacity(viewer_and_row):
    viewer, row = viewer_and_row
    row.colour.setCurrentText("blue")
    old = add_mask_layer(viewer, _mask(), "old")
    old.opacity = 0.6  # set in napari's own layer controls
    new = add_mask_layer(viewer, _mask(), "new", like=old)
    assert new.opacity == 0.6 and np.allclose(_shown(new, 1), _rgb(MASK_COLOURS["blue"]), atol=1e-3)


def test_other_labels_layers_are_left_alone(viewer_and_row):
    viewer, row = viewer_and_row
    other = viewer.add_labels(np.zeros((10, 10), np.uint8), name="reference")
    before = _shown(other, 1)
    row.colour.setCurrentText("black")
    row.mode.setCurrentText("fill")
    assert np.allclose(_shown(other, 1), before)


def test_a_prediction_shown_beside_the_mask_has_its_own_colour(viewer_and_row):
    viewer, row = viewer_and_row
    mask = add_mask_layer(viewer, _mask(), "IMD003 mask")
    beside = add_mask_layer(viewer, _mask(), "IMD003 new prediction (v1)", like=mask, comparison=True)
    assert beside.contour > 0 and not np.allclose(_shown(beside, 1), _shown(mask, 1))
    row.colour.setCurrentText("yellow")  # the mask turns yellow: the comparison moves off yellow
    row.mode.setCurrentText("fill")
    assert np.allclose(_shown(mask, 1), _rgb(MASK_COLOURS["yellow"]), atol=1e-3) and mask.contour == 0
    assert np.allclose(_shown(beside, 1), _rgb(MASK_COLOURS["sky blue"]), atol=1e-3) and beside.contour > 0
