"""Screenshots of the real napari window for the README (run under Xvfb on a headless machine):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py

docs/screenshot.png: a project of the sample images, predicted, with the review queue;
docs/finetune.png: the Fine-tune tab with its live plot, taken while fine-tuning runs.
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
    widget.view.mask_layer.contour = 3
    widget.view.mask_layer.opacity = 0.9
    widget.measure.pixel_size.setValue(0.0105)
    viewer.reset_view()
    settle()
    viewer.screenshot(str(REPO / "docs" / "screenshot.png"), canvas_only=False)

    for stem in ("IMD003", "IMD008", "IMD405"):
        widget.review.show_stem(stem)
        apply_mask_undoable(widget.view.mask_layer, read_mask(REPO / "sample_data" / "masks" / f"{stem}.png"))
        widget.review.accept_current()
    widget.tabs.setCurrentWidget(widget.finetune)
    widget.finetune.epochs.setValue(40)
    widget.finetune.patience.setValue(40)  # still running when the picture is taken
    widget.finetune.start()
    wait(lambda: len(widget.finetune.plot.dices) >= 4)
    settle()
    viewer.screenshot(str(REPO / "docs" / "finetune.png"), canvas_only=False)
    widget.finetune.cancel()
    wait(lambda: not widget.controller.is_busy())
    widget.teardown()
    viewer.close()


if __name__ == "__main__":
    main()
