"""A small live plot for the dock: training loss and validation Dice (matplotlib, made lazily)."""

from __future__ import annotations

from qtpy.QtWidgets import QVBoxLayout, QWidget


class LivePlot(QWidget):
    """Loss per step (left axis) and validation Dice per epoch (right axis); redraws are cheap
    (``draw_idle``), so updating after every step does not stall the GUI."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.canvas = None
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[float] = []
        self.dices: list[float] = []
        self.setMinimumHeight(180)

    def _ensure(self) -> None:
        if self.canvas is not None:
            return
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(3.6, 2.2), dpi=90, facecolor="#262930", tight_layout=True)
        self.ax_loss = figure.add_subplot(111)
        self.ax_dice = self.ax_loss.twinx()
        for ax in (self.ax_loss, self.ax_dice):
            ax.set_facecolor("#262930")
            ax.tick_params(colors="#d0d0d0", labelsize=7)
            for spine in ax.spines.values():
                spine.set_color("#707070")
        self.ax_loss.set_xlabel("step", color="#d0d0d0", fontsize=8)
        self.ax_loss.set_ylabel("training loss", color="#f0a030", fontsize=8)
        self.ax_dice.set_ylabel("validation Dice", color="#40d080", fontsize=8)
        (self.loss_line,) = self.ax_loss.plot([], [], color="#f0a030", lw=1)
        (self.dice_line,) = self.ax_dice.plot([], [], color="#40d080", marker="o", ms=3, lw=1)
        self.canvas = FigureCanvasQTAgg(figure)
        self._layout.addWidget(self.canvas)

    def reset(self) -> None:
        self._ensure()
        self.steps, self.losses, self.epochs, self.dices = [], [], [], []
        self._redraw()

    def add_step(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)

    def add_epoch(self, step: int, dice: float) -> None:
        self.epochs.append(step)
        self.dices.append(dice)

    def _redraw(self) -> None:
        self.loss_line.set_data(self.steps, self.losses)
        self.dice_line.set_data(self.epochs, self.dices)
        self.ax_loss.relim()
        self.ax_loss.autoscale_view()
        self.ax_dice.set_ylim(min([0.5, *self.dices]) - 0.02, 1.0)
        self.canvas.draw_idle()

    def redraw(self) -> None:
        self._ensure()
        self._redraw()


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
