"""Click-to-correct panel: which kind of click is armed, the click keys, and two buttons that arm
the clicks or the box. The work is the :class:`~napari_nevseg.widgets.click_tool.ClickTool`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from napari_nevseg.widgets.click_tool import ClickTool


class ClickPanel(QWidget):
    """A status line and the buttons; greyed out (with its reason) without a click model."""

    def __init__(self, tool: ClickTool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tool = tool
        self.status_label = QLabel(tool.status())
        self.status_label.setWordWrap(True)
        self.kind_btn = QPushButton("Positive ⇄ negative (W)")
        self.box_btn = QPushButton("Box (Q)")
        self.kind_btn.setToolTip("the kind of the next clicks: positive adds missed lesion, negative removes skin")
        self.box_btn.setToolTip("draw a rectangle around a lesion; clicks then refine it")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.kind_btn)
        row.addWidget(self.box_btn)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        self.kind_btn.clicked.connect(self._toggle)
        self.box_btn.clicked.connect(tool.arm_box)
        tool.status_changed.connect(self._on_status)
        self._on_status(tool.status())

    def _toggle(self) -> None:
        self.tool.toggle_kind()
        self.tool.arm_clicks()

    def _on_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.kind_btn.setEnabled(self.tool.reason_off() is None)

    def teardown(self) -> None:
        self.tool.status_changed.disconnect(self._on_status)
