"""Fixtures for widget tests: a real viewer (make_napari_viewer), the NevSeg widget on the
shipped model, and a project folder made from the sample images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_data"
LONG = 120_000  # ms: torch work on 2 CPU cores


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A project with the four sample images and no masks yet."""
    root = tmp_path / "project with space é"
    (root / "images").mkdir(parents=True)
    for image in sorted((SAMPLES / "images").glob("*.png")):
        shutil.copy(image, root / "images" / image.name)
    return root


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    """The dock widget with the shipped default model loaded (waits for the load worker)."""
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = make_napari_viewer()
    w = NevsegWidget(viewer)
    viewer.window.add_dock_widget(w, name="NevSeg", area="right")
    qtbot.waitUntil(lambda: w.controller.session is not None, timeout=LONG)
    yield w
    wait_idle(qtbot, w)
    w.teardown()


@pytest.fixture
def notifications():
    """The text of every napari notification shown during the test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(notification) -> None:
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def improving_validation(monkeypatch):
    """Validation Dice that rises every time it is measured, so a short fine-tune always beats
    its start: a run that does not is (rightly) not adopted as a new version, and tests of
    what happens to versions need one."""
    import itertools

    from napari_nevseg.core import training

    calls = itertools.count()
    monkeypatch.setattr(training, "evaluate_dice", lambda *_a, **_k: 0.5 + 0.01 * next(calls))


def wait_idle(qtbot, w, timeout: int = LONG) -> None:
    """Let every worker of the widget finish (tests must not end with a thread running)."""
    qtbot.waitUntil(lambda: not w.controller.is_busy() and not w.controller.workers, timeout=timeout)


def press(qtbot, target, key: str) -> None:
    """Type ``key`` (e.g. ``"Shift+N"``) with the focus on ``target``, as a person would: the
    window is activated so that Qt's window shortcuts see the key."""
    from qtpy.QtGui import QKeySequence

    window = target.window()
    window.show()
    window.activateWindow()
    target.setFocus()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    combo = QKeySequence(key)[0]
    qtbot.keyClick(target, combo.key(), combo.keyboardModifiers())


def correct_with_reference(w, stem: str) -> None:
    """Play the annotator: replace the mask on screen by the expert mask of ``stem``, accept."""
    from napari_nevseg.core.image_io import read_mask
    from napari_nevseg.widgets._layers import apply_mask_undoable

    w.review.show_stem(stem)
    apply_mask_undoable(w.view.mask_layer, read_mask(SAMPLES / "masks" / f"{stem}.png"))
    w.review.accept_current()
