"""Concurrency and teardown: no crash, no hung thread, no exception (issue: hostile input)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.widgets.conftest import LONG, correct_with_reference, wait_idle


@pytest.mark.slow
def test_predict_while_finetuning(widget, project_dir, qtbot, improving_validation):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    for stem in ("IMD003", "IMD008"):
        correct_with_reference(widget, stem)
    widget.finetune.epochs.setValue(2)
    widget.finetune.start()
    widget.viewer.open_sample("napari-nevseg", "IMD405")
    widget.viewer.layers.selection.active = widget.viewer.layers["IMD405"]
    widget.predict.predict_selected()
    assert widget.controller.is_busy("train") and widget.controller.is_busy("predict")
    wait_idle(qtbot, widget, timeout=4 * LONG)
    assert "IMD405 mask" in widget.viewer.layers
    assert widget.controller.registry.versions() == ["default", "v1"]


def test_deleting_the_target_layer_while_predicting(widget, qtbot):
    widget.viewer.open_sample("napari-nevseg", "IMD003")
    image = widget.viewer.layers["IMD003"]
    widget.viewer.layers.selection.active = image
    widget.predict.predict_selected()
    widget.viewer.layers.remove(image)
    wait_idle(qtbot, widget)
    assert "IMD003 mask" not in widget.viewer.layers


def test_deleting_the_project_mask_layer_then_accepting(widget, project_dir, qtbot, notifications):
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    widget.viewer.layers.remove(widget.view.mask_layer)
    widget.review.accept_current()
    assert any("deleted" in message for message in notifications)
    widget.review.next_image()  # shows the next image with a fresh mask layer
    assert widget.view.layer_in_viewer(widget.view.mask_layer)


@pytest.mark.slow
def test_closing_the_widget_mid_finetune_stops_the_worker(make_napari_viewer, project_dir, qtbot):
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = make_napari_viewer()
    w = NevsegWidget(viewer)
    dock = viewer.window.add_dock_widget(w, name="NevSeg")
    qtbot.waitUntil(lambda: w.controller.session is not None, timeout=LONG)
    w.open_project(project_dir)
    qtbot.waitUntil(lambda: not w.controller.is_busy(), timeout=LONG)
    for stem in ("IMD003", "IMD008"):
        correct_with_reference(w, stem)
    w.finetune.epochs.setValue(300)
    w.finetune.start()
    worker = w.finetune.worker
    qtbot.waitUntil(lambda: len(w.finetune.plot.losses) > 0, timeout=LONG)
    registry = w.controller.registry
    viewer.window.remove_dock_widget(dock)  # tears the dock down (the X does this)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=LONG)
    assert registry.versions() == ["default"]
    assert w.controller.project is None  # the project (and its lock) was let go


def test_two_viewers_each_with_a_widget(make_napari_viewer, qtbot):
    from napari_nevseg.widgets.main_widget import NevsegWidget

    widgets = []
    for _ in range(2):
        viewer = make_napari_viewer()
        w = NevsegWidget(viewer)
        viewer.window.add_dock_widget(w, name="NevSeg")
        widgets.append(w)
    for w in widgets:
        qtbot.waitUntil(lambda w=w: w.controller.session is not None and not w.controller.workers, timeout=LONG)
    assert widgets[0].controller is not widgets[1].controller
    assert widgets[0].controller.session is not widgets[1].controller.session
    for w in widgets:
        w.viewer.add_image(np.zeros((64, 80, 3), np.uint8), name="blank", rgb=True)
        w.predict.predict_all_open()
    for w in widgets:
        wait_idle(qtbot, w)
        assert "blank mask" in w.viewer.layers
        w.teardown()
