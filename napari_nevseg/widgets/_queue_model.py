"""The review queue as a Qt model: rows are answered on demand, a changed record repaints its
own row only (``dataChanged`` for one row), and the order is rebuilt only when asked (a new
project, another sort mode, the end of a batch), so rows do not jump under the reviewer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt

if TYPE_CHECKING:
    from napari_nevseg.widgets.controller import ReviewController

HEADERS = ("image", "status", "uncert.", "Dice")
TOOLTIPS = {3: "Dice between the prediction and the reviewed mask"}


class QueueModel(QAbstractTableModel):
    """One row per project image, in the controller's order at the last :meth:`rebuild`."""

    def __init__(self, controller: ReviewController) -> None:
        super().__init__()
        self.controller = controller
        self._order: list[str] = []
        self._rows: dict[str, int] = {}

    # -- what the view asks ------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802 (Qt's name)
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        project = self.controller.project
        stem = self._order[index.row()]
        record = project.records.get(stem) if project is not None else None
        if record is None:
            return None
        column = index.column()
        if column == 0:
            return stem
        if column == 1:
            return record.status.value.replace("_", " ")
        value = record.uncertainty if column == 2 else record.dice_prediction_vs_final
        return "" if value is None else f"{value:.3f}"

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS.get(section)
        return None

    # -- what the panel tells it ---------------------------------------------------------------
    def rebuild(self) -> None:
        """Take the controller's order again (O(N log N): once per project, sort or batch)."""
        self.beginResetModel()
        self._order = self.controller.order()
        self._rows = {stem: row for row, stem in enumerate(self._order)}
        self.endResetModel()

    def clear(self) -> None:
        """No rows (the project was closed)."""
        self.beginResetModel()
        self._order, self._rows = [], {}
        self.endResetModel()

    def row_changed(self, stem: str) -> None:
        """Repaint the row of ``stem`` (O(1))."""
        row = self._rows.get(stem)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    @property
    def order(self) -> list[str]:
        """Stems in the order shown."""
        return list(self._order)

    def row_of(self, stem: str | None) -> int | None:
        return self._rows.get(stem) if stem is not None else None

    def stem_at(self, row: int) -> str | None:
        return self._order[row] if 0 <= row < len(self._order) else None
