"""The dock's controller without Qt or napari: opening a project, counts kept in step, the
queue order, the review position, events; it must import no GUI module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_nevseg.widgets.controller import SORT_MODES, ReviewController

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")


def test_controller_imports_no_gui_module():
    probe = ("import sys, napari_nevseg.widgets.controller as c\nc.ReviewController()\n"
             "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = {m.split(".")[0] for m in out.stdout.split()}
    assert not loaded & set(GUI), sorted(loaded & set(GUI))


@pytest.fixture
def controller(tmp_path: Path) -> ReviewController:
    root = tmp_path / "project"
    (root / "images").mkdir(parents=True)
    for image in sorted((SAMPLES / "images").glob("*.png")):
        shutil.copy(image, root / "images" / image.name)
    ctl = ReviewController()
    ctl.open_project(root)
    return ctl


def _predict(ctl: ReviewController, stem: str, uncertainty: float) -> None:
    shape = ctl.project.image_shape(stem)
    ctl.project.write_prediction_file(stem, np.ones(shape, bool))
    ctl.commit_prediction(stem, "default", uncertainty)


def test_counts_follow_predictions_and_reviews_and_events_name_the_row(controller):
    seen: list[str] = []
    reviewed: list[str] = []
    controller.events.record_changed.connect(seen.append)
    controller.events.reviewed.connect(reviewed.append)
    assert controller.counts["unreviewed"] == 4
    _predict(controller, "IMD003", 0.2)
    assert controller.counts["unreviewed"] == 3 and controller.counts["predicted"] == 1
    controller.review("IMD003", np.ones(controller.project.image_shape("IMD003"), bool))
    assert controller.counts["accepted"] == 1 and controller.counts["predicted"] == 0
    assert controller.reviewed_count() == 1
    assert seen == ["IMD003", "IMD003"] and reviewed == ["IMD003"]
    assert +controller.counts == {k: v for k, v in controller.project.counts().items() if v}


def test_uncertainty_order_and_the_next_unreviewed_image(controller):
    for stem, u in (("IMD003", 0.1), ("IMD008", 0.4), ("IMD085", 0.3), ("IMD405", 0.2)):
        _predict(controller, stem, u)
    controller.set_sort_mode(SORT_MODES[1])
    order = controller.order()
    assert order == ["IMD008", "IMD085", "IMD405", "IMD003"]
    controller.review("IMD003", np.ones(controller.project.image_shape("IMD003"), bool))
    controller.review("IMD008", np.ones(controller.project.image_shape("IMD008"), bool))
    # the order shown is kept while reviewing; the next unreviewed after the top row is row 2
    assert controller.next_unreviewed(order, "IMD008") == "IMD085"
    assert controller.next_unreviewed(order, "IMD003") == "IMD085"  # wraps past reviewed rows
    for stem in ("IMD085", "IMD405"):
        controller.review(stem, np.ones(controller.project.image_shape(stem), bool))
    assert controller.next_unreviewed(order, "IMD405") is None


def test_opening_asks_for_predictions_once_a_model_is_there(tmp_path, controller):
    asked: list[str] = []
    controller.events.predict_requested.connect(asked.append)
    controller.open_project(controller.project.root)
    assert asked == []  # no model yet

    class FakeSession:
        version = "default"

    controller.set_session(FakeSession())
    assert asked == ["project"]


def test_statuses_reviewer_effort_and_restore_through_the_controller(controller):
    """Issue 12 item 8 without Qt: who and the effort go with each change; marked images are
    out of training and skipped by Y; a restored version is a new history entry."""
    from napari_nevseg.core.effort import EffortMeter

    ticks = iter(range(0, 1000, 5))
    controller.effort = EffortMeter(clock=lambda: float(next(ticks)))
    replaced: list[str] = []
    controller.events.mask_replaced.connect(lambda stem, _mask: replaced.append(stem))
    controller.set_reviewer("  Dr. Ada  ")
    assert controller.user == "Dr. Ada" and controller.project.user == "Dr. Ada"
    for stem in ("IMD003", "IMD008", "IMD085", "IMD405"):
        _predict(controller, stem, 0.5)
    controller.set_current("IMD003")
    controller.effort.stroke()
    controller.effort.click(2)
    shape = controller.project.image_shape("IMD003")
    controller.review("IMD003", np.ones(shape, bool))  # accepted (equals the prediction)
    record = controller.project.records["IMD003"]
    assert record.reviewed_by == "Dr. Ada" and record.effort.seconds == 5 and record.effort.strokes == 1
    assert record.effort.clicks == 2
    controller.effort.stroke()
    stroke = np.ones(shape, bool)
    stroke[:10, :10] = False
    controller.review("IMD003", stroke)  # an accidental stroke, saved
    assert controller.project.records["IMD003"].effort.strokes == 2  # summed, each stroke once
    accepted = [v for v in controller.history("IMD003") if v.status.value == "accepted"][0]
    restored = controller.restore("IMD003", accepted.id)
    assert restored.all() and controller.project.read_mask("IMD003").all()
    assert controller.project.records["IMD003"].status.value == "accepted"
    assert len(controller.history("IMD003")) == 3 and replaced == ["IMD003"]

    controller.set_status("IMD008", "no_lesion")
    controller.set_status("IMD085", "unusable")
    controller.set_status("IMD405", "second_opinion")
    assert not controller.project.read_mask("IMD008").any() and replaced[-1] == "IMD008"
    assert sorted(controller.project.training_stems()) == ["IMD003", "IMD008"]
    assert controller.counts["unusable"] == 1 and controller.counts["second_opinion"] == 1
    assert controller.next_unreviewed(sorted(controller.project.records), "IMD003") is None
    audit = controller.project.audit("IMD085")
    assert audit[-1]["user"] == "Dr. Ada"
    controller.set_reviewer("")
    assert controller.user == controller._default_user


def test_a_prediction_by_another_model_says_so_by_content_hash(controller):
    """'default' comes to mean another model: a mask the earlier default made is named as its
    work (its hash), never relabelled as the loaded model's."""
    from types import SimpleNamespace

    old, new = "a" * 64, "b" * 64
    shape = controller.project.image_shape("IMD003")
    for stem, model_hash in (("IMD003", old), ("IMD008", new), ("IMD085", None)):
        controller.project.write_prediction_file(stem, np.ones(shape, bool))
        controller.commit_prediction(stem, "default", 0.1, model_hash)
    controller.session = SimpleNamespace(version="default", content_hash=new)
    said = controller.other_model("IMD003")
    assert said is not None and "another model" in said and old[:12] in said and new[:12] in said
    assert controller.other_model("IMD008") is None  # the loaded model made it
    assert "before models were recorded" in controller.other_model("IMD085")
    assert controller.other_model("IMD405") is None  # nothing predicted yet
    assert controller.project.records["IMD003"].model_hash == old  # the record is untouched
