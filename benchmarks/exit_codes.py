"""Quit napari at awkward moments and count how the process ends (issue 12, item 9).

Each run starts a fresh napari under Xvfb, docks the NevSeg widget from the Plugins menu's
command, and quits the application (File > Quit's path: the main window closed with
``quit_app=True``) at one moment of its life:

    ready+S      S seconds after the model became ready (the training warm-up may still run)
    dock+close   at once after docking, the model still loading
    mid-predict  while a project of the sample images is being predicted
    mid-finetune while fine-tuning on the sample images' reference masks

A run is clean when the exit code is 0 and stderr holds no traceback and no "Aborted".

    PYTHONPATH=$PWD python benchmarks/exit_codes.py --repeats 2
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import shutil, sys, tempfile, time
from pathlib import Path
import napari
from qtpy.QtCore import QTimer

scenario, samples, how = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
viewer = napari.Viewer()
_, widget = viewer.window.add_plugin_dock_widget("napari-nevseg", "Lesion review and fine-tuning")
ctl = getattr(widget, "controller", None) or widget.state
t0 = time.perf_counter()

def quit_app():
    if how == "menu":  # File > Quit
        viewer.window._qt_window.close(quit_app=True, confirm_need=False)
    elif how == "viewer-close":  # the script's viewer.close(); the loop ends with the last window
        viewer.close()
    elif how == "app-quit":
        from qtpy.QtWidgets import QApplication
        QApplication.instance().quit()
    else:  # "exit": the script ends the process right away, as a scripted run does at its end
        viewer.close()
        sys.exit(0)

def project(with_masks):
    root = Path(tempfile.mkdtemp(prefix="nevseg-exit-"))
    (root / "images").mkdir()
    for i in range(3):
        for image in sorted((samples / "images").glob("*.png")):
            shutil.copy(image, root / "images" / f"{image.stem}_{i}.png")
            if with_masks:
                (root / "masks").mkdir(exist_ok=True)
                shutil.copy(samples / "masks" / image.name, root / "masks" / f"{image.stem}_{i}.png")
    return root

stage = {"n": 0, "ready_at": None}

def poll():
    if time.perf_counter() - t0 > 240:
        print("exit_codes: gave up waiting", file=sys.stderr)
        quit_app()
        return
    if scenario == "dock+close":
        quit_app()
        return
    if ctl.session is None:
        QTimer.singleShot(20, poll)
        return
    if scenario.startswith("ready+"):
        if stage["ready_at"] is None:
            stage["ready_at"] = time.perf_counter()
        if time.perf_counter() - stage["ready_at"] >= float(scenario[6:]):
            quit_app()
            return
    elif scenario == "mid-predict":
        if stage["n"] == 0:
            stage["n"] = 1
            widget.open_project(project(False))
        elif ctl.is_busy("predict"):
            QTimer.singleShot(300, quit_app)
            return
    elif scenario == "mid-finetune":
        if stage["n"] == 0:
            stage["n"] = 1
            widget.open_project(project(True))
        elif stage["n"] == 1 and not ctl.is_busy():
            stage["n"] = 2
            widget.finetune.epochs.setValue(200)
            widget.finetune.start()
        elif stage["n"] == 2 and widget.finetune.plot.losses:
            quit_app()
            return
    QTimer.singleShot(20, poll)

QTimer.singleShot(0, poll)
napari.run()
"""


def run_once(scenario: str, how: str, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", PYTHONPATH=os.environ.get("PYTHONPATH", str(REPO)))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-c", CHILD, scenario,
           str(REPO / "sample_data"), how]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return -9, "timed out (hung on exit?)"
    return done.returncode, done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scenarios", nargs="*",
                        default=["ready+0", "ready+0.5", "ready+1", "ready+2", "dock+close", "mid-predict", "mid-finetune"])
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--log", type=Path, default=None, help="append the stderr of every dirty run here")
    parser.add_argument("--how", nargs="*", default=["menu", "viewer-close", "app-quit", "exit"],
                        help="how to quit: File > Quit, viewer.close(), QApplication.quit(), sys.exit")
    args = parser.parse_args()
    tally: collections.Counter[str] = collections.Counter()
    for _ in range(args.repeats):
        for scenario, how in [(s, h) for s in args.scenarios for h in args.how]:
            started = time.perf_counter()
            code, err = run_once(scenario, how, args.timeout)
            dirty = "Traceback" in err or "Aborted" in err or "Fatal Python error" in err
            verdict = "clean" if code == 0 and not dirty else "DIRTY"
            tally[verdict] += 1
            if args.log is not None and verdict == "DIRTY":
                with args.log.open("a") as log:
                    log.write(f"===== {scenario} {how} exit {code}\n{err}\n")
            last = [line for line in err.strip().splitlines() if line.strip()][-1:] or [""]
            print(f"{scenario:13s} {how:12s} exit {code:4d} {verdict:5s} {time.perf_counter() - started:5.1f} s  "
                  f"{last[0][:150] if verdict == 'DIRTY' else ''}", flush=True)
    print(f"{sum(tally.values())} runs: {tally['clean']} clean, {tally['DIRTY']} dirty")
    return 0 if not tally["DIRTY"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
