"""Review panel: a project's queue, one image on screen at a time, next / previous / accept.

Keys (viewer-wide, chosen not to clash with napari's layer shortcuts):
``N`` or PageDown: next image; ``Shift+N`` or PageUp: previous image; ``Y``: accept and go on.
Leaving an image whose mask was edited saves it as *corrected*; accepting saves it at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_nevseg.widgets._layers import add_mask_layer

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import AppState
    from napari_nevseg.widgets._workers import Predicted

SORT_MODES = ("name", "uncertainty (least certain first)", "status")
KEYS = {"next": ("n", "PageDown"), "previous": ("Shift-N", "PageUp"), "accept": ("y",)}
STATUS_ORDER = {"unreviewed": 0, "predicted": 1, "corrected": 2, "accepted": 3}


class ReviewPanel(QWidget):
    """The queue over a project folder."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.predict_panel = None
        self.open_btn = QPushButton("Open project folder…")
        self.path_label = QLabel("no project open")
        self.path_label.setWordWrap(True)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(SORT_MODES)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["image", "status", "uncert.", "Dice"])
        self.table.horizontalHeaderItem(3).setToolTip("Dice between the prediction and the reviewed mask")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(160)
        self.prev_btn = QPushButton("◀ Previous (Shift+N)")
        self.accept_btn = QPushButton("Accept (Y)")
        self.next_btn = QPushButton("Next (N) ▶")
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
        layout.addWidget(self.progress_label)

        self.open_btn.clicked.connect(self._choose_project)
        self.sort_combo.currentIndexChanged.connect(self.refresh_table)
        self.table.cellClicked.connect(self._on_row_clicked)
        self.prev_btn.clicked.connect(self.previous_image)
        self.next_btn.clicked.connect(self.next_image)
        self.accept_btn.clicked.connect(self.accept_current)
        state.records_changed.connect(self.refresh_table)
        self._bind_keys()
        self._update_enabled()

    # -- keys ----------------------------------------------------------------------------
    def _bind_keys(self) -> None:
        viewer = self.state.viewer
        actions = {"next": self.next_image, "previous": self.previous_image, "accept": self.accept_current}
        for action, keys in KEYS.items():
            for key in keys:
                viewer.bind_key(key, lambda _v, f=actions[action]: f(), overwrite=True)

    def unbind_keys(self) -> None:
        for keys in KEYS.values():
            for key in keys:
                self.state.viewer.bind_key(key, None, overwrite=True)

    # -- project -------------------------------------------------------------------------
    def _choose_project(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open a project folder (with images/)")
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str | Path) -> bool:
        """Open a project folder; restores statuses and shows the first image in the queue."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.core.project import Project
        from napari_nevseg.core.registry import ModelRegistry

        self.save_current_edits()
        try:
            project = Project.open(folder)
            registry = ModelRegistry(project.models_dir)
        except NevsegError as exc:
            show_error(str(exc))
            return False
        self.state.project = project
        self.state.registry = registry
        self.state.current_stem = None
        self.path_label.setText(str(project.root))
        self.state.project_changed.emit(project)
        self.refresh_table()
        counts = project.counts()
        show_info(f"project {project.root.name}: {len(project.records)} images, "
                  f"{counts['accepted'] + counts['corrected']} reviewed")
        order = self.order()
        if order:
            self.show_stem(order[0], auto_predict=False)
        if self.predict_panel is not None and self.state.session is not None and any(
            r.status.value == "unreviewed" for r in project.records.values()
        ):
            self.predict_panel.predict_project()
        self._update_enabled()
        return True

    def order(self) -> list[str]:
        """Stems in the order chosen in the sort box."""
        project = self.state.project
        if project is None:
            return []
        records = project.records
        mode = self.sort_combo.currentText()
        if mode.startswith("uncertainty"):
            return sorted(records, key=lambda s: (records[s].status.reviewed, -(records[s].uncertainty or -1.0), s))
        if mode == "status":
            return sorted(records, key=lambda s: (STATUS_ORDER[records[s].status.value], s))
        return sorted(records)

    def refresh_table(self, *_) -> None:
        project = self.state.project
        order = self.order()
        self.table.setRowCount(len(order))
        for row, stem in enumerate(order):
            record = project.records[stem]
            cells = [
                stem,
                record.status.value,
                "" if record.uncertainty is None else f"{record.uncertainty:.3f}",
                "" if record.dice_prediction_vs_final is None else f"{record.dice_prediction_vs_final:.3f}",
            ]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
            if stem == self.state.current_stem:
                self.table.selectRow(row)
        self._update_progress()

    def _update_progress(self) -> None:
        project = self.state.project
        if project is None:
            self.progress_label.setText("")
            return
        counts = project.counts()
        done = counts["accepted"] + counts["corrected"]
        total = len(project.records)
        stem = self.state.current_stem
        current = f"<b>{stem}</b> ({project.records[stem].status.value}) · " if stem in project.records else ""
        self.progress_label.setText(
            f"{current}{done} of {total} reviewed ({100 * done / max(total, 1):.0f}%) · "
            f"{counts['predicted']} predicted, {counts['unreviewed']} not predicted"
        )

    def _update_enabled(self) -> None:
        has = self.state.project is not None
        for button in (self.prev_btn, self.next_btn, self.accept_btn):
            button.setEnabled(has)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.show_stem(item.text())

    # -- showing one image ------------------------------------------------------------------
    def show_stem(self, stem: str, auto_predict: bool = True) -> None:
        """Save edits of the image on screen, then show ``stem`` with its best mask."""
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError

        project = self.state.project
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
        self.state.current_stem = stem
        self.state.current_changed.emit(stem)
        self.refresh_table()
        if auto_predict and mask is None and self.predict_panel is not None and self.state.session is not None and not self.state.is_busy("predict"):
            self.predict_panel.predict_layers([self.state.image_layer])

    def _put_layers(self, stem: str, image: np.ndarray, mask: np.ndarray | None) -> None:
        viewer = self.state.viewer
        old_image, old_mask = self.state.image_layer, self.state.mask_layer
        reset = True
        if self.state.layer_in_viewer(old_image):
            reset = old_image.data.shape != image.shape
            old_image.data = image
            old_image.name = stem
            image_layer = old_image
        else:
            image_layer = viewer.add_image(image, name=stem, rgb=True)
        like = old_mask if self.state.layer_in_viewer(old_mask) else None
        shown = mask if mask is not None else np.zeros(image.shape[:2], bool)
        mask_layer = add_mask_layer(viewer, shown, f"{stem} mask", like=like)
        if like is not None:
            mode = like.mode
            viewer.layers.remove(like)
            mask_layer.mode = mode
        self.state.image_layer, self.state.mask_layer = image_layer, mask_layer
        self.state.tie(image_layer, mask_layer)
        self.state.baseline = shown.copy()
        viewer.layers.selection.active = mask_layer
        if reset:
            viewer.reset_view()
        mask_layer.events.paint.connect(self._on_paint)
        self.state.mask_edited.emit()

    def _on_paint(self, _event=None) -> None:
        self.state.mask_edited.emit()

    def prediction_shown(self, result: Predicted) -> None:
        """A prediction for the image on screen arrived (from either predict path)."""
        from napari.layers import Image

        project, stem = self.state.project, self.state.current_stem
        if project is None or stem is None:
            return
        if isinstance(result.key, Image):
            project.record_prediction(stem, result.mask, result.version, result.uncertainty)
            self.state.baseline = result.mask.copy()
            self.state.records_changed.emit()
            return
        if not self.state.is_dirty() and not project.records[stem].status.reviewed:
            from napari_nevseg.widgets._layers import apply_mask_undoable

            if self.state.layer_in_viewer(self.state.mask_layer):
                apply_mask_undoable(self.state.mask_layer, result.mask)
                self.state.baseline = result.mask.copy()
                self.state.mask_edited.emit()

    # -- review actions --------------------------------------------------------------------
    def save_current_edits(self) -> bool:
        """Write the mask on screen if it was edited (status *corrected*); True if written."""
        project, stem = self.state.project, self.state.current_stem
        if project is None or stem is None or not self.state.is_dirty():
            return False
        return self._write(stem)

    def _write(self, stem: str) -> bool:
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError

        mask = self.state.current_mask()
        try:
            self.state.project.review(stem, mask)
        except NevsegError as exc:
            show_error(f"{exc}; the mask is still on screen, nothing was lost")
            return False
        self.state.baseline = mask.copy()
        self.state.records_changed.emit()
        return True

    def accept_current(self) -> None:
        """Save the mask on screen as reviewed (accepted or corrected), then go to the next."""
        from napari.utils.notifications import show_warning

        project, stem = self.state.project, self.state.current_stem
        if project is None or stem is None:
            show_warning("open a project folder first (the queue is empty)")
            return
        if self.state.current_mask() is None:
            show_warning("the mask layer of this image was deleted; go to another image and back")
            return
        if self._write(stem):
            self.next_image()

    def _step(self, delta: int) -> None:
        order = self.order()
        if not order:
            return
        stem = self.state.current_stem
        index = order.index(stem) if stem in order else -1
        self.show_stem(order[(index + delta) % len(order)])

    def next_image(self) -> None:
        self._step(+1)

    def previous_image(self) -> None:
        self._step(-1)
