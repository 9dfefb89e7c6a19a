"""Fine-tune panel: train a copy of the current model on the reviewed masks in a background
worker, with a live plot, elapsed and remaining time, and Cancel (which keeps the old model).

Its main view is what a reviewer needs: how many images it will learn from, *Fine-tune*,
progress, and the result in words. How to train is the plan the data chooses
(``core.training.plan``); the knobs wait under "Advanced", each at "auto"."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_nevseg.core.threads import threads_beside_a_viewer
from napari_nevseg.widgets._advanced import collapsible, train_settings
from napari_nevseg.widgets._plot import CorrectionsPlot, LivePlot

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

GROUND_TRUTH_KEY = "nevseg_ground_truth"


def default_threads() -> int:
    """Torch threads while fine-tuning in the GUI: all cores but one, which the GUI keeps."""
    return threads_beside_a_viewer()


class FinetunePanel(QWidget):
    """Fine-tune on the project's reviewed masks (and viewer layers marked as ground truth)."""

    def __init__(self, controller: ReviewController, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = view
        self.worker = None
        self.started_at = 0.0
        #: how much lower than the GUI the training thread's CPU priority is (Linux nice levels)
        self.niceness = 10
        self.data_label = QLabel("open a project folder: fine-tuning learns from its reviewed masks")
        self.data_label.setWordWrap(True)
        self.upright = QCheckBox("objects have an up (people, not lesions)")
        self.upright.setToolTip("train without rotations and predict without upside-down flips; "
                                "leave off for lesions, which look the same at any angle")
        self.start_btn = QPushButton("Fine-tune")
        self.cancel_btn = QPushButton("Cancel")
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.plot = LivePlot()
        #: the last run's outcome in words (better on the pool, not better, or untested yet)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.repredict_btn = QPushButton("Re-predict unreviewed with the active model")
        self.rounds_label = QLabel("")
        self.rounds_label.setWordWrap(True)
        self.rounds_plot = CorrectionsPlot()
        # folded away: the pool, the recipe's knobs (each "auto"), marking a layer as ground truth
        self.val_label = QLabel("")
        self.val_label.setWordWrap(True)
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        self.settings = train_settings(default_threads())
        self.epochs = self.settings.epochs.native
        self.patience = self.settings.patience.native
        self.lr = self.settings.learning_rate.native
        self.threads = self.settings.threads.native
        self.mark_btn = QPushButton("Use selected mask layer as ground truth")
        self.mark_btn.setToolTip("a Labels layer tied to its image (e.g. a corrected prediction) joins the training data")
        advanced = QWidget()
        inner = QVBoxLayout(advanced)
        inner.setContentsMargins(0, 0, 0, 0)
        for widget in (self.plan_label, self.val_label, self.settings.native, self.mark_btn):
            inner.addWidget(widget)
        self.advanced = collapsible(advanced, "Advanced: recipe, validation pool")

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.data_label)
        layout.addWidget(self.upright)
        layout.addLayout(buttons)
        for widget in (self.progress_label, self.plot, self.result_label, self.repredict_btn):
            layout.addWidget(widget)
        corrections = QLabel("<b>Corrections needed, per model version</b> (mean Dice of prediction vs final mask):")
        corrections.setWordWrap(True)  # unwrapped, this one line forced the dock to 600 px
        layout.addWidget(corrections)
        layout.addWidget(self.rounds_label)
        layout.addWidget(self.rounds_plot)
        layout.addWidget(self.advanced)
        layout.addStretch(1)

        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.mark_btn.clicked.connect(self.mark_selected)
        self.repredict_btn.clicked.connect(self.repredict)
        events = controller.events
        events.project_changed.connect(self.refresh)
        events.reviewed.connect(self.refresh)  # not on each prediction: refresh reads every record
        events.busy_changed.connect(self._update_enabled)
        events.session_changed.connect(self._update_enabled)
        events.session_changed.connect(self._follow_model)
        self.refresh()

    # -- data ----------------------------------------------------------------------------
    def marked_layers(self) -> list:
        from napari.layers import Image

        pairs = []
        for layer in self.view.viewer.layers:
            if isinstance(layer, Image):
                labels = self.view.labels_for(layer)
                if labels is not None and labels.metadata.get(GROUND_TRUTH_KEY):
                    pairs.append((layer, labels))
        return pairs

    def mark_selected(self) -> None:
        from napari.layers import Image, Labels
        from napari.utils.notifications import show_error, show_info

        active = self.view.viewer.layers.selection.active
        if not isinstance(active, Labels):
            show_error("select a mask (Labels) layer first, e.g. a corrected prediction")
            return
        image = next((im for im in self.view.viewer.layers if isinstance(im, Image) and self.view.labels_for(im) is active), None)
        if image is None:
            show_error(f"{active.name!r} is not tied to an image: predict the image first, then correct its mask")
            return
        active.metadata[GROUND_TRUTH_KEY] = True
        show_info(f"{active.name!r} will be used as ground truth for fine-tuning")
        self.refresh()

    def refresh(self, *_) -> None:
        from napari_nevseg.core.training.plan import POOL_FROM

        project = self.controller.project
        marked = len(self.marked_layers())
        if project is None:
            self.data_label.setText(f"open a project folder: model versions are stored in it ({marked} marked layers)")
            self.val_label.setText("")
            self.plan_label.setText("")
        else:
            reviewed = project.training_stems()
            n = len(reviewed) + marked
            new = self._new_count(reviewed) + marked
            version = self.controller.session.version if self.controller.session is not None else "the model"
            self.data_label.setText(
                f"Fine-tune will learn from <b>{n:,} reviewed images</b>"
                + (f" ({marked} marked layers)" if marked else "")
                + (f", {new:,} of them new to {version}" if 0 < new < n else "")
                + (f": {version} has learned them all; review more first" if n and not new else "")
            )
            pool = [s for s in project.validation if s in reviewed]
            self.val_label.setText(
                "validation pool (fixed): " + (", ".join(pool) if pool else
                                               f"none yet (held out from {POOL_FROM} reviewed images on)")
            )
            self.plan_label.setText(self._plan_words(n, new))
            by_version = project.correction_dice_by_version()
            self.rounds_label.setText(
                " · ".join(f"{v}: {d:.3f}" for v, d in by_version.items()) or "no reviewed predictions yet"
            )
            self.rounds_plot.set_values(by_version)
        self._update_enabled()

    def _new_count(self, stems) -> int:
        """Reviewed images the active model has not trained on."""
        from napari_nevseg.core.training.plan import count_new

        session = self.controller.session
        return count_new(session.meta if session is not None else {}, stems)

    def _plan_words(self, n: int, new: int) -> str:
        from napari_nevseg.core.training.plan import plan_finetune

        try:
            plan = plan_finetune(n, n_new=new, upright=self.upright.isChecked())
        except ValueError as exc:
            return str(exc)
        return "recipe: " + "; ".join(plan.reasons)

    def _follow_model(self, *_) -> None:
        """Start from what the active model was trained with: a model fine-tuned upright is
        fine-tuned upright again (its test-time flips assume it)."""
        session = self.controller.session
        training = (session.meta.get("training") or {}) if session is not None else {}
        augment = (training.get("config") or {}).get("augment") or {}
        if "rotate" in augment:
            self.upright.setChecked(not augment["rotate"])

    def _update_enabled(self, *_) -> None:
        training = self.controller.is_busy("train")
        ready = self.controller.session is not None and self.controller.project is not None
        self.start_btn.setEnabled(ready and not training)
        self.cancel_btn.setEnabled(training)
        self.mark_btn.setEnabled(not training)
        self.repredict_btn.setEnabled(ready and not training and not self.controller.is_busy("predict"))

    # -- training ------------------------------------------------------------------------
    def _collect(self):
        """Main thread: the sample lists for the worker (paths for project images, copies for
        layers) and the plan the data chooses, with any knob set by hand."""
        from napari_nevseg.core.training.plan import POOL_MIN, plan_finetune, pool_size, with_overrides
        from napari_nevseg.widgets._layers import image_rgb

        project = self.controller.project
        self.controller.save_edits()
        reviewed = project.training_stems()  # after saving: the mask on screen may be the first
        marked = self.marked_layers()
        n = len(reviewed) + len(marked)
        if not n:
            raise ValueError("no training images yet: accept or correct a few masks first (Y accepts)")
        if pool_size(n):
            pool = project.ensure_validation(fraction=0.2, minimum=POOL_MIN)
        else:  # a handful: train on all (a pool an earlier run chose stays held out)
            pool = [s for s in project.validation if s in reviewed]
        train_stems = [s for s in reviewed if s not in pool]
        train = [("file", s, project.image_path(s), project.mask_path(s)) for s in train_stems]
        val = [("file", s, project.image_path(s), project.mask_path(s)) for s in pool]
        for image, labels in marked:
            train.append(("array", image.name, image_rgb(image), np.asarray(labels.data) > 0))
        plan = plan_finetune(n, n_new=self._new_count(reviewed) + len(marked), pool=len(pool),
                             upright=self.upright.isChecked(), device=self.controller.session.device.type,
                             threads=self.threads.value())
        return train, val, with_overrides(plan, **self._by_hand())

    def _by_hand(self) -> dict:
        """The recipe's knobs that are not at "auto"."""
        knobs = {"epochs": self.epochs.value(), "patience": self.patience.value(), "lr": self.lr.value()}
        return {name: value for name, value in knobs.items() if value}

    def start(self) -> None:
        """Start fine-tuning the active model in a worker, as the data's plan says."""
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.widgets._finetune_job import finetune_job
        from napari_nevseg.widgets._jobs import start_worker

        if self.controller.session is None or self.controller.project is None:
            show_error("open a project folder and wait for the model to load before fine-tuning")
            return
        if self.controller.is_busy("train"):
            return
        try:
            train, val, plan = self._collect()
        except (NevsegError, ValueError) as exc:
            show_error(str(exc))
            return
        init = self.controller.session.cpu_copy()
        self.plot.reset(validated=bool(val))
        self.result_label.setText("")
        self.started_at = time.perf_counter()
        self.controller.set_busy("train", True)
        judged = f"validating on {len(val):,}" if val else "no validation pool: the next reviews will judge it"
        self.progress_label.setText(f"fine-tuning on {len(train):,} images, {judged}…")
        self.plan_label.setText("recipe: " + "; ".join(plan.reasons))
        steps_per_epoch = max(1, -(-(plan.config.epoch_size or len(train)) // plan.config.batch_size))
        self.worker = start_worker(
            self.controller, finetune_job, init, train, val, plan, self.niceness,
            _progress={"total": plan.config.epochs * steps_per_epoch, "desc": "NevSeg: fine-tuning"},
            yielded=self._on_progress, returned=self._on_done, aborted=self._on_cancelled, finished=self._on_finished,
            errored=lambda _e: self.progress_label.setText("fine-tuning failed (see notifications)"))

    def cancel(self) -> None:
        """Stop at the next step; the active model stays as it was."""
        if self.worker is not None:
            self.progress_label.setText("cancelling…")
            self.worker.quit()

    def _on_progress(self, progress) -> None:
        self.plot.add_step(progress.step, progress.loss)
        if progress.val_dice is not None:
            self.plot.add_epoch(progress.step, progress.val_dice)
        self.plot.redraw()
        best = f" · best val Dice {progress.best_val_dice:.3f}" if progress.best_val_dice is not None else ""
        self.progress_label.setText(
            f"epoch {progress.epoch}/{progress.epochs} · loss {progress.loss:.3f}{best} · "
            f"{progress.elapsed_s:.0f} s elapsed, about {progress.remaining_s:.0f} s left"
        )

    def _on_done(self, result) -> None:
        """Main thread: the core adopts the result (a new active version) or says why not."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.adopt import adopt_finetune
        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.core.session import ModelSession

        project, registry = self.controller.project, self.controller.registry
        if project is None or registry is None:
            return
        try:
            # with a pool, a run must beat its start there; without one the next reviews judge it
            validated = bool(result.metadata["training"]["val_images"])
            outcome = adopt_finetune(result, registry, project, min_gain=0.0 if validated else None)
        except NevsegError as exc:
            show_error(f"{exc}; the previous model stays active")
            return
        self.progress_label.setText("done")
        self.result_label.setText(outcome.message)
        if not outcome.adopted:
            show_info(outcome.message)
            return
        from napari_nevseg.core.content_hash import file_sha256

        device = self.controller.session.device if self.controller.session is not None else None
        # named by its file's hash, as when the version is loaded later: one model, one name
        content_hash = file_sha256(registry.path(outcome.version))
        session = ModelSession(result.model, outcome.metadata, device, outcome.version, content_hash)
        self.controller.set_session(session)
        if session.supports_clicks:
            from napari_nevseg.widgets._jobs import start_worker
            from napari_nevseg.widgets._workers import warm_clicks

            start_worker(self.controller, warm_clicks, session)
        show_info(f"{outcome.message}; 'Re-predict unreviewed' updates the queue")

    def _on_cancelled(self) -> None:
        from napari.utils.notifications import show_info

        self.progress_label.setText("cancelled: the previous model is still active")
        show_info("fine-tuning cancelled; the previous model is still active")

    def _on_finished(self) -> None:
        self.worker = None
        self.controller.set_busy("train", False)
        self.refresh()

    def repredict(self) -> None:
        """Re-predict every unreviewed image with the active model (the queue re-sorts)."""
        self.controller.events.predict_requested.emit("project")
