"""Click latency as the user feels it, in a real napari window: from a mouse press synthesized on
the canvas (a Qt event, not ``layer.add``) to the painted frame (the canvas's ``frameSwapped``)
that shows the new mask, and the GUI thread's stalls (a 5 ms timer) while clicking at 2 Hz.

Opens a project of one 768x576 PH2 image and one 1640x1043 DermQuest photo, imports a click
model as the active version, arms the clicks layer and clicks by Qt events around the lesion
(positive inside, negative on the skin near it, alternating). Without a display, under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/click_latency.py --model untrained
    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/click_latency.py --model tiny

``--model``: ``tiny`` (the tests' click model, which runs at its own 48x64 working size),
``untrained`` (a click ResUNet of the shipped default's size, untrained: the real click model's
latency, not its masks) or a model file. ``--screenshots DIR`` also saves the window before and
after the first two clicks on the photo. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _qt_loop import wait_until  # benchmarks/ is on sys.path when a script here runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = Path(__file__).resolve().parents[1] / "tests" / "data" / "click_blob.safetensors"
SIZES = {"ph2": (768, 576), "clinical_dermquest": (1640, 1043)}


def untrained_click_model(folder: Path) -> Path:
    """A click ResUNet with the shipped default's architecture and working size, untrained."""
    import torch

    from napari_nevseg.core.checkpoint import read_metadata, save_model
    from napari_nevseg.core.clicks import ClickSettings
    from napari_nevseg.core.model import build_model
    from napari_nevseg.core.session import default_model_path

    meta = read_metadata(default_model_path())
    params = {**meta["arch_params"], "in_channels": 6}
    torch.manual_seed(0)
    model = build_model(meta["arch"], params).eval()
    keep = {k: meta[k] for k in ("arch", "work_size", "normalization") if k in meta}
    path = folder / "untrained-click.safetensors"
    save_model(path, model, {**keep, "arch_params": params, "in_channels": 6,
                             "clicks": ClickSettings().to_meta(), "version": "untrained-click"})
    return path


def pick_image(source: str) -> tuple[Path, Path]:
    size = SIZES[source]
    from PIL import Image

    for image in sorted((DATA / source / "images").iterdir()):
        mask = next((DATA / source / "masks").glob(image.stem + ".*"), None)
        if mask is not None and Image.open(image).size == size:
            return image, mask
    raise SystemExit(f"click_latency: error: no {size[0]}x{size[1]} image with a mask in {DATA / source}")


