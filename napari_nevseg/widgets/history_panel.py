"""Who reviews, and every saved version of the mask on screen, restorable.

The reviewer's name (the OS user until another is typed) goes with every change the dock
saves. The history lists the image's saved masks, newest first; *Restore this version* puts the
chosen one back through the project (itself a new version, so nothing is ever lost), and the
review panel shows it as one undo step. The effort recorded on the image is shown under it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_nevseg.widgets._advanced import collapsible
from napari_nevseg.widgets._click_count import ClickCount

if TYPE_CHECKING:
    from napari_nevseg.core.project import MaskVersion
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

ROWS = 4  # versions visible at once; the list scrolls for more


def version_line(version: MaskVersion) -> str:
    """``12-01 20:31 · alice · accepted · review``: one row of the history (the year and the
    seconds are in its tooltip), short enough for the dock."""
    when = version.saved_at.replace("T", " ")[5:16]
    return f"{when} · {version.user or '?'} · {version.status.value.replace('_', ' ')} · {version.action}"


class HistoryPanel(QWidget):
    """The reviewer's name, the history of the image on screen and its effort."""

    def __init__(self, controller: ReviewController, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your name (blank: the OS user)")
        self.reviewer.setToolTip("recorded with every mask and status this dock saves")
        self.versions = QListWidget()
        self.versions.setFixedHeight(ROWS * self.versions.fontMetrics().height() + 12)
        self.versions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.restore_btn = QPushButton("Restore this version")
        self.restore_btn.setToolTip("put the selected version back in masks/ and on screen (Ctrl+Z undoes it on "
                                    "screen; the history keeps every version)")
        self.effort_label = QLabel("")
        self.effort_label.setWordWrap(True)

        history = QWidget()
        inner = QVBoxLayout(history)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.versions)
        inner.addWidget(self.restore_btn)
        self.section = collapsible(history, "History")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("reviewer"))
        row.addWidget(self.reviewer, 1)
        layout.addLayout(row)
        layout.addWidget(self.effort_label)
        layout.addWidget(self.section)

        self.reviewer.textChanged.connect(controller.set_reviewer)
        self.restore_btn.clicked.connect(self.restore_selected)
        self.versions.currentRowChanged.connect(self._update_enabled)
        events = controller.events
        events.project_changed.connect(self._on_project)
        events.current_changed.connect(self.refresh)
        events.record_changed.connect(self._on_record)
        self.clicks = ClickCount(view.viewer, self._on_clicks)
        self.refresh()

    def _on_project(self, _project) -> None:
        if not self.reviewer.text():
            self.reviewer.setText(self.controller.user or "")
        self.refresh()

    def _on_record(self, stem: str) -> None:
        if stem == self.controller.current_stem:
            self.refresh()

    def _on_clicks(self, layer_name: str, added: int) -> None:
        stem = self.controller.current_stem
        if stem is not None and layer_name.startswith(f"{stem} clicks"):
            self.controller.effort.click(added)

    def refresh(self, *_) -> None:
        """List the versions of the image on screen (one small query, for that image only)."""
        stem = self.controller.current_stem
        versions = self.controller.history(stem) if stem else []
        self.versions.clear()
        for version in versions:
            item = QListWidgetItem(version_line(version))
            item.setData(Qt.ItemDataRole.UserRole, version.id)
            item.setToolTip(f"version {version.id}, saved {version.saved_at} by {version.user or 'unknown'}: "
                            f"{version.status.value.replace('_', ' ')}, {version.action}")
            self.versions.addItem(item)
        self.section.setText(f"History ({len(versions)} version{'s' * (len(versions) != 1)})")
        project = self.controller.project
        record = project.records.get(stem) if project is not None and stem else None
        if record is None:
            self.effort_label.setText("")
        else:
            e = record.effort
            by = f" · last by {record.reviewed_by}" if record.reviewed_by else ""
            # what the saved reviews recorded: this visit's work counts when it is saved
            self.effort_label.setText(f"saved effort on {stem}: {e.seconds:,.0f} s, {e.strokes:,} strokes, "
                                      f"{e.clicks:,} clicks{by}")
        self._update_enabled()

    def _update_enabled(self, *_) -> None:
        self.restore_btn.setEnabled(self.versions.currentRow() >= 0)

    def restore_selected(self) -> None:
        """Restore the selected version of the image on screen."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.errors import NevsegError

        item, stem = self.versions.currentItem(), self.controller.current_stem
        if item is None or stem is None:
            show_info("choose a version in the history first")
            return
        version_id = int(item.data(Qt.ItemDataRole.UserRole))
        try:
            self.controller.restore(stem, version_id)
        except NevsegError as exc:
            show_error(f"{exc}; the mask on screen is unchanged")
            return
        show_info(f"{stem}: version {version_id} restored (a new entry in its history)")

    def teardown(self) -> None:
        self.clicks.teardown()
