"""Predict, review and correct through the real widget: masks and state on disk."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing

import numpy as np
import pytest

from napari_nevseg.core.image_io import read_mask
from tests.widgets.conftest import LONG, press, wait_idle


def test_open_project_predicts_every_image_and_shows_the_first(widget, project_dir, qtbot):
    assert widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    project = widget.controller.project
    assert project.counts()["predicted"] == 4
    for stem, record in project.records.items():
        assert record.model_version == "default"
        assert 0.0 <= record.uncertainty <= 1.0
        assert project.prediction_path(stem).exists()
    with closing(sqlite3.connect(project_dir / "nevseg" / "project.sqlite")) as conn:
        assert {s for (s,) in conn.execute("SELECT status FROM images")} == {"predicted"}
    # the image on screen has its prediction in a Labels layer of the same size
    stem = widget.controller.current_stem
    mask = widget.view.mask_layer.data
    assert mask.shape == widget.view.image_layer.data.shape[:2]
    assert np.array_equal(mask > 0, project.read_prediction(stem))
    assert 0.02 < (mask > 0).mean() < 0.9
    assert widget.review.queue.rowCount() == 4
    assert stem in widget.review.edit_label.text()


def test_paint_accept_writes_mask_and_state_and_reopen_restores(widget, project_dir, qtbot, make_napari_viewer):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    first = widget.controller.current_stem
    layer = widget.view.mask_layer
    before = layer.data.copy()
    layer.brush_size = 30
    layer.selected_label = 1
    layer.paint((20, 20), 1)  # a stroke in the corner, away from the lesion
    assert (layer.data > 0).sum() > (before > 0).sum()
    widget.review.accept_current()
    # written at once, full size, 0/255, with the painted stroke
    written = read_mask(project_dir / "masks" / f"{first}.png")
    assert written.shape == before.shape and written[20, 20]
    record = widget.controller.project.records[first]
    assert record.status.value == "corrected"
    assert 0.9 < record.dice_prediction_vs_final < 1.0
    assert widget.controller.current_stem != first  # accept moved on
    # accept the next one unchanged: status accepted, Dice 1
    second = widget.controller.current_stem
    widget.review.accept_current()
    assert widget.controller.project.records[second].status.value == "accepted"
    assert widget.controller.project.records[second].dice_prediction_vs_final == 1.0
    # edits in progress are saved when moving to another image
    third = widget.controller.current_stem
    widget.view.mask_layer.paint((30, 30), 1)
    widget.review.next_image()
    assert widget.controller.project.records[third].status.value == "corrected"
    assert read_mask(project_dir / "masks" / f"{third}.png")[30, 30]

    # a fresh viewer and widget on the same folder sees the same statuses
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer2 = make_napari_viewer()
    w2 = NevsegWidget(viewer2)
    qtbot.waitUntil(lambda: w2.controller.session is not None, timeout=LONG)
    w2.open_project(project_dir)
    wait_idle(qtbot, w2)
    statuses = {s: r.status.value for s, r in w2.controller.project.records.items()}
    assert statuses[first] == "corrected" and statuses[second] == "accepted" and statuses[third] == "corrected"
    w2.review.show_stem(first)
    assert w2.view.mask_layer.data[20, 20] == 1
    w2.teardown()


def test_keys_navigate_and_accept(widget, project_dir, qtbot):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    canvas = widget.viewer.window._qt_viewer.canvas.native
    order = widget.review.queue.order
    assert widget.controller.current_stem == order[0]
    press(qtbot, canvas, "N")
    assert widget.controller.current_stem == order[1]
    press(qtbot, canvas, "Shift+N")
    assert widget.controller.current_stem == order[0]
    press(qtbot, canvas, "PgDown")
    assert widget.controller.current_stem == order[1]
    press(qtbot, canvas, "PgUp")
    press(qtbot, canvas, "Y")
    assert widget.controller.project.records[order[0]].status.value == "accepted"
    assert widget.controller.current_stem == order[1]


def test_uncertainty_order_puts_least_certain_unreviewed_first(widget, project_dir, qtbot):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    widget.review.sort_combo.setCurrentText("uncertainty (least certain first)")
    order = widget.review.queue.order
    values = [widget.controller.project.records[s].uncertainty for s in order]
    assert values == sorted(values, reverse=True)
    assert widget.review.queue.stem_at(0) == order[0]


def test_cleanup_is_undoable(widget, project_dir, qtbot):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    layer = widget.view.mask_layer
    layer.brush_size = 10
    layer.paint((15, 15), 1)  # a separate speck
    with_speck = layer.data.copy()
    assert widget.cleanup.apply("keep_largest")
    assert layer.data[15, 15] == 0
    layer.undo()
    assert np.array_equal(layer.data, with_speck)
    layer.redo()
    assert layer.data[15, 15] == 0


def test_threshold_and_cleanup_controls_change_the_prediction(widget, project_dir, qtbot):
    widget.viewer.open_sample("napari-nevseg", "IMD405")
    image = widget.viewer.layers["IMD405"]
    widget.viewer.layers.selection.active = image
    widget.predict.threshold.setValue(0.5)
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    labels = widget.viewer.layers["IMD405 mask"]
    at_half = (labels.data > 0).sum()
    reference = widget.viewer.layers["IMD405 reference"].data > 0
    from napari_nevseg.core.metrics import dice

    assert dice(labels.data > 0, reference) > 0.9  # the shipped model on an image it never saw
    widget.predict.threshold.setValue(0.9)
    widget.viewer.layers.selection.active = image
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    assert widget.viewer.layers["IMD405 mask"] is labels  # the same layer is updated
    assert (labels.data > 0).sum() < at_half
    labels.undo()  # the update is one undo step
    assert (labels.data > 0).sum() == at_half


def test_probability_map_is_optional(widget, qtbot):
    widget.viewer.open_sample("napari-nevseg", "IMD003")
    widget.viewer.layers.selection.active = widget.viewer.layers["IMD003"]
    widget.predict.probability.setChecked(True)
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    prob = widget.viewer.layers["IMD003 probability"].data
    assert prob.shape == widget.viewer.layers["IMD003"].data.shape[:2]
    assert 0.0 <= prob.min() and prob.max() <= 1.0


def test_measurements_follow_edits_and_export_csv(widget, project_dir, qtbot, tmp_path):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    values = widget.measure.update_measurements()
    assert values["area_px"] == (widget.view.mask_layer.data > 0).sum()
    widget.measure.pixel_size.setValue(0.01)
    values = widget.measure.update_measurements()
    assert values["area_mm2"] == pytest.approx(values["area_px"] * 1e-4)
    assert "mm" in widget.measure.values["max diameter"].text()
    shown = widget.measure.values["area"].text()
    assert shown.endswith(f" mm²  ({int(values['area_px']):,} px²)") and "e+" not in shown  # not 6.065e+04
    # behind a hidden tab an edit only marks the values stale; showing the tab measures
    widget.view.mask_layer.paint((40, 40), 1)
    qtbot.wait(400)
    assert widget.measure.stale and widget.measure.values["area"].text() == shown
    widget.viewer.window.show()  # the dock, and its tab, on screen
    widget.show_panel(widget.measure)
    qtbot.waitUntil(lambda: widget.measure.values["area"].text() != shown, timeout=5000)
    # and while it is on screen, measurements follow each edit
    shown = widget.measure.values["area"].text()
    widget.view.mask_layer.paint((10, 10), 1)
    qtbot.waitUntil(lambda: widget.measure.values["area"].text() != shown, timeout=5000)
    widget.review.accept_current()
    out = widget.measure.export_csv(tmp_path / "m.csv")
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {r["status"] for r in rows} >= {"corrected", "predicted"}
    assert all(int(r["area_px"]) > 0 for r in rows)  # whole pixels
    assert all(r["area_mm2"] and r["pixel_size_mm"] == "0.01" for r in rows)


@pytest.mark.parametrize("case", ["nothing_selected", "not_a_project", "labels_selected"])
def test_bad_input_gives_a_notification_not_a_traceback(widget, tmp_path, case, notifications):
    if case == "nothing_selected":
        widget.viewer.layers.selection.clear()
        widget.predict.predict_selected()
        expected = "select an image layer"
    elif case == "not_a_project":
        (tmp_path / "empty").mkdir()
        assert not widget.open_project(tmp_path / "empty")
        expected = "no images/ folder"
    else:
        widget.viewer.add_labels(np.zeros((10, 10), np.uint8), name="lonely")
        widget.predict.predict_selected()
        expected = "not an image layer"
    assert any(expected in message for message in notifications), notifications
    assert widget.controller.session is not None


def test_predictions_record_the_model_by_content_hash(widget, project_dir, qtbot):
    """A project knows which model made each mask by its content, not by the name "default",
    which will come to mean another model (issue 13 point 7)."""
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    project, session = widget.controller.project, widget.controller.session
    predicted = [r for r in project.records.values() if r.model_version is not None]
    assert predicted and {r.model_hash for r in predicted} == {session.content_hash}
    assert len(session.content_hash) == 64
