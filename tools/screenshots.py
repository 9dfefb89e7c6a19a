"""Screenshots of the real napari window for the README (run under Xvfb on a headless machine):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshots.py

docs/screenshot.png: a project of the sample images, predicted, with the review queue;
docs/finetune.png: the Fine-tune tab with its live plot, taken while fine-tuning runs (the
result in words, once a run ends: benchmarks/widget_finetune.py --screenshot).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_nevseg.core.image_io import read_mask
    from napari_nevseg.widgets._layers import apply_mask_undoable
    from napari_nevseg.widgets.main_widget import NevsegWidget

    root = Path(tempfile.mkdtemp(prefix="nevseg-shot-")) / "dermoscopy clinic"
    shutil.copytree(REPO / "sample_data" / "images", root / "images")
    viewer = napari.Viewer(title="napari-nevseg")
    viewer.window.resize(1600, 1000)
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")
    app = QApplication.instance()

    def wait(cond, timeout=300.0):
        t0 = time.perf_counter()
        while not cond() and time.perf_counter() - t0 < timeout:
            app.processEvents()
            time.sleep(0.02)

    def settle():
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)

    wait(lambda: widget.controller.session is not None)
    widget.open_project(root)
    wait(lambda: not widget.controller.is_busy())
    widget.review.sort_combo.setCurrentText("uncertainty (least certain first)")
    widget.review.show_stem("IMD405")
    widget.measure.pixel_size.setValue(0.0105)
    viewer.reset_view()
    settle()
    viewer.screenshot(str(REPO / "docs" / "screenshot.png"), canvas_only=False)

    for stem in ("IMD003", "IMD008", "IMD405"):
        widget.review.show_stem(stem)
        apply_mask_undoable(widget.view.mask_layer, read_mask(REPO / "sample_data" / "masks" / f"{stem}.png"))
        widget.review.accept_current()
    widget.show_panel(widget.finetune)
    widget.finetune.start()  # nothing touched: the plan for 3 images (all trained on, 150 steps)
    wait(lambda: len(widget.finetune.plot.losses) >= 60)
    settle()
    viewer.screenshot(str(REPO / "docs" / "finetune.png"), canvas_only=False)
    widget.finetune.cancel()
    wait(lambda: not widget.controller.is_busy())
    widget.teardown()
    viewer.close()


if __name__ == "__main__":
    main()
