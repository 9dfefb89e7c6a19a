"""Time 'Predict selected image' in the real widget: click to mask on screen, one PH2 image.

    xvfb-run -a .venv/bin/python scripts/time_widget_predict.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = napari.Viewer()
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg")
    app = QApplication.instance()

    def wait(cond):
        while not cond():
            app.processEvents()
            time.sleep(0.001)

    opened = time.perf_counter()
    wait(lambda: widget.controller.session is not None)
    ready = time.perf_counter() - opened
    viewer.open_sample("napari-nevseg", "IMD405")
    image = viewer.layers["IMD405"]
    times = []
    for i in range(args.repeats + 1):
        viewer.layers.selection.active = image
        start = time.perf_counter()
        widget.predict.predict_selected()
        wait(lambda: not widget.controller.is_busy("predict"))
        app.processEvents()
        if i:  # the first run warms up
            times.append(time.perf_counter() - start)
    print(f"model ready {ready:.2f} s after the widget opened; 'Predict selected image' on a "
          f"{image.data.shape[1]}x{image.data.shape[0]} PH2 image, click to mask on screen: median "
          f"{1000 * statistics.median(times):.0f} ms, min {1000 * min(times):.0f} ms over {len(times)} runs")
    widget.teardown()
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
