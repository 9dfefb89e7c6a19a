"""One row of display options for the lesion masks: outline or fill, and the colour.

The overlay must stay readable on red skin and for colour-blind reviewers, so the colours are
the colour-blind-safe palette of :data:`napari_nevseg.widgets._layers.MASK_COLOURS`. The row
restyles every NevSeg mask layer in the viewer, and the ones added later, so the choice
follows the reviewer from image to image. It changes how masks are drawn, never their data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from napari_nevseg.widgets._layers import COMPARISON, MASK_COLOURS, MASK_KEY, MaskStyle, apply_mask_style

if TYPE_CHECKING:
    import napari
    from napari.layers import Labels

MODES = ("outline", "fill")


def _swatch(hex_colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(hex_colour))
    return QIcon(pixmap)


class MaskDisplayRow(QWidget):
    """``mask  [outline ▾]  [■ sky blue ▾]``, applied to every NevSeg mask layer."""

    def __init__(self, viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.style = MaskStyle()
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("outline: the skin under the border stays visible; fill: holes and specks stand out")
        self.colour = QComboBox()
        for name, hex_colour in MASK_COLOURS.items():
            self.colour.addItem(_swatch(hex_colour), name)
        self.colour.setToolTip("colour-blind-safe colours (Okabe-Ito); pick one that stands out on this skin")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("mask"))
        layout.addWidget(self.mode, 1)
        layout.addWidget(self.colour, 2)
        self.mode.currentTextChanged.connect(self._on_choice)
        self.colour.currentTextChanged.connect(self._on_choice)
        viewer.layers.events.inserted.connect(self._on_inserted)

    def teardown(self) -> None:
        """Disconnect from the viewer, which outlives this row when the dock is closed."""
        self.viewer.layers.events.inserted.disconnect(self._on_inserted)

    def mask_layers(self) -> list[Labels]:
        from napari.layers import Labels

        return [layer for layer in self.viewer.layers if isinstance(layer, Labels) and layer.metadata.get(MASK_KEY)]

    def set_style(self, style: MaskStyle) -> None:
        """Use ``style`` for every mask layer now in the viewer and every one added later."""
        self.style = style
        for combo, text in ((self.mode, MODES[0] if style.outline else MODES[1]), (self.colour, style.colour)):
            combo.blockSignals(True)
            combo.setCurrentText(text)
            combo.blockSignals(False)
        for layer in self.mask_layers():
            apply_mask_style(layer, self.style_for(layer))

    def style_for(self, layer: Labels) -> MaskStyle:
        """The row's style, or its comparison style for a second mask shown beside one."""
        return self.style.for_comparison() if layer.metadata.get(MASK_KEY) == COMPARISON else self.style

    def _on_choice(self, *_) -> None:
        self.set_style(MaskStyle(colour=self.colour.currentText(), outline=self.mode.currentText() == MODES[0],
                                 outline_width=self.style.outline_width, fill_opacity=self.style.fill_opacity))

    def _on_inserted(self, event) -> None:
        """A new mask follows the row unless it already looks the part (a mask made like the
        previous one keeps the opacity and outline width the reviewer set in napari)."""
        layer = event.value
        if layer.metadata.get(MASK_KEY) and not self._looks_styled(layer):
            apply_mask_style(layer, self.style_for(layer))

    def _looks_styled(self, layer: Labels) -> bool:
        style = self.style_for(layer)
        shown = np.asarray(layer.colormap.map(np.array([1])))[0, :3]
        wanted = np.array(QColor(style.hex).getRgbF()[:3])
        return bool(np.allclose(shown, wanted, atol=1 / 255)) and (layer.contour > 0) == style.outline
