"""Predict a whole project folder in the real widget vs ``nevseg predict`` on the same images,
and how much the GUI thread stalls meanwhile (issue 12, item 10).

Makes a project of copies of the first N images of a folder (default: the 2000 ISIC 2017
training images) with an empty masks/, times ``nevseg predict`` on it, then opens it in the
NevSeg widget (which predicts every unreviewed image) while a 5 ms QTimer in the GUI thread
records how late each tick fires. Works on this branch and on the code before it.

    PYTHONPATH=$PWD xvfb-run -a python benchmarks/widget_folder_scale.py --n 500
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _qt_loop import wait_until  # benchmarks/ is on sys.path when a script here runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "isic2017" / "train" / "images"  # ../shared/data beside the repository


def make_project(source: Path, n: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="nevseg-scale-"))
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for path in sorted(source.iterdir())[:n]:
        shutil.copy(path, root / "images" / path.name)
    return root


def time_cli(root: Path) -> float:
    out = Path(tempfile.mkdtemp(prefix="nevseg-scale-cli-"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "napari_nevseg", "predict", str(root / "images"), "--out", str(out),
                    "--quiet"], check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def time_widget(root: Path, period_ms: float) -> dict:
    import napari
    from qtpy.QtCore import Qt, QTimer

    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = napari.Viewer()
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")
    ctl = getattr(widget, "controller", None) or widget.state

    wait = partial(wait_until, timeout=7200, poll_ms=50)

    wait(lambda: ctl.session is not None)
    wait(widget.training_ready)
    lateness: list[float] = []
    last = [time.perf_counter()]

    def probe():
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - period_ms / 1000) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(probe)
    last[0] = time.perf_counter()
    timer.start(int(period_ms))
    started = time.perf_counter()
    widget.open_project(root)
    wait(lambda: ctl.is_busy("predict"), timeout=60)
    wait(lambda: not ctl.is_busy("predict"))
    seconds = time.perf_counter() - started
    timer.stop()
    values = lateness[5:]
    q = statistics.quantiles(values, n=100)
    predicted = ctl.project.counts()["predicted"]
    import torch

    threads = torch.get_num_threads()  # nevseg predict's default: every core
    widget.teardown()
    viewer.close()
    return {"seconds": round(seconds, 1), "predicted": predicted, "torch_threads": threads, "ticks": len(values),
            "stall_median_ms": round(statistics.median(values), 1), "stall_p99_ms": round(q[98], 1),
            "stall_max_ms": round(max(values), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--period-ms", type=float, default=5.0)
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    root = make_project(args.source, args.n)
    report = {"images": args.n, "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    if not args.skip_cli:
        report["nevseg_predict_s"] = round(time_cli(root), 1)
    report["widget"] = time_widget(root, args.period_ms)
    print(json.dumps(report, indent=1), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