def click_spots(mask: np.ndarray, n: int, seed: int = 0) -> list[tuple[int, int, bool]]:
    """Alternating positive clicks inside the lesion and negative ones on the skin near it."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    inside = ndimage.binary_erosion(mask, iterations=10)
    ring = ndimage.binary_dilation(mask, iterations=40) & ~ndimage.binary_dilation(mask, iterations=10)
    pools = [np.argwhere(inside if inside.any() else mask), np.argwhere(ring)]
    spots = []
    for i in range(n):
        pool = pools[i % 2]
        r, c = pool[rng.integers(len(pool))]
        spots.append((int(r), int(c), i % 2 == 0))
    return spots


def dismiss_notifications() -> None:
    """Close the notifications of the set-up (project opened, model imported). On a desktop they
    fade after 4 s, but napari starts that timer only in the active window, and under Xvfb
    without a window manager no window is ever active: left alone they would stay over the
    canvas and be composed into every frame of the measurement."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for note in list(NapariQtNotification._instances):
        note.close()


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:  # noqa: C901 (a script: one straight sequence)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="untrained", help="tiny | untrained | a model file")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per image")
    parser.add_argument("--hz", type=float, default=2.0)
    parser.add_argument("--hold-ms", type=float, default=0.0,
                        help="how long the button stays down (a person's click: about 100 ms; 0: released at once)")
    parser.add_argument("--period-ms", type=float, default=5.0, help="stall probe period")
    parser.add_argument("--screenshots", type=Path, help="save clicks-before.png / clicks-after.png here")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=int, default=0, help="print the GUI thread's N costliest calls")
    args = parser.parse_args()

    import napari
    from qtpy.QtCore import QPoint, Qt, QTimer
    from qtpy.QtTest import QTest

    from napari_nevseg.core.image_io import read_mask
    from napari_nevseg.widgets import click_tool
    from napari_nevseg.widgets.main_widget import NevsegWidget

    tmp = Path(tempfile.mkdtemp(prefix="nevseg-clicks-"))
    model = {"tiny": TINY}.get(args.model) or (untrained_click_model(tmp) if args.model == "untrained" else Path(args.model))
    root = tmp / "project"
    (root / "images").mkdir(parents=True)
    picked = {source: pick_image(source) for source in SIZES}
    for source, (image, _mask) in picked.items():
        shutil.copy(image, root / "images" / f"{source}{image.suffix}")

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1600, 1000)
    widget = NevsegWidget(viewer, device="cpu")
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")

    wait = partial(wait_until, timeout=300.0, poll_ms=20)

    idle = lambda: not widget.controller.is_busy() and not widget.controller.workers  # noqa: E731
    wait(lambda: widget.controller.session is not None)
    widget.open_project(root)
    wait(idle)
    version = widget.models.import_file(model)
    wait(lambda: widget.controller.session is not None and widget.controller.session.version == version and idle())
    if not widget.controller.session.supports_clicks:
        print(f"click_latency: error: {model} has no click mode", file=sys.stderr)
        return 2

    dismiss_notifications()
    canvas = viewer.window._qt_viewer.canvas.native
    marks: dict[str, float | None] = {"press": None, "frame": None}
    changed_flags: list[bool] = []
    network_s: list[float] = []
    real_apply, real_result = click_tool.apply_mask_undoable, click_tool.ClickTool._on_result

    def apply_and_mark(labels, mask):
        changed = real_apply(labels, mask)
        changed_flags.append(changed)
        marks["applied"] = time.perf_counter()
        marks["await"] = changed
        return changed

    slot_ms: list[float] = []  # the click tool's own GUI-thread work per event

    def result_and_mark(self, result):
        network_s.append(result.seconds)
        t0 = time.perf_counter()
        real_result(self, result)
        slot_ms.append((time.perf_counter() - t0) * 1000)

    def points_and_mark(self, event):
        t0 = time.perf_counter()
        real_points(self, event)
        if str(getattr(event, "action", "")) == "added":
            slot_ms.append((time.perf_counter() - t0) * 1000)

    real_points = click_tool.ClickTool._on_points_data
    click_tool.apply_mask_undoable = apply_and_mark
    click_tool.ClickTool._on_result = result_and_mark
    click_tool.ClickTool._on_points_data = points_and_mark

    painted: list[float] = []

    def on_frame():
        """The first frame after a changed mask: the latency of the newest click (the set
        applied holds it; clicks it superseded were coalesced into it)."""
        if marks.get("await"):
            marks["await"] = False
            marks["frame"] = time.perf_counter()
            painted.append((marks["frame"] - marks["press"]) * 1000)

    canvas.frameSwapped.connect(on_frame)

    def to_canvas(row: float, col: float) -> QPoint:
        center = viewer.camera.center[-2:]
        zoom = viewer.camera.zoom
        return QPoint(round((col - center[1]) * zoom + canvas.width() / 2),
                      round((row - center[0]) * zoom + canvas.height() / 2))

    lateness: list[float] = []
    last = [time.perf_counter()]

    def probe():
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - args.period_ms / 1000) * 1000)
        last[0] = now

    probe_timer = QTimer()
    probe_timer.setTimerType(Qt.TimerType.PreciseTimer)
    probe_timer.timeout.connect(probe)

    report = {"model": str(args.model), "work_size": widget.controller.session.meta["work_size"],
              "time_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
              "torch_threads": __import__("torch").get_num_threads(), "hold_ms": args.hold_ms, "images": {}}
    import cProfile
    import pstats

    profiler = cProfile.Profile()  # the GUI thread only
    for source, (image_path, mask_path) in picked.items():
        widget.review.show_stem(source)
        wait(idle)
        tool = widget.clicks
        started = tool.predictions
        tool.arm_clicks()
        viewer.reset_view()
        wait(lambda: False, timeout=0.5)
        reference = read_mask(mask_path)
        spots = click_spots(reference, args.clicks)
        latencies, errors, shots = painted, [], []
        painted.clear()
        changed_flags.clear()
        network_s.clear()
        slot_ms.clear()
        lateness.clear()
        last[0] = time.perf_counter()
        probe_timer.start(int(args.period_ms))
        if args.profile:
            profiler.enable()
        for i, (row, col, positive) in enumerate(spots):
            if tool.negative == positive:
                tool.toggle_kind()
            if args.screenshots and source == "clinical_dermquest" and i == 0:
                shots.append(viewer.screenshot(canvas_only=False, flash=False))
            marks["frame"] = None
            n_before = len(tool.points.data)
            point = to_canvas(row, col)
            marks["press"] = time.perf_counter()
            QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
            if args.hold_ms > 0:
                up = marks["press"] + args.hold_ms / 1000
                wait(lambda up=up: time.perf_counter() >= up, timeout=5, poll_ms=2)
            QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
            if len(tool.points.data) > n_before:
                errors.append(float(np.hypot(*(np.asarray(tool.points.data[-1]) - (row, col)))))
            next_click = marks["press"] + 1.0 / args.hz
            wait(lambda due=next_click: time.perf_counter() >= due, timeout=5)  # frames are timed in on_frame
            if args.screenshots and source == "clinical_dermquest" and i == 1:
                wait(idle)
                shots.append(viewer.screenshot(canvas_only=False, flash=False))
        wait(idle)
        probe_timer.stop()
        profiler.disable()
        stalls = lateness[5:]
        h, w = reference.shape
        report["images"][source] = {
            "file": image_path.name, "size": f"{w}x{h}", "clicks": len(spots),
            "masks_painted": len(latencies), "predictions": None,
            "click_to_frame_ms": {"median": round(statistics.median(latencies), 1),
                                  "p95": round(quantile(latencies, 95), 1), "max": round(max(latencies), 1)}
            if latencies else None,
            "network_in_worker_ms_median": round(1000 * statistics.median(network_s), 1) if network_s else None,
            "unchanged_masks": changed_flags.count(False),
            "click_tool_gui_ms": {"median": round(statistics.median(slot_ms), 1), "max": round(max(slot_ms), 1)}
            if slot_ms else None,
            "gui_stall_ms": {"p50": round(statistics.median(stalls), 2), "p99": round(quantile(stalls, 99), 2),
                             "max": round(max(stalls), 2), "ticks": len(stalls)},
            "click_position_error_px_max": round(max(errors), 2) if errors else None,
        }
        report["images"][source]["predictions"] = tool.predictions - started
        if shots and args.screenshots:
            from PIL import Image

            args.screenshots.mkdir(parents=True, exist_ok=True)
            Image.fromarray(shots[0]).save(args.screenshots / "clicks-before.png")
            if len(shots) > 1:
                Image.fromarray(shots[1]).save(args.screenshots / "clicks-after.png")
        widget.clicks.clear()
    if args.profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    click_tool.apply_mask_undoable, click_tool.ClickTool._on_result = real_apply, real_result
    click_tool.ClickTool._on_points_data = real_points
    widget.teardown()
    viewer.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
