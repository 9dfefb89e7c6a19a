"""The dock's life: closing it with its X, quitting napari mid-work, an idle fine-tune
(issue 12, items 4, 6 and 9)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.widgets.conftest import LONG, REPO, SAMPLES, correct_with_reference, press, wait_idle


@pytest.mark.slow
def test_closing_the_dock_with_its_x_stops_work_and_keys_and_reopening_resumes(make_napari_viewer, project_dir, qtbot):
    """Item 4: the X stops the fine-tune and unbinds N/Y; a new dock takes the project up again."""
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = make_napari_viewer()
    w = NevsegWidget(viewer)
    dock = viewer.window.add_dock_widget(w, name="NevSeg")
    qtbot.waitUntil(lambda: w.controller.session is not None, timeout=LONG)
    w.open_project(project_dir)
    wait_idle(qtbot, w)
    for stem in ("IMD003", "IMD008"):
        correct_with_reference(w, stem)
    current = w.controller.current_stem
    w.finetune.epochs.setValue(300)
    w.finetune.start()
    worker = w.finetune.worker
    qtbot.waitUntil(lambda: len(w.finetune.plot.losses) > 0, timeout=LONG)
    dock.destroyOnClose()  # what the X of napari's dock title bar does
    qtbot.waitUntil(lambda: not worker.is_running, timeout=LONG)
    press(qtbot, viewer.window._qt_viewer.canvas.native, "Y")
    assert not (project_dir / "masks" / f"{current}.png").exists(), "Y still accepted with the dock closed"

    again = NevsegWidget(viewer)
    viewer.window.add_dock_widget(again, name="NevSeg")
    qtbot.waitUntil(lambda: again.controller.session is not None, timeout=LONG)
    assert again.controller.project is not None and again.controller.project.root == project_dir.resolve()
    assert again.controller.current_stem == current
    wait_idle(qtbot, again)
    again.teardown()


def test_a_finetune_that_changes_nothing_is_not_a_new_version(widget, project_dir, qtbot, notifications):
    """Item 6: weights equal to the parent's bit for bit: said plainly, the old model stays."""
    from napari_nevseg.core.training import TrainResult

    assert widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    model, meta = widget.controller.session.cpu_copy()
    training = {"train_images": ["IMD003", "IMD008"], "val_images": ["IMD085"]}
    result = TrainResult(model, {**meta, "parent": "default", "training": training}, [], 0, 0.9, 0.9, 3.0,
                         "early stopping")
    widget.finetune._on_done(result)
    assert widget.controller.registry.versions() == ["default"]
    assert widget.controller.session.version == "default"
    assert any("changed no weights" in message for message in notifications), notifications


_QUIT_MID_FINETUNE = r"""
import shutil, sys, tempfile
from pathlib import Path
import napari
from qtpy.QtCore import QThreadPool, QTimer
from qtpy.QtWidgets import QApplication
from napari_nevseg.widgets.main_widget import NevsegWidget

samples = Path(sys.argv[1])
root = Path(tempfile.mkdtemp())
(root / "images").mkdir()
(root / "masks").mkdir()
for stem in ("IMD003", "IMD008", "IMD085"):
    shutil.copy(samples / "images" / f"{stem}.png", root / "images")
    shutil.copy(samples / "masks" / f"{stem}.png", root / "masks")
viewer = napari.Viewer()
widget = NevsegWidget(viewer)
viewer.window.add_dock_widget(widget, name="NevSeg")
ctl = getattr(widget, "controller", None) or widget.state
step = {"n": 0}

def poll():
    if step["n"] == 0 and ctl.session is not None:
        step["n"] = 1
        widget.open_project(root)
        widget.finetune.epochs.setValue(300)
        widget.finetune.start()
    elif step["n"] == 1 and widget.finetune.plot.losses:
        QApplication.instance().quit()  # quit at once, mid fine-tune
        return
    QTimer.singleShot(20, poll)

QTimer.singleShot(0, poll)
napari.run()
print("threads still running after the event loop:", QThreadPool.globalInstance().activeThreadCount(), flush=True)
"""


