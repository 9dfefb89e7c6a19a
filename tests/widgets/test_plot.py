"""The live training plot paints its data (QPainter, no matplotlib in the training loop)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from napari_nevseg.widgets._plot import _DICE, _LOSS, LivePlot


def _pixels(widget, path) -> np.ndarray:
    assert widget.grab().save(str(path))
    return np.asarray(Image.open(path).convert("RGB"))


def _has_colour(pixels: np.ndarray, colour) -> bool:
    rgb = np.array([colour.red(), colour.green(), colour.blue()])
    return bool((np.abs(pixels.astype(int) - rgb).sum(axis=-1) < 30).sum() > 20)


def test_live_plot_draws_loss_and_dice(qtbot, tmp_path):
    plot = LivePlot()
    qtbot.addWidget(plot)
    plot.resize(360, 200)
    plot.reset()
    empty = _pixels(plot, tmp_path / "empty.png")
    assert not _has_colour(empty[20:-40, 60:-60], _LOSS)
    for step in range(60):
        plot.add_step(step, 1.0 / (1 + step))
        if step % 10 == 9:
            plot.add_epoch(step, 0.6 + step / 200)
        plot.redraw()
    plot.add_step(61, float("nan"))  # a diverged step is not plotted and breaks nothing
    drawn = _pixels(plot, tmp_path / "drawn.png")
    assert _has_colour(drawn[20:-40, 60:-60], _LOSS)
    assert _has_colour(drawn[20:-40, 60:-60], _DICE)
    assert len(plot.losses) == 60 and len(plot.dices) == 6

