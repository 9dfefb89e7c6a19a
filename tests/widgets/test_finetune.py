"""Fine-tune in the background through the widget; versions, cancel, rollback; end to end."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nevseg.core.image_io import read_mask
from napari_nevseg.core.metrics import dice
from tests.widgets.conftest import LONG, SAMPLES, correct_with_reference, wait_idle


def _review_three(widget, project_dir, qtbot) -> None:
    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    for stem in ("IMD003", "IMD008", "IMD085"):
        correct_with_reference(widget, stem)


@pytest.mark.slow
def test_end_to_end_predict_correct_finetune_repredict(widget, project_dir, qtbot):
    _review_three(widget, project_dir, qtbot)
    project = widget.controller.project
    assert sorted(project.training_stems()) == ["IMD003", "IMD008", "IMD085"]
    assert project.records["IMD405"].model_version == "default"

    assert "3 reviewed images" in widget.finetune.data_label.text()
    widget.finetune.epochs.setValue(3)  # by hand, to keep the test short (the plan: 150 steps)
    widget.finetune.start()
    assert widget.controller.is_busy("train")
    assert not widget.finetune.start_btn.isEnabled() and widget.finetune.cancel_btn.isEnabled()
    assert not widget.models.use_btn.isEnabled()
    qtbot.waitUntil(lambda: len(widget.finetune.plot.losses) > 0, timeout=LONG)
    wait_idle(qtbot, widget, timeout=4 * LONG)

    # a new version, active, with its metadata and round record
    registry = widget.controller.registry
    assert registry.versions() == ["default", "v1"]
    assert registry.active == "v1" and widget.controller.session.version == "v1"
    entry = registry.entry("v1")
    assert entry["parent"] == "default"
    # three images: all trained on, no pool; the shipped dermoscopy is replayed beside them
    assert entry["val_images"] == [] and sorted(entry["train_images"]) == ["IMD003", "IMD008", "IMD085"]
    assert entry["replayed"] and not set(entry["replayed"]) & {"IMD003", "IMD008", "IMD085", "IMD405"}
    assert project.rounds[-1]["version"] == "v1"
    assert (project.models_dir / "v1.safetensors").exists()
    words = widget.finetune.result_label.text()
    assert words.startswith("v1 learned from all 3 reviewed images") and "untested yet" in words
    plot = widget.finetune.plot  # no pool: the plot promises no validation Dice
    assert not plot.validated and not plot.dices and plot.legend_right().startswith("no validation pool")
    meta = widget.controller.session.meta
    assert meta["training"]["plan"]["regime"] == "fixed schedule" and "clicks" in meta

    # re-predict the unreviewed with the new model
    widget.finetune.repredict()
    wait_idle(qtbot, widget)
    record = project.records["IMD405"]
    assert record.model_version == "v1" and record.status.value == "predicted"
    predicted = project.read_prediction("IMD405")
    assert dice(predicted, read_mask(SAMPLES / "masks" / "IMD405.png")) > 0.8
    # reviewed masks were not touched by the re-prediction
    assert project.records["IMD003"].status.value == "corrected"
    # reviewing what v1 predicted adds its bar to the corrections-per-version plot
    correct_with_reference(widget, "IMD405")
    assert list(widget.finetune.rounds_plot.values) == ["default", "v1"]
    assert widget.finetune.rounds_plot.values["v1"] == project.records["IMD405"].dice_prediction_vs_final


@pytest.mark.slow
def test_cancel_keeps_the_previous_model(widget, project_dir, qtbot):
    _review_three(widget, project_dir, qtbot)
    before = widget.controller.session
    widget.finetune.epochs.setValue(200)
    widget.finetune.start()
    qtbot.waitUntil(lambda: len(widget.finetune.plot.losses) >= 1, timeout=LONG)
    widget.finetune.cancel()
    wait_idle(qtbot, widget, timeout=LONG)
    assert widget.controller.session is before and before.version == "default"
    assert widget.controller.registry.versions() == ["default"]
    assert "cancelled" in widget.finetune.progress_label.text()
    assert widget.finetune.start_btn.isEnabled()


@pytest.mark.slow
def test_rollback_and_validation_pool_stays_fixed(widget, project_dir, qtbot, improving_validation, small_pools):
    _review_three(widget, project_dir, qtbot)
    assert widget.controller.session.predictor.tta == 4  # the shipped model: four flips at test time
    widget.finetune.epochs.setValue(1)
    widget.finetune.upright.setChecked(True)  # "objects have an up": no rotations, no upside-down
    widget.finetune.start()
    wait_idle(qtbot, widget, timeout=4 * LONG)
    pool = list(widget.controller.project.validation)
    assert len(pool) == 1 and widget.controller.session.version == "v1"
    assert widget.finetune.result_label.text().startswith("v1 needs fewer corrections on the 1 validation images")
    assert widget.finetune.plot.validated and widget.finetune.plot.dices
    assert widget.controller.session.predictor.tta == 2
    assert widget.controller.session.meta["training"]["config"]["augment"]["rotate"] is False
    assert widget.finetune.upright.isChecked()  # the next fine-tune of v1 stays upright
    # roll back from the drop-down
    widget.models.combo.setCurrentText("default")
    widget.models.use_version("default")
    wait_idle(qtbot, widget)
    assert widget.controller.session.version == "default"
    assert widget.controller.registry.active == "default"
    assert not widget.finetune.upright.isChecked()  # the lesion model was trained with rotations
    # one more reviewed image, a second round: the old pool is kept, nothing reshuffled
    correct_with_reference(widget, "IMD405")
    widget.finetune.start()
    wait_idle(qtbot, widget, timeout=4 * LONG)
    assert widget.controller.project.validation[: len(pool)] == pool
    entry = widget.controller.registry.entry("v2")
    assert entry["parent"] == "default"
    assert set(pool) <= set(entry["val_images"])
    assert not set(entry["val_images"]) & set(entry["train_images"])


@pytest.mark.slow
def test_an_unsaved_correction_on_screen_is_saved_and_learned_from(widget, project_dir, qtbot):
    """The only correction is still on screen, not saved: *Fine-tune* saves it first and
    learns from it, instead of saying there is nothing to learn from."""
    from napari_nevseg.core.image_io import read_mask
    from napari_nevseg.widgets._layers import apply_mask_undoable

    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    widget.review.show_stem("IMD003")
    apply_mask_undoable(widget.view.mask_layer, read_mask(SAMPLES / "masks" / "IMD003.png"))
    assert widget.controller.project.training_stems() == []
    widget.finetune.epochs.setValue(1)
    widget.finetune.start()
    assert widget.controller.is_busy("train")
    wait_idle(qtbot, widget, timeout=4 * LONG)
    assert widget.controller.registry.entry("v1")["train_images"] == ["IMD003"]


@pytest.fixture
def small_pools(monkeypatch):
    """A validation pool from 3 reviewed images on (of 1), so the 4 samples can exercise it."""
    from napari_nevseg.core.training import plan

    monkeypatch.setattr(plan, "POOL_FROM", 3)
    monkeypatch.setattr(plan, "POOL_MIN", 1)


@pytest.mark.slow
def test_a_run_that_does_not_beat_its_start_says_so_and_stays_out(widget, project_dir, qtbot, small_pools,
                                                                  monkeypatch):
    from napari_nevseg.core.training import steps

    scores = iter([0.90] + [0.50] * 10)  # the start, then every epoch worse
    monkeypatch.setattr(steps, "validation_dice", lambda *_a, **_k: next(scores))
    _review_three(widget, project_dir, qtbot)
    widget.finetune.epochs.setValue(2)
    widget.finetune.start()
    wait_idle(qtbot, widget, timeout=4 * LONG)
    assert widget.controller.registry.versions() == ["default"] and widget.controller.session.version == "default"
    words = widget.finetune.result_label.text()
    assert words.startswith("the fine-tuned model did not beat default on the 1 validation images (Dice 0.900)")
    assert "default stays active" in words


def test_marked_layer_joins_the_training_data(widget, qtbot):
    widget.viewer.open_sample("napari-nevseg", "IMD008")
    widget.viewer.layers.selection.active = widget.viewer.layers["IMD008"]
    widget.predict.predict_selected()
    wait_idle(qtbot, widget)
    labels = widget.viewer.layers["IMD008 mask"]
    widget.viewer.layers.selection.active = labels
    widget.finetune.mark_selected()
    pairs = widget.finetune.marked_layers()
    assert len(pairs) == 1 and pairs[0][1] is labels


def test_model_import_refuses_a_pickle_and_export_round_trips(widget, project_dir, qtbot, tmp_path, notifications):
    import pickle

    widget.open_project(project_dir)
    wait_idle(qtbot, widget)
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"a": 1}))
    assert widget.models.import_file(bad) is None
    assert any("pickle" in message for message in notifications)
    out = widget.models.export("default", tmp_path / "exported")
    assert out.suffix == ".safetensors" and out.stat().st_size > 100_000
    version = widget.models.import_file(out)
    assert version == "v1"
    wait_idle(qtbot, widget)
    assert widget.controller.session.version == "v1"
    assert np.isfinite(widget.controller.session.predict(np.zeros((40, 50, 3), np.uint8)).uncertainty)


def test_training_imports_are_warmed_after_the_model_loads(widget, qtbot):
    """The first AdamW step's one-off imports run in a worker once a model has loaded, not in
    the fine-tune worker where they stalled the viewer."""
    from napari_nevseg.widgets._workers import TRAINING_WARM

    qtbot.waitUntil(lambda: widget.controller.session is not None, timeout=LONG)
    qtbot.waitUntil(TRAINING_WARM.is_set, timeout=LONG)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="per-thread nice is Linux-only")
def test_finetune_job_runs_at_background_priority():
    """The worker body lowers its own thread's priority while it trains, not the caller's."""
    import os
    import threading

    from napari_nevseg.core.session import ModelSession
    from napari_nevseg.core.training.plan import plan_finetune, with_overrides
    from napari_nevseg.widgets._finetune_job import finetune_job

    session = ModelSession.load("default", "cpu")
    items = [("file", stem, SAMPLES / "images" / f"{stem}.png", SAMPLES / "masks" / f"{stem}.png")
             for stem in ("IMD003", "IMD008", "IMD405")]
    plan = with_overrides(plan_finetune(3, pool=1, threads=1, device="cpu"), epochs=1, batch_size=2)
    seen = {}

    def run():
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        job = finetune_job(session.cpu_copy(), items[:2], items[2:], plan, niceness=7)
        next(job)
        seen["during"] = os.getpriority(os.PRIO_PROCESS, tid)
        job.close()

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["during"] == min(19, seen["before"] + 7)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
