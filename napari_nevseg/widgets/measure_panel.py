"""Measurements of the lesion on screen, updated as it is edited; CSV export of the project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

#: the labels of core.measure.DISPLAY_ROWS (not imported here: it pulls in scikit-image)
ROW_NAMES = ("area", "perimeter", "max diameter", "asymmetry", "border irregularity", "solidity")


class MeasurePanel(QWidget):
    """Shows :func:`napari_nevseg.core.measure.measure_lesion` of the active mask."""

    def __init__(self, controller: ReviewController, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = view
        self.pixel_size = QDoubleSpinBox(minimum=0.0, maximum=10.0, singleStep=0.001, decimals=4, value=0.0)
        self.pixel_size.setSuffix(" mm")
        self.pixel_size.setSpecialValueText("not set (pixels only)")
        self.pixel_size.setToolTip("size of one pixel; set it to read measurements in mm")
        self.values: dict[str, QLabel] = {name: QLabel("–") for name in ROW_NAMES}
        self.title = QLabel("no mask")
        self.export_btn = QPushButton("Export project measurements (CSV)…")
        form = QFormLayout()
        form.addRow("pixel size", self.pixel_size)
        for name in ROW_NAMES:
            form.addRow(name, self.values[name])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.export_btn)
        layout.addStretch(1)
        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self.update_measurements)
        #: the mask changed while the tab was hidden: measure when it is shown
        self.stale = True
        view.mask_edited.connect(self._schedule)
        controller.events.current_changed.connect(self._schedule)
        controller.events.project_changed.connect(self._on_project)
        view.viewer.layers.selection.events.active.connect(self._on_active_layer)
        self.pixel_size.valueChanged.connect(self._on_pixel_size)
        self.export_btn.clicked.connect(self._choose_export)

    def _schedule(self, *_) -> None:
        """Measure a moment after the mask settles, and only while the tab is on screen: the
        measurements of a large photo's mask take long enough to stall every brush stroke or
        click if made behind a hidden tab (benchmarks/click_latency.py)."""
        if self.isVisible():
            self._timer.start()
        else:
            self.stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.stale:
            self._timer.start()

    def _on_active_layer(self, _event=None) -> None:
        self._schedule()

    def teardown(self) -> None:
        """Disconnect from the viewer, which outlives this panel when the dock is closed."""
        self._timer.stop()
        self.view.viewer.layers.selection.events.active.disconnect(self._on_active_layer)

    def pixel_size_mm(self) -> float | None:
        value = self.pixel_size.value()
        return value if value > 0 else None

    def _on_project(self, project) -> None:
        self.pixel_size.setValue(project.pixel_size_mm or 0.0)

    def _on_pixel_size(self, _value: float) -> None:
        if self.controller.project is not None:
            self.controller.project.pixel_size_mm = self.pixel_size_mm()
            self.controller.project.save()
        self._schedule()

    def update_measurements(self) -> dict | None:
        """Recompute from the layer on screen; returns the values shown (None: no lesion)."""
        from napari_nevseg.core.measure import display_rows, measure_lesion

        self.stale = False
        layer = self.view.active_mask_layer()
        data = None if layer is None else np.asarray(layer.data)
        if data is None or data.ndim != 2:
            self.title.setText("select a 2-D mask layer")
            for label in self.values.values():
                label.setText("–")
            return None
        self.title.setText(f"<b>{layer.name}</b>")
        result = measure_lesion(data, self.pixel_size_mm())
        if result is None:
            for label in self.values.values():
                label.setText("no lesion")
            return None
        for name, text in display_rows(result):
            self.values[name].setText(text)
        return result.as_dict()

    def _choose_export(self) -> None:
        from napari.utils.notifications import show_error
        from qtpy.QtWidgets import QFileDialog

        if self.controller.project is None:
            show_error("open a project folder first: the export covers a whole project")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export measurements", str(self.controller.project.root / "measurements.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path | None:
        """One row per project image (see :mod:`napari_nevseg.core.measurements_table`)."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.atomic import atomic_write_text
        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.core.measurements_table import measurements_csv

        project = self.controller.project
        if project is None:
            show_error("open a project folder first")
            return None
        try:
            target = atomic_write_text(path, measurements_csv(project))
        except NevsegError as exc:
            show_error(str(exc))
            return None
        show_info(f"measurements of {len(project.records):,} images written to {target}")
        return target