@pytest.mark.slow
def test_quitting_mid_finetune_stops_and_joins_the_workers_and_exits_cleanly():
    """Item 9: by the time napari's event loop returns, no worker thread is left to emit into
    deleted Qt objects or import into a dying interpreter; exit code 0, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"))
    done = subprocess.run([sys.executable, "-c", _QUIT_MID_FINETUNE, str(SAMPLES)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert "threads still running after the event loop: 0" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_model_load_delivered_after_teardown_starts_no_worker(make_napari_viewer, qtbot, monkeypatch):
    """Item 9, the cause of the abort: quitting right after the model loaded, the queued
    "model loaded" reached the dock after napari had already waited for the workers, and it
    started the training warm-up (``import torch._dynamo``) in a thread racing the dying
    interpreter. A torn-down dock starts nothing."""
    from superqt.utils._qthreading import WorkerBase

    from napari_nevseg.widgets import main_widget
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = make_napari_viewer()
    w = NevsegWidget(viewer)
    ctl = w.controller
    qtbot.waitUntil(lambda: ctl.session is not None, timeout=LONG)
    wait_idle(qtbot, w)
    session = ctl.session
    w.teardown()  # what quitting does first
    monkeypatch.setattr(main_widget, "_TRAINING_WARMED", False)  # as in a fresh process
    before = len(WorkerBase._worker_set)
    w._on_model_loaded(None, session)  # the late, queued "model loaded"
    started = len(WorkerBase._worker_set) - before
    qtbot.waitUntil(lambda: len(WorkerBase._worker_set) <= before, timeout=LONG)
    assert started == 0, "a worker was started after the dock was torn down"


def test_a_worker_started_in_the_same_turn_as_teardown_is_cancelled_not_waited_for(qtbot):
    """Item 9, exit code 134 after File > Quit right after the model loaded: superqt hands a
    worker started inside a running event loop to the thread pool from a 1 ms timer, so a
    teardown in the same turn waited its whole timeout for a worker that could not begin, and
    the timer then started the training warm-up in a dying interpreter. Now the join returns at
    once and the function never runs."""
    import time

    from qtpy.QtCore import QTimer

    from napari_nevseg.widgets._jobs import start_worker, stop_and_join
    from napari_nevseg.widgets.controller import ReviewController

    controller = ReviewController()
    ran: list[str] = []
    outcome: dict = {}

    def warm_up():
        ran.append("warm-up")

    def in_the_event_loop():  # as the poll timer of a scripted quit, or File > Quit
        start_worker(controller, warm_up)
        started = time.perf_counter()
        outcome["joined"] = stop_and_join(controller, timeout_s=5.0)
        outcome["seconds"] = time.perf_counter() - started

    QTimer.singleShot(0, in_the_event_loop)
    qtbot.waitUntil(lambda: "seconds" in outcome, timeout=20_000)
    qtbot.wait(200)  # superqt's timer fires; the pool runs what it was given
    assert outcome["joined"] and outcome["seconds"] < 1.0, outcome
    assert ran == [], "the cancelled function ran after teardown"
    assert controller.workers == []


def test_a_generator_worker_stopped_mid_way_is_joined_at_once_and_closed(qtbot):
    """Item 9, quitting mid-prediction: superqt stops a generator worker by no longer asking it
    for values, without closing it, so the join waited for a ``finally`` that never ran (90 s,
    its whole timeout, before napari could quit) and the project prediction's decoding pool was
    left behind. Now the join returns as soon as the thread leaves, and the generator is closed."""
    import time

    from napari_nevseg.widgets._jobs import start_worker, stop_and_join
    from napari_nevseg.widgets.controller import ReviewController

    controller = ReviewController()
    events: list[str] = []

    def predict_forever():
        try:
            while True:
                time.sleep(0.01)
                yield "one more image"
        finally:
            events.append("closed")

    start_worker(controller, predict_forever, yielded=lambda _value: events.append("yielded"))
    qtbot.waitUntil(lambda: "yielded" in events, timeout=10_000)
    started = time.perf_counter()
    joined = stop_and_join(controller, timeout_s=5.0)
    seconds = time.perf_counter() - started
    assert joined and seconds < 1.0, (joined, seconds)
    assert "closed" in events, "the generator's finally never ran"
