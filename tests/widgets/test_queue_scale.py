"""GUI-thread work per finished prediction does not grow with the project (issue 12, item 10):
SQL statements, queue rows repainted and file ``stat`` calls per image, counted (not timed) in
projects of 200 and 2,000 tiny images."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FINISHED = 25  # predictions counted per project


def _tiny_project(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(pixels).save(root / "images" / f"img{i:05d}.png")
    return root


def _gui_work_per_image(viewer, qtbot, root: Path, monkeypatch) -> dict[str, float]:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets._workers import Predicted
    from napari_nevseg.widgets.controller import SORT_MODES, ReviewController
    from napari_nevseg.widgets.finetune_panel import FinetunePanel
    from napari_nevseg.widgets.predict_panel import PredictPanel
    from napari_nevseg.widgets.review_panel import ReviewPanel

    controller, view = ReviewController(), ViewState(viewer)
    panels = [ReviewPanel(controller, view), PredictPanel(controller, view), FinetunePanel(controller, view)]
    for panel in panels:
        qtbot.addWidget(panel)
    review, predict = panels[0], panels[1]
    review.sort_combo.setCurrentText(SORT_MODES[1])
    assert review.open_project(root)
    project = controller.project
    stems = sorted(project.records)[-FINISHED:]
    mask = np.ones((8, 8), bool)
    for stem in stems:  # the worker's half: encode and write each prediction file
        project.write_prediction_file(stem, mask)

    counts = {"sql": 0, "rows": 0, "stat": 0}
    main = threading.get_ident()

    def on_rows(top, bottom, *_):
        counts["rows"] += bottom.row() - top.row() + 1

    review.queue.dataChanged.connect(on_rows)
    review.queue.modelReset.connect(lambda: counts.__setitem__("rows", counts["rows"] + review.queue.rowCount()))
    real_stat, real_lstat = os.stat, os.lstat

    def stat(*args, **kwargs):
        counts["stat"] += threading.get_ident() == main
        return real_stat(*args, **kwargs)

    def lstat(*args, **kwargs):
        counts["stat"] += threading.get_ident() == main
        return real_lstat(*args, **kwargs)

    project.store.trace(lambda _sql: counts.__setitem__("sql", counts["sql"] + 1))
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "lstat", lstat)
    try:
        for i, stem in enumerate(stems):  # the slot's half, as each result arrives
            predict._on_predicted(Predicted(stem, (8, 8), mask, None, 0.1 + i / 1000, "default"))
    finally:
        monkeypatch.undo()
        project.store.trace(None)
    assert all(project.records[s].status.value == "predicted" for s in stems)
    assert review.queue.rowCount() == len(project.records)
    controller.close_project()
    return {key: value / FINISHED for key, value in counts.items()}


@pytest.mark.slow
def test_gui_work_per_finished_image_is_the_same_at_200_and_2000_images(make_napari_viewer_proxy, qtbot, tmp_path,
                                                                       monkeypatch):
    viewer = make_napari_viewer_proxy()
    small = _gui_work_per_image(viewer, qtbot, _tiny_project(tmp_path / "p200", 200), monkeypatch)
    large = _gui_work_per_image(viewer, qtbot, _tiny_project(tmp_path / "p2000", 2000), monkeypatch)
    assert small == large, (small, large)
    assert large["rows"] == 1  # one row repainted per finished image, no table rebuild
    assert large["stat"] == 0  # no file looked at by the GUI thread
    assert 0 < large["sql"] <= 4  # one small transaction
