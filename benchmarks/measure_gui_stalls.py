"""Does the viewer stay smooth while fine-tuning runs? Measured in a real napari window.

Opens napari, a project of 12 full-size PH2 images with their masks (10 train, 2 validation),
starts a fine-tune from the NevSeg widget, and while it runs paints on the mask and pans the
camera by script at 30 Hz. A QTimer in the GUI thread with a period of 5 ms records how late
each tick fires: a late tick is an event-loop stall. Without a display, run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/measure_gui_stalls.py --threads 1

``--data`` is a PH2 folder with images/ and masks/ (default: ../shared/data/ph2 beside the
repository). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _qt_loop import wait_until  # benchmarks/ is on sys.path when a script here runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2"  # ../shared/data beside the repository


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for fine-tuning (default: widget's)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--niceness", type=int, default=None,
                        help="nice level added to the training thread (default: the widget's, 10; 0 = none)")
    parser.add_argument("--period-ms", type=float, default=5.0, help="probe timer period")
    parser.add_argument("--action-hz", type=float, default=30.0, help="paint/pan rate")
    parser.add_argument("--baseline-s", type=float, default=15.0, help="seconds of painting before training")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import napari
    from qtpy.QtCore import Qt, QTimer

    from napari_nevseg.widgets.main_widget import NevsegWidget

    stems = sorted(p.stem for p in (args.data / "images").glob("*.png"))[:12]
    if len(stems) < 12:
        print(f"measure_gui_stalls: error: {args.data / 'images'} holds {len(stems)} PNG images, 12 are needed "
              "(pass --data PH2_FOLDER)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="nevseg-stalls-"))
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for stem in stems:
        shutil.copy(args.data / "images" / f"{stem}.png", root / "images")
        shutil.copy(args.data / "masks" / f"{stem}.png", root / "masks")

    viewer = napari.Viewer()
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")

    wait = partial(wait_until, timeout=300, poll_ms=50)

    wait(lambda: widget.controller.session is not None)
    # the one-off imports of the first training step run in a worker once the model is loaded
    # (about 0.2 s of event-loop stall, once per session); measure after them
    wait(widget.training_ready)
    widget.open_project(root)
    wait(lambda: not widget.controller.is_busy())
    if args.threads:
        widget.finetune.threads.setValue(args.threads)
    if args.niceness is not None:
        widget.finetune.niceness = args.niceness
    widget.finetune.epochs.setValue(args.epochs)
    widget.finetune.patience.setValue(args.epochs)

    lateness: list[float] = []
    last = [time.perf_counter()]
    period = args.period_ms / 1000.0

    stamps: list[float] = []

    def probe():
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - period) * 1000.0)
        stamps.append(now)
        last[0] = now

    layer = widget.view.mask_layer
    h, w = layer.data.shape
    step = [0]

    def act():
        i = step[0]
        step[0] += 1
        y = int(h / 2 + 0.3 * h * np.sin(i / 15))
        x = int(w / 2 + 0.3 * w * np.cos(i / 15))
        layer.paint((y, x), 1 if i % 40 < 20 else 0)
        viewer.camera.center = (h / 2 + 20 * np.sin(i / 10), w / 2 + 20 * np.cos(i / 10))

    probe_timer = QTimer()
    probe_timer.setTimerType(Qt.TimerType.PreciseTimer)
    probe_timer.timeout.connect(probe)
    action_timer = QTimer()
    action_timer.timeout.connect(act)

    def stats(values: list[float]) -> dict:
        values = values[5:]  # the first ticks include timer start-up
        q = statistics.quantiles(values, n=100)
        return {"ticks": len(values), "median_ms": round(statistics.median(values), 2),
                "p99_ms": round(q[98], 2), "max_ms": round(max(values), 2)}

    # baseline: the same painting and panning with no fine-tune running (software OpenGL under
    # Xvfb makes every redraw cost CPU in the GUI thread, with or without training)
    last[0] = time.perf_counter()
    probe_timer.start(int(args.period_ms))
    action_timer.start(int(1000 / args.action_hz))
    wait(lambda: False, timeout=args.baseline_s)
    baseline = stats(lateness)
    baseline["actions_per_second"] = round(step[0] / args.baseline_s, 1)
    lateness.clear()
    stamps.clear()
    step[0] = 0

    widget.finetune.start()
    started = time.perf_counter()
    wait(lambda: not widget.controller.is_busy("train"), timeout=900)
    seconds = time.perf_counter() - started
    probe_timer.stop()
    action_timer.stop()
    during = stats(lateness)
    # where the worst stalls happened: seconds after Fine-tune was pressed (the run took `seconds`)
    worst = sorted(zip(lateness, stamps, strict=True), reverse=True)[:5]
    during["worst"] = [{"ms": round(ms, 1), "at_s": round(t - started, 2)} for ms, t in worst]
    during["actions_per_second"] = round(step[0] / seconds, 1)
    report = {
        "threads": widget.finetune.threads.value(),
        "niceness": widget.finetune.niceness,
        "fine_tune_seconds": round(seconds, 1),
        "epochs": args.epochs,
        "probe_period_ms": args.period_ms,
        "stalls_without_training": baseline,
        "stalls_while_fine_tuning": during,
        "result": widget.finetune.progress_label.text(),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    widget.teardown()
    viewer.close()
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
