"""napari alone, without the plugin: what a click costs the viewer itself, the floor under
``click_latency.py``'s figures on the same machine.

A 768x576 PH2 image, a Labels layer with its outline drawn (as NevSeg draws masks) and a Points
layer in add mode, in a window of the size ``click_latency.py`` uses. Clicks by Qt mouse events
on the canvas at 2 Hz, as there; each added point paints a 40x40 square into the labels at once
(one ``data_setitem``, no model, no worker), and the latency is the press to the first painted
frame after that. The GUI thread's stalls come from the same 5 ms probe. Without a display:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/napari_click_floor.py

Results: docs/benchmarks.md ("What napari's own painting costs").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
from _qt_loop import wait_until  # benchmarks/ is on sys.path when a script here runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def ph2_image(size=(768, 576)) -> np.ndarray:
    from PIL import Image

    for path in sorted((DATA / "ph2" / "images").iterdir()):
        with Image.open(path) as im:
            if im.size == size:
                return np.asarray(im.convert("RGB"))
    raise SystemExit(f"napari_click_floor: error: no {size[0]}x{size[1]} image in {DATA / 'ph2' / 'images'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--window", default="1600x1000", help="window size WxH")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import napari
    from qtpy.QtCore import QPoint, Qt, QTimer
    from qtpy.QtTest import QTest

    image = ph2_image()
    width, height = (int(v) for v in args.window.split("x"))
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(width, height)
    viewer.add_image(image, name="image")
    labels = viewer.add_labels(np.zeros(image.shape[:2], np.uint8), name="mask")
    labels.contour = 2
    points = viewer.add_points(ndim=2, name="clicks", size=12)
    points.mode = "add"

    wait = partial(wait_until, timeout=10.0, poll_ms=5)

    canvas = viewer.window._qt_viewer.canvas.native
    marks: dict[str, float | bool] = {"press": 0.0, "await": False}
    painted: list[float] = []

    def on_frame():
        if marks["await"]:
            marks["await"] = False
            painted.append((time.perf_counter() - marks["press"]) * 1000)

    def on_points(event):
        if str(getattr(event, "action", "")) != "added":
            return
        row, col = np.asarray(points.data[-1]).astype(int)
        r0, c0 = max(0, row - 20), max(0, col - 20)
        r1, c1 = min(image.shape[0], row + 20), min(image.shape[1], col + 20)
        rows, cols = np.mgrid[r0:r1, c0:c1]
        labels.data_setitem((rows.ravel(), cols.ravel()), 1)
        marks["await"] = True

    canvas.frameSwapped.connect(on_frame)
    points.events.data.connect(on_points)
    lateness: list[float] = []
    last = [time.perf_counter()]

    def probe():
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - 0.005) * 1000)
        last[0] = now

    viewer.reset_view()
    wait(lambda: False, timeout=2.0)
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(probe)
    last[0] = time.perf_counter()
    timer.start(5)
    rng = np.random.default_rng(0)
    for _ in range(args.clicks):
        row, col = rng.integers(100, image.shape[0] - 100), rng.integers(100, image.shape[1] - 100)
        center, zoom = viewer.camera.center[-2:], viewer.camera.zoom
        spot = QPoint(round((col - center[1]) * zoom + canvas.width() / 2),
                      round((row - center[0]) * zoom + canvas.height() / 2))
        marks["press"] = time.perf_counter()
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, spot)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, spot)
        due = float(marks["press"]) + 0.5
        wait(lambda due=due: time.perf_counter() >= due)
    timer.stop()
    stalls = lateness[5:]
    report = {
        "time_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "window": args.window,
        "napari": napari.__version__, "clicks": args.clicks, "frames_timed": len(painted),
        "click_to_frame_ms": {"median": round(statistics.median(painted), 1),
                              "p95": round(statistics.quantiles(painted, n=100, method="inclusive")[94], 1)},
        "gui_stall_ms": {"p99": round(statistics.quantiles(stalls, n=100, method="inclusive")[98], 1),
                         "max": round(max(stalls), 1)},
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
