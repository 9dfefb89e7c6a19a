"""Clean-up tools for the mask being edited; each click is one Ctrl+Z-able step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState


class CleanupPanel(QWidget):
    """Keep largest region, fill holes, smooth border, on the active mask layer."""

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.largest_btn = QPushButton("Keep largest")
        self.holes_btn = QPushButton("Fill holes")
        self.smooth_btn = QPushButton("Smooth border")
        for button, tip in (
            (self.largest_btn, "remove every region but the largest"),
            (self.holes_btn, "fill background enclosed by the lesion"),
            (self.smooth_btn, "smooth the outline (Gaussian, about 0.4% of the image diagonal)"),
        ):
            button.setToolTip(tip + "; undo with Ctrl+Z")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.largest_btn, self.holes_btn, self.smooth_btn):
            layout.addWidget(button)
        self.largest_btn.clicked.connect(lambda: self.apply("keep_largest"))
        self.holes_btn.clicked.connect(lambda: self.apply("fill_holes"))
        self.smooth_btn.clicked.connect(lambda: self.apply("smooth"))

    def apply(self, step: str) -> bool:
        """Run one clean-up step on the target layer as a single undoable edit."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core import postprocess
        from napari_nevseg.widgets._layers import apply_mask_undoable

        labels = self.view.active_mask_layer()
        if labels is None:
            show_error("select a Labels layer (a mask) to clean up")
            return False
        data = np.asarray(labels.data)
        if data.ndim != 2:
            show_error(f"{labels.name!r} is not a 2-D mask; clean-up works on one image at a time")
            return False
        mask = data > 0
        func = {
            "keep_largest": postprocess.keep_largest_region,
            "fill_holes": postprocess.fill_holes,
            "smooth": postprocess.smooth_border,
        }[step]
        changed = apply_mask_undoable(labels, func(mask))
        if not changed:
            show_info(f"{step.replace('_', ' ')}: nothing to change")
        self.view.mask_edited.emit()
        return changed
