"""Small plots for the dock: the live training curve (QPainter) and corrections per model
version (matplotlib, made lazily)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QVBoxLayout, QWidget

_BACKGROUND = QColor("#262930")
_AXES = QColor("#707070")
_TEXT = QColor("#d0d0d0")
_LOSS = QColor("#f0a030")
_DICE = QColor("#40d080")


class LivePlot(QWidget):
    """Training loss per step (left axis) and validation Dice per epoch (right axis).

    Painted with QPainter in ``paintEvent``, cheap enough to follow every training step without
    stalling the viewer, which a matplotlib render of the same figure per step was not
    (docs/benchmarks.md).
    ``redraw`` only schedules a repaint; Qt merges repaints that pile up.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[float] = []
        self.dices: list[float] = []
        self.validated = True
        self.setMinimumHeight(180)

    def reset(self, validated: bool = True) -> None:
        """Empty the plot for a new run; ``validated``: whether a validation pool scores it (a run
        of a handful of images has none, and its plot then shows no Dice axis to wait for)."""
        self.steps, self.losses, self.epochs, self.dices = [], [], [], []
        self.validated = validated
        self.update()

    def add_step(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.steps.append(step)
            self.losses.append(loss)

    def add_epoch(self, step: int, dice: float) -> None:
        self.epochs.append(step)
        self.dices.append(dice)

    def redraw(self) -> None:
        """Schedule a repaint with the data added so far."""
        self.update()

    def legend_right(self) -> str:
        """The right-hand legend: the Dice series, or why there is none."""
        return "validation Dice ●" if self.validated else "no validation pool"

    # -- painting ---------------------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("0.000") + 10
        right = fm.horizontalAdvance("0.00") + 10
        return QRectF(left, 8, max(10, self.width() - left - right), max(10, self.height() - 8 - 2.2 * fm.height()))

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), _BACKGROUND)
        rect = self._plot_rect()
        fm = self.fontMetrics()
        x_max = max([1, *self.steps, *self.epochs])
        loss_hi = max(self.losses) * 1.05 if self.losses else 1.0
        dice_lo = round(max(0.0, min(self.dices) - 0.05), 2) if self.dices else 0.5

        def px(step: float) -> float:
            return rect.left() + rect.width() * step / x_max

        def py(value: float, lo: float, hi: float) -> float:
            return rect.bottom() - rect.height() * (value - lo) / max(hi - lo, 1e-9)

        painter.setPen(QPen(_AXES, 1))
        painter.drawRect(rect)
        for frac in (0.0, 0.5, 1.0):
            y = rect.bottom() - rect.height() * frac
            painter.setPen(_LOSS)
            painter.drawText(QRectF(0, y - fm.height() / 2, rect.left() - 4, fm.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{loss_hi * frac:.3f}")
            if self.validated:
                painter.setPen(_DICE)
                painter.drawText(QRectF(rect.right() + 4, y - fm.height() / 2, 60, fm.height()),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 f"{dice_lo + (1 - dice_lo) * frac:.2f}")
        painter.setPen(_TEXT)
        painter.drawText(QRectF(rect.left(), rect.bottom() + 2, rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignRight, f"step {x_max}")
        painter.drawText(QRectF(rect.left(), rect.bottom() + 2 + fm.height(), rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft, "— training loss")
        painter.setPen(_DICE if self.validated else _TEXT)
        painter.drawText(QRectF(rect.left(), rect.bottom() + 2 + fm.height(), rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignRight, self.legend_right())
        if self.losses:
            painter.setPen(QPen(_LOSS, 1.2))
            painter.drawPolyline(QPolygonF([QPointF(px(s), py(v, 0.0, loss_hi))
                                            for s, v in zip(self.steps, self.losses, strict=True)]))
        if self.dices:
            points = [QPointF(px(s), py(v, dice_lo, 1.0)) for s, v in zip(self.epochs, self.dices, strict=True)]
            painter.setPen(QPen(_DICE, 1.2))
            painter.drawPolyline(QPolygonF(points))
            painter.setBrush(_DICE)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)
        painter.end()


class CorrectionsPlot(QWidget):
    """Mean Dice(prediction, final mask) per model version: how much correcting each needed.

    Bars rising from version to version mean the reviewers have less and less to fix.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.canvas = None
        self.values: dict[str, float] = {}
        self.setMinimumHeight(120)

    def _ensure(self) -> None:
        if self.canvas is not None:
            return
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(3.6, 1.5), dpi=90, facecolor="#262930", tight_layout=True)
        self.ax = figure.add_subplot(111)
        self.canvas = FigureCanvasQTAgg(figure)
        self._layout.addWidget(self.canvas)

    def set_values(self, values: dict[str, float]) -> None:
        """``{version: mean Dice(prediction, final)}`` in version order."""
        self.values = dict(values)
        if not self.values and self.canvas is None:
            return  # nothing to show yet: do not pay for matplotlib
        self._ensure()
        ax = self.ax
        ax.clear()
        ax.set_facecolor("#262930")
        ax.tick_params(colors="#d0d0d0", labelsize=7)
        for spine in ax.spines.values():
            spine.set_color("#707070")
        names = list(self.values)
        heights = [self.values[n] for n in names]
        ax.bar(names, heights, color="#40a0f0")
        for x, h in enumerate(heights):
            ax.text(x, h, f"{h:.3f}", ha="center", va="bottom", color="#d0d0d0", fontsize=7)
        ax.set_ylim(min([0.8, *heights]) - 0.02, 1.02)
        ax.set_ylabel("Dice(pred, final)", color="#d0d0d0", fontsize=8)
        self.canvas.draw_idle()
