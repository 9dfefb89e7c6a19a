"""Review panel: a project's queue, one image on screen at a time, next / previous / accept.

Keys (shortcuts of the viewer's window, so they work wherever the focus is, except in a text
or number field being edited): ``N`` or PageDown: next image; ``Shift+N`` or PageUp: previous
image; ``Y``: accept and go to the next image not decided yet. *No lesion*, *unusable* and
*second opinion* mark the image and go on in the same way.
Leaving an image whose mask was edited saves it as *corrected*; accepting saves it at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from napari_nevseg.widgets._layers import add_mask_layer
from napari_nevseg.widgets._queue_model import QueueModel
from napari_nevseg.widgets.controller import SORT_MODES

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

#: the project an image layer came from, so a reopened dock resumes it
PROJECT_KEY = "nevseg_project"
#: Labels modes in which a mouse press paints: each press-to-release is one stroke of the effort
STROKE_MODES = ("paint", "erase", "fill")


def _remove_callback(callbacks: list, callback) -> None:
    if callback in callbacks:
        callbacks.remove(callback)


def _button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    return button


class ReviewPanel(QWidget):
    """The queue over a project folder."""

    def __init__(self, controller: ReviewController, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = view
        self.open_btn = QPushButton("Open project folder…")
        self.path_label = QLabel("no project open")
        self.path_label.setWordWrap(True)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(SORT_MODES)
        self.queue = QueueModel(controller)
        self.table = QTableView()
        self.table.setModel(self.queue)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(160)
        self.prev_btn = QPushButton("◀ Previous (Shift+N)")
        self.accept_btn = QPushButton("Accept (Y)")
        self.next_btn = QPushButton("Next (N) ▶")
        self.status_btns = {
            "no_lesion": _button("No lesion", "save an empty mask (training data) and go on"),
            "unusable": _button("Unusable", "keep this image out of training and go on"),
            "second_opinion": _button("2nd opinion", "ask for a second opinion: out of training until then; go on"),
        }
        self.edit_label = QLabel("")
        self.edit_label.setWordWrap(True)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.open_btn)
        layout.addWidget(self.path_label)
        sort_row = QHBoxLayout()
        sort_row.addWidget(QLabel("order"))
        sort_row.addWidget(self.sort_combo, 1)
        layout.addLayout(sort_row)
        layout.addWidget(self.table)
        nav = QHBoxLayout()
        for button in (self.prev_btn, self.accept_btn, self.next_btn):
            nav.addWidget(button)
        layout.addLayout(nav)
        marks = QHBoxLayout()
        for button in self.status_btns.values():
            marks.addWidget(button)
        layout.addLayout(marks)
        layout.addWidget(self.edit_label)
        layout.addWidget(self.progress_label)

        self.open_btn.clicked.connect(self._choose_project)
        self.sort_combo.currentTextChanged.connect(controller.set_sort_mode)
        self.table.clicked.connect(self._on_row_clicked)
        self.prev_btn.clicked.connect(self.previous_image)
        self.next_btn.clicked.connect(self.next_image)
        self.accept_btn.clicked.connect(self.accept_current)
        for status, button in self.status_btns.items():
            button.clicked.connect(lambda _=False, status=status: self.mark_current(status))
        events = controller.events
        events.project_changed.connect(self._on_project)
        events.order_changed.connect(self._rebuild)
        events.record_changed.connect(self._on_record)
        events.current_changed.connect(self._on_current)
        events.session_changed.connect(self._update_edit_label)
        events.save_requested.connect(self.save_current_edits)
        events.mask_replaced.connect(self._on_mask_replaced)
        # napari announces a stroke before it writes the pixels: look a moment later (also
        # one comparison per burst of strokes, not per mouse move)
        self._edit_timer = QTimer(self, singleShot=True, interval=100)
        self._edit_timer.timeout.connect(self._update_edit_label)
        view.mask_edited.connect(lambda: self._edit_timer.start())
        self._update_enabled()

    # -- project -------------------------------------------------------------------------
    def _choose_project(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open a project folder (with images/)")
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str | Path, stem: str | None = None) -> bool:
        """Open a project folder; shows ``stem`` (default: the first image in the queue)."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.errors import NevsegError

        try:
            project = self.controller.open_project(folder)
        except NevsegError as exc:
            show_error(str(exc))
            return False
        show_info(f"project {project.root.name}: {len(project.records):,} images, "
                  f"{self.controller.reviewed_count():,} reviewed")
        first = stem if stem in project.records else self.queue.stem_at(0)
        if first is not None:
            self.show_stem(first, auto_predict=False)
        return True

    def _on_project(self, project) -> None:
        self.path_label.setText(str(project.root))
        self._rebuild()
        self._update_enabled()

    def _rebuild(self, *_) -> None:
        self.queue.rebuild()
        self._select_current()
        self._update_progress()

    def _on_record(self, stem: str) -> None:
        self.queue.row_changed(stem)
        self._update_progress()
        if stem == self.controller.current_stem:
            self._update_edit_label()

    def _on_current(self, _stem: str) -> None:
        self._select_current()
        self._update_progress()
        self._update_edit_label()

    def _select_current(self) -> None:
        row = self.queue.row_of(self.controller.current_stem)
        if row is not None:
            self.table.selectRow(row)
            self.table.scrollTo(self.queue.index(row, 0))

    def _update_progress(self) -> None:
        """Counts kept by the controller: O(1), however large the project."""
        project = self.controller.project
        if project is None:
            self.progress_label.setText("")
            return
        counts = self.controller.counts
        done, total = self.controller.reviewed_count(), len(project.records)
        self.progress_label.setText(
            f"{done:,} of {total:,} reviewed ({100 * done / max(total, 1):.0f}%) · "
            f"{counts['predicted']:,} predicted, {counts['unreviewed']:,} not predicted"
            + (f", {aside:,} set aside" if (aside := counts["unusable"] + counts["second_opinion"]) else "")
        )

    def _update_edit_label(self, *_) -> None:
        """Say whether the mask on screen differs from the file on disk, and what Next does."""
        from napari_nevseg.widgets._edit_status import edit_status

        self.edit_label.setText(edit_status(self.controller, self.view))

    def _update_enabled(self) -> None:
        has = self.controller.project is not None
        for button in (self.prev_btn, self.next_btn, self.accept_btn, *self.status_btns.values()):
            button.setEnabled(has)

    def _on_row_clicked(self, index) -> None:
        stem = self.queue.stem_at(index.row())
        if stem is not None:
            self.show_stem(stem)

    # -- showing one image ------------------------------------------------------------------
    def show_stem(self, stem: str, auto_predict: bool = True) -> None:
        """Save edits of the image on screen, then show ``stem`` with its best mask."""
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError

        project = self.controller.project
        if project is None or stem not in project.records:
            return
        self.save_current_edits()
        try:
            image = project.read_image(stem)
            mask = project.read_mask(stem, image.shape[:2])
            if mask is None:
                mask = project.read_prediction(stem, image.shape[:2])
        except NevsegError as exc:
            show_error(f"{exc} (skipping {stem})")
            return
        self._put_layers(stem, image, mask)
        self.controller.set_current(stem)
        if auto_predict and mask is None and self.controller.session is not None and not self.controller.is_busy("predict"):
            self.controller.events.predict_requested.emit("current")

    def _put_layers(self, stem: str, image: np.ndarray, mask: np.ndarray | None) -> None:
        view, viewer = self.view, self.view.viewer
        old_image, old_mask = view.image_layer, view.mask_layer
        reset = True
        if view.layer_in_viewer(old_image):
            reset = old_image.data.shape != image.shape
            old_image.data = image
            old_image.name = stem
            image_layer = old_image
        else:
            image_layer = viewer.add_image(image, name=stem, rgb=True)
        image_layer.metadata[PROJECT_KEY] = str(self.controller.project.root)
        like = old_mask if view.layer_in_viewer(old_mask) else None
        shown = mask if mask is not None else np.zeros(image.shape[:2], bool)
        mask_layer = add_mask_layer(viewer, shown, f"{stem} mask", like=like)
        if like is not None:
            mode = like.mode
            like.events.paint.disconnect(self._on_paint)
            _remove_callback(like.mouse_drag_callbacks, self._on_mask_press)
            viewer.layers.remove(like)
            mask_layer.mode = mode
        view.image_layer, view.mask_layer = image_layer, mask_layer
        view.tie(image_layer, mask_layer)
        view.baseline = shown.copy()
        viewer.layers.selection.active = mask_layer
        if reset:
            viewer.reset_view()
        mask_layer.events.paint.connect(self._on_paint)
        mask_layer.mouse_drag_callbacks.append(self._on_mask_press)
        view.mask_edited.emit()

    def _on_paint(self, _event=None) -> None:
        self.view.mask_edited.emit()

    def _on_mask_press(self, layer, _event) -> None:
        """A press in a painting mode is one stroke, however many segments napari paints until
        the release; a mask the dock puts on screen (a prediction, a restore) is none."""
        if layer.mode in STROKE_MODES:
            self.controller.effort.stroke()

    def _on_mask_replaced(self, stem: str, mask: np.ndarray) -> None:
        """A restored version (or the empty mask of *no lesion*) goes on screen as one undo step."""
        from napari_nevseg.widgets._layers import apply_mask_undoable

        if stem != self.controller.current_stem or not self.view.layer_in_viewer(self.view.mask_layer):
            return
        apply_mask_undoable(self.view.mask_layer, mask)
        self.view.baseline = np.asarray(mask) > 0
        self.view.mask_edited.emit()

    def teardown(self) -> None:
        """Let go of the viewer's layers, which outlive a closed dock."""
        self._edit_timer.stop()
        self.queue.clear()
        if self.view.mask_layer is not None:
            self.view.mask_layer.events.paint.disconnect(self._on_paint)
            _remove_callback(self.view.mask_layer.mouse_drag_callbacks, self._on_mask_press)

    # -- review actions --------------------------------------------------------------------
    def save_current_edits(self) -> bool:
        """Write the mask on screen if it was edited (status *corrected*); True if written."""
        stem = self.controller.current_stem
        if self.controller.project is None or stem is None or not self.view.is_dirty():
            return False
        return self._write(stem)

    def _write(self, stem: str) -> bool:
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError

        mask = self.view.current_mask()
        try:
            self.controller.review(stem, mask)
        except NevsegError as exc:
            show_error(f"{exc}; the mask is still on screen, nothing was lost")
            return False
        self.view.baseline = mask.copy()
        self._update_edit_label()
        return True

    def accept_current(self) -> None:
        """Save the mask on screen as reviewed, then go to the next image not decided yet."""
        from napari.utils.notifications import show_warning

        stem = self.controller.current_stem
        if self.controller.project is None or stem is None:
            show_warning("open a project folder first (the queue is empty)")
            return
        if self.view.current_mask() is None:
            show_warning("the mask layer of this image was deleted; go to another image and back")
            return
        if self._write(stem):
            self._go_on(stem)

    def mark_current(self, status: str) -> None:
        """Mark the image on screen (no lesion, unusable, second opinion), then go on as Y does."""
        from napari.utils.notifications import show_error, show_warning

        from napari_nevseg.core.errors import NevsegError

        stem = self.controller.current_stem
        if self.controller.project is None or stem is None:
            show_warning("open a project folder first (the queue is empty)")
            return
        try:
            self.controller.set_status(stem, status)
        except NevsegError as exc:
            show_error(f"{exc}; the mask is still on screen, nothing was lost")
            return
        self._go_on(stem)

    def _go_on(self, stem: str) -> None:
        from napari.utils.notifications import show_info

        following = self.controller.next_unreviewed(self.queue.order, stem)
        if following is None:
            show_info("every image of the project is reviewed or marked")
            return
        self.show_stem(following)

    def _step(self, delta: int) -> None:
        total = self.queue.rowCount()
        if not total:
            return
        row = self.queue.row_of(self.controller.current_stem)
        row = -1 if row is None else row
        self.show_stem(self.queue.stem_at((row + delta) % total))

    def next_image(self) -> None:
        self._step(+1)

    def previous_image(self) -> None:
        self._step(-1)
