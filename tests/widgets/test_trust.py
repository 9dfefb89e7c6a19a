"""Nothing a reviewer did is lost or misrecorded without a sign (issue 12, items 1, 2, 3, 5, 7)."""

from __future__ import annotations

import numpy as np

from napari_nevseg.core.image_io import read_mask
from tests.widgets.conftest import press, wait_idle


def _open(widget, project_dir, qtbot) -> None:
    assert widget.open_project(project_dir)
    wait_idle(qtbot, widget)


def test_predict_selected_never_replaces_a_corrected_mask(widget, project_dir, qtbot, notifications):
    """Item 1: the new prediction goes beside the corrected mask; the record stays true."""
    _open(widget, project_dir, qtbot)
    stem = widget.controller.current_stem
    layer = widget.view.mask_layer
    layer.brush_size = 30
    layer.paint((20, 20), 1)
    widget.review.accept_current()
    record = widget.controller.project.records[stem]
    corrected = read_mask(project_dir / "masks" / f"{stem}.png")
    dice_before = record.dice_prediction_vs_final
    assert record.status.value == "corrected"

    widget.review.show_stem(stem)
    widget.viewer.layers.selection.active = widget.view.image_layer
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    assert np.array_equal(widget.view.mask_layer.data > 0, corrected)  # the correction is on screen
    assert any(name.startswith(f"{stem} new prediction") for name in (la.name for la in widget.viewer.layers))
    assert any("keeps its corrected mask" in message for message in notifications)
    widget.review.accept_current()  # accepting now saves the correction, not the raw prediction
    assert np.array_equal(read_mask(project_dir / "masks" / f"{stem}.png"), corrected)
    record = widget.controller.project.records[stem]
    assert record.status.value == "corrected" and record.dice_prediction_vs_final == dice_before


def test_a_stroke_with_another_label_shows_as_lesion(widget, project_dir, qtbot):
    """Item 2: after napari's new-label key (label 2), the stroke is seen, and saved as seen."""
    _open(widget, project_dir, qtbot)
    stem = widget.controller.current_stem
    layer = widget.view.mask_layer
    layer.selected_label = 2  # what napari's M does on a mask holding label 1
    layer.brush_size = 20
    layer.paint((25, 25), 2)
    assert layer.data[25, 25] == 2
    colours = layer.colormap.map(np.array([1, 2]))
    assert colours[1][3] > 0, "label 2 is drawn transparent"
    assert np.allclose(colours[0], colours[1])
    widget.review.next_image()
    assert read_mask(project_dir / "masks" / f"{stem}.png")[25, 25]


def test_accept_goes_to_the_next_unreviewed_image(widget, project_dir, qtbot):
    """Item 3: in uncertainty order, accept the last row, then the top row: Y never lands on a
    reviewed image while unreviewed ones remain."""
    _open(widget, project_dir, qtbot)
    widget.review.sort_combo.setCurrentText("uncertainty (least certain first)")
    order = widget.review.queue.order
    records = widget.controller.project.records
    widget.review.show_stem(order[-1])
    widget.review.accept_current()
    assert not records[widget.controller.current_stem].status.reviewed
    widget.review.show_stem(order[0])
    widget.review.accept_current()
    assert not records[widget.controller.current_stem].status.reviewed


def test_keys_work_after_a_click_on_the_queue(widget, project_dir, qtbot):
    """Item 5: a click on a queue row leaves the focus in the table; N and Y still work, but a
    number field being edited keeps its keys."""
    from qtpy.QtCore import Qt

    _open(widget, project_dir, qtbot)
    table = widget.review.table
    widget.viewer.window._qt_window.show()
    rect = table.visualRect(table.model().index(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    order = widget.review.queue.order
    assert widget.controller.current_stem == order[1]
    press(qtbot, table, "N")
    assert widget.controller.current_stem == order[2]
    press(qtbot, table, "Y")
    assert widget.controller.project.records[order[2]].status.reviewed
    here = widget.controller.current_stem
    press(qtbot, widget.measure.pixel_size, "N")  # typing in a number field
    assert widget.controller.current_stem == here


def test_unsaved_edits_are_marked_and_say_what_next_saves(widget, project_dir, qtbot):
    """Item 7: the mask on screen differs from disk -> a modified mark and what Next does."""
    _open(widget, project_dir, qtbot)
    label = widget.review.edit_label
    assert "●" not in label.text() and "Next saves nothing" in label.text()
    widget.view.mask_layer.paint((30, 30), 1)
    qtbot.waitUntil(lambda: "●" in label.text(), timeout=5000)
    assert "Next (N) saves it" in label.text()
    stem = widget.controller.current_stem
    widget.review.next_image()
    widget.review.show_stem(stem)
    assert "●" not in label.text() and "saved in masks/" in label.text()
