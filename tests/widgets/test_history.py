"""Nothing is ever unrecoverable, and who did what is recorded (issue 12, item 8), through the
real dock: the history restored from the widget, the reviewer's name, the statuses besides
accepted and corrected, and the effort per image."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from napari_nevseg.core.image_io import read_mask
from tests.widgets.conftest import press, wait_idle


def _open(widget, project_dir, qtbot) -> None:
    assert widget.open_project(project_dir)
    wait_idle(qtbot, widget)


def _row(widget, status: str) -> int:
    """The history row (newest first) of the first version with ``status``."""
    versions = widget.controller.history(widget.controller.current_stem)
    return next(i for i, v in enumerate(versions) if v.status.value == status)


def test_an_accidental_stroke_over_an_accepted_mask_is_restored_from_the_widget(widget, project_dir, qtbot):
    _open(widget, project_dir, qtbot)
    stem = widget.controller.current_stem
    widget.review.accept_current()
    accepted = read_mask(project_dir / "masks" / f"{stem}.png")
    widget.review.show_stem(stem)
    layer = widget.view.mask_layer
    layer.brush_size = 30
    layer.paint((20, 20), 1)  # the accidental stroke
    stroked = layer.data > 0
    widget.review.next_image()  # N saves the stroke
    assert read_mask(project_dir / "masks" / f"{stem}.png")[20, 20] and not accepted[20, 20]

    widget.review.show_stem(stem)
    panel = widget.history
    assert panel.versions.count() == 2 and "corrected" in panel.versions.item(0).text()
    assert panel.section.text() == "History (2 versions)"
    panel.versions.setCurrentRow(_row(widget, "accepted"))
    qtbot.mouseClick(panel.restore_btn, Qt.MouseButton.LeftButton)
    assert np.array_equal(read_mask(project_dir / "masks" / f"{stem}.png"), accepted)
    assert np.array_equal(widget.view.mask_layer.data > 0, accepted)
    assert not widget.view.is_dirty()  # what is on screen is what is on disk
    record = widget.controller.project.records[stem]
    assert record.status.value == "accepted" and record.dice_prediction_vs_final == 1.0
    assert panel.versions.count() == 3 and "restore of version" in panel.versions.item(0).text()
    widget.view.mask_layer.undo()  # the restore is one undo step on screen
    assert np.array_equal(widget.view.mask_layer.data > 0, stroked)


def test_the_reviewer_name_is_recorded_and_typing_it_triggers_no_key(widget, project_dir, qtbot):
    _open(widget, project_dir, qtbot)
    field = widget.history.reviewer
    assert field.text() == widget.controller.project.user  # the OS user by default
    stem = widget.controller.current_stem
    field.clear()
    press(qtbot, field, "N")  # a letter typed in the name, not the Next key
    assert widget.controller.current_stem == stem and field.text() == "n"
    qtbot.keyClicks(field, "urse Ada")
    widget.view.mask_layer.paint((20, 20), 1)
    widget.review.accept_current()
    assert widget.controller.project.records[stem].reviewed_by == "nurse Ada"
    assert widget.controller.project.audit(stem)[-1]["user"] == "nurse Ada"
    widget.review.show_stem(stem)
    assert "nurse Ada" in widget.history.versions.item(0).text()


def test_each_status_is_one_click_kept_out_of_training_shown_and_skipped_by_y(widget, project_dir, qtbot):
    _open(widget, project_dir, qtbot)
    order = widget.review.queue.order
    marked = {}
    for status in ("no_lesion", "unusable", "second_opinion"):
        stem = widget.controller.current_stem
        qtbot.mouseClick(widget.review.status_btns[status], Qt.MouseButton.LeftButton)
        marked[stem] = status
        assert widget.controller.current_stem != stem  # went on, as Y does
    project = widget.controller.project
    for stem, status in marked.items():
        assert project.records[stem].status.value == status
        row = widget.review.queue.row_of(stem)
        assert widget.review.queue.index(row, 1).data() == status.replace("_", " ")
    lesion_free = next(s for s, v in marked.items() if v == "no_lesion")
    assert not read_mask(project_dir / "masks" / f"{lesion_free}.png").any()
    assert project.training_stems() == [lesion_free]
    last = widget.controller.current_stem
    assert last not in marked and last in order
    widget.review.accept_current()
    assert widget.controller.current_stem == last  # Y found no undecided image to go to
    assert "2 set aside" in widget.review.progress_label.text()


def test_effort_counts_seconds_strokes_and_clicks(widget, project_dir, qtbot, MouseEvent):  # noqa: N803
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    _open(widget, project_dir, qtbot)
    stem = widget.controller.current_stem
    layer = widget.view.mask_layer
    layer.mode = "paint"
    layer.brush_size = 8
    for position in ((10, 10), (30, 30)):  # two strokes of several segments each
        mouse_press_callbacks(layer, ReadOnlyWrapper(MouseEvent(type="mouse_press", position=position)))
        for step in range(1, 6):
            moved = (position[0] + 3 * step, position[1] + 2 * step)
            mouse_move_callbacks(layer, ReadOnlyWrapper(MouseEvent(type="mouse_move", is_dragging=True,
                                                                   position=moved)))
        mouse_release_callbacks(layer, ReadOnlyWrapper(MouseEvent(type="mouse_release", position=moved)))
    assert layer.data[10, 10] and layer.data[30, 30]
    clicks = widget.viewer.add_points(ndim=2, name=f"{stem} clicks")
    clicks.add([[40, 40]])
    clicks.add([[50, 50], [60, 60]])
    other = widget.viewer.add_points(ndim=2, name="elsewhere clicks")
    other.add([[5, 5]])  # another image's clicks are not this one's
    widget.review.accept_current()
    effort = widget.controller.project.records[stem].effort
    assert effort.seconds > 0 and effort.strokes == 2 and effort.clicks == 3
    widget.review.show_stem(stem)
    assert "2 strokes, 3 clicks" in widget.history.effort_label.text()
    audit = widget.controller.project.audit(stem)[-1]
    assert audit["detail"]["effort"]["strokes"] == 2
