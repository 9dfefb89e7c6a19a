"""Bad files in a project reach the user as notifications; the other images go on."""

from __future__ import annotations

import numpy as np

from tests.widgets.conftest import SAMPLES, wait_idle


def test_broken_files_in_a_project(widget, project_dir, qtbot, notifications):
    good = (SAMPLES / "images" / "IMD003.png").read_bytes()
    (project_dir / "images" / "truncated.png").write_bytes(good[: len(good) // 3])
    (project_dir / "images" / "notes.png").write_text("not an image at all")
    assert widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    widget.review.show_stem("truncated")
    messages = " | ".join(notifications)
    assert "truncated.png could not be decoded" in messages and "notes.png is not an image" in messages
    records = widget.controller.project.records
    assert {records[s].status.value for s in ("IMD003", "IMD008", "IMD085", "IMD405")} == {"predicted"}
    assert records["truncated"].status.value == "unreviewed"
    assert widget.controller.current_stem != "truncated"  # the bad image was skipped, not shown


def test_grey_16bit_layer_is_predicted(widget, qtbot):
    grey16 = (np.linspace(0, 65535, 120 * 160).reshape(120, 160)).astype(np.uint16)
    layer = widget.viewer.add_image(grey16, name="grey16")
    widget.viewer.layers.selection.active = layer
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    assert widget.viewer.layers["grey16 mask"].data.shape == (120, 160)


def test_a_stack_layer_gets_a_clear_message(widget, notifications):
    layer = widget.viewer.add_image(np.zeros((3, 40, 50), np.uint8), name="stack")
    widget.viewer.layers.selection.active = layer
    widget.predict.predict_selected()
    assert any("stack of 3 planes" in message for message in notifications)
    assert not widget.controller.is_busy("predict")
