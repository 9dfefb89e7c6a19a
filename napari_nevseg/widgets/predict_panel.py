"""Predict panel: threshold and clean-up controls; predict the selected image, all open images
or the whole project in a background worker with a progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QPushButton, QVBoxLayout, QWidget

from napari_nevseg.widgets._advanced import collapsible, predict_settings
from napari_nevseg.widgets._layers import (
    add_mask_layer,
    apply_mask_undoable,
    image_rgb,
    set_or_add_probability,
)

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets._workers import Predicted
    from napari_nevseg.widgets.controller import ReviewController


class PredictPanel(QWidget):
    """Controls for prediction; results go to Labels layers tied to their images."""

    def __init__(self, controller: ReviewController, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = view
        self.worker = None
        #: threshold and clean-up: a magicgui form, folded away under "Advanced"
        self.settings = predict_settings()
        self.threshold = self.settings.threshold.native
        self.keep_largest = self.settings.keep_largest.native
        self.fill_holes = self.settings.fill_holes.native
        self.smooth = self.settings.smooth.native
        self.probability = self.settings.probability.native
        self.predict_selected_btn = QPushButton("Predict selected image")
        self.predict_all_btn = QPushButton("Predict all open images")
        self.predict_project_btn = QPushButton("Predict project (unreviewed)")
        self.predict_project_btn.setToolTip("predict every image of the project that is not reviewed yet")
        self.advanced = collapsible(self.settings.native, "Advanced: threshold and clean-up")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.predict_selected_btn, self.predict_all_btn, self.predict_project_btn):
            layout.addWidget(button)
        layout.addWidget(self.advanced)

        self.predict_selected_btn.clicked.connect(self.predict_selected)
        self.predict_all_btn.clicked.connect(self.predict_all_open)
        self.predict_project_btn.clicked.connect(self.predict_project)
        events = controller.events
        events.busy_changed.connect(self._update_enabled)
        events.session_changed.connect(self._update_enabled)
        events.project_changed.connect(self._update_enabled)
        events.predict_requested.connect(self._on_requested)
        self._update_enabled()

    # -- settings ------------------------------------------------------------------------
    def cleanup(self):
        from napari_nevseg.core.postprocess import Cleanup

        return Cleanup(self.keep_largest.isChecked(), self.fill_holes.isChecked(), self.smooth.isChecked())

    def _update_enabled(self, *_) -> None:
        ready = self.controller.session is not None and not self.controller.is_busy("predict")
        self.predict_selected_btn.setEnabled(ready)
        self.predict_all_btn.setEnabled(ready)
        self.predict_project_btn.setEnabled(ready and self.controller.project is not None)

    def _on_requested(self, what: str) -> None:
        """The controller asks for the project's unreviewed images or the image on screen."""
        if what == "project":
            self.predict_project()
        elif self.view.layer_in_viewer(self.view.image_layer):
            self.predict_layers([self.view.image_layer])

    # -- actions -------------------------------------------------------------------------
    def _image_layers(self, selected_only: bool):
        from napari.layers import Image

        if selected_only:
            layers = [layer for layer in self.view.viewer.layers.selection if isinstance(layer, Image)]
            if not layers:
                active = self.view.viewer.layers.selection.active
                label = "nothing is selected" if active is None else f"{active.name!r} is not an image layer"
                raise ValueError(f"{label}: select an image layer in the layer list, then predict")
            return layers
        layers = [layer for layer in self.view.viewer.layers if isinstance(layer, Image) and not layer.name.endswith(" probability")]
        if not layers:
            raise ValueError("no image is open: open an image (File > Open) or a project folder first")
        return layers

    def predict_selected(self) -> None:
        self._predict_layers(selected_only=True)

    def predict_all_open(self) -> None:
        self._predict_layers(selected_only=False)

    def _predict_layers(self, selected_only: bool) -> None:
        from napari.utils.notifications import show_error

        try:
            layers = self._image_layers(selected_only)
        except ValueError as exc:
            show_error(str(exc))
            return
        self.predict_layers(layers)

    def predict_layers(self, layers) -> None:
        """Predict the given image layers in one worker (copies of their data are taken here)."""
        from napari.utils.notifications import show_error, show_warning

        if self.controller.session is None:
            show_warning("the model is still loading; try again in a moment")
            return
        if self.controller.is_busy("predict"):
            show_warning("a prediction is already running; wait for it to finish")
            return
        jobs = []
        for layer in layers:
            try:
                jobs.append((layer, image_rgb(layer)))
            except ValueError as exc:
                show_error(str(exc))
        if jobs:
            self._start(self._arrays_worker(jobs), len(jobs))

    def _arrays_worker(self, jobs):
        from napari_nevseg.widgets._workers import predict_arrays

        return predict_arrays, (self.controller.session, jobs, self.threshold.value(), self.cleanup(), self.probability.isChecked())

    def predict_project(self) -> None:
        from napari.utils.notifications import show_error, show_info, show_warning

        from napari_nevseg.widgets._workers import predict_project

        project = self.controller.project
        if project is None:
            show_error("no project is open: open a project folder (images/ + masks/) first")
            return
        todo = [stem for stem, record in project.records.items() if not record.status.decided]
        if not todo:
            show_info("every image of the project is reviewed; nothing to predict")
            return
        if self.controller.is_busy("predict"):
            show_warning("a prediction is already running; wait for it to finish")
            return
        args = (self.controller.session, project, todo, self.threshold.value(), self.cleanup())
        self._start((predict_project, args), len(todo))

    def _start(self, job, total: int) -> None:
        from napari_nevseg.widgets._jobs import start_worker

        func, args = job
        self.controller.set_busy("predict", True)
        self.worker = start_worker(self.controller, func, *args, _progress={"total": total, "desc": "NevSeg: predicting"},
                                   yielded=self._on_predicted, finished=self._on_finished)

    def _on_finished(self) -> None:
        self.worker = None
        self.controller.set_busy("predict", False)
        self.controller.resort()

    def _on_predicted(self, result: Predicted) -> None:
        from napari.layers import Image
        from napari.utils.notifications import show_error, show_warning

        for note in result.notes:
            show_warning(note)
        if result.error:
            show_error(result.error)
            return
        if isinstance(result.key, Image):
            self._show_layer_result(result)
        else:
            self._store_project_result(result)

    def _show_layer_result(self, result: Predicted) -> None:
        image_layer = result.key
        viewer = self.view.viewer
        if image_layer not in viewer.layers:
            return  # the image was closed while predicting: nothing to update
        if result.probability is not None:
            set_or_add_probability(viewer, result.probability, f"{image_layer.name} probability")
        if image_layer is self.view.image_layer and self.controller.current_stem is not None:
            self._show_on_review_image(result)
            return
        labels = self.view.labels_for(image_layer)
        if labels is not None and labels.data.shape == result.mask.shape:
            apply_mask_undoable(labels, result.mask)
        else:
            labels = add_mask_layer(viewer, result.mask, f"{image_layer.name} mask")
            self.view.tie(image_layer, labels)
        labels.metadata["nevseg"] = {"model_version": result.version, "uncertainty": result.uncertainty}
        self.view.mask_edited.emit()

    def _show_on_review_image(self, result: Predicted) -> None:
        """A prediction asked for the image under review: a reviewed or edited mask is never
        replaced; the prediction goes to a layer beside it and the record stays as it was."""
        from napari.utils.notifications import show_info

        stem = self.controller.current_stem
        record = self.controller.project.records[stem]
        if record.status.decided or self.view.is_dirty():
            name = f"{stem} new prediction ({result.version})"
            if name in self.view.viewer.layers:
                self.view.viewer.layers.remove(name)
            add_mask_layer(self.view.viewer, result.mask, name, like=self.view.mask_layer, comparison=True)
            self.view.viewer.layers.selection.active = self.view.mask_layer
            kept = record.status.value if record.status.decided else "edited"
            show_info(f"{stem} keeps its {kept} mask; the new prediction is in the layer '{name}' beside it")
            return
        self.controller.project.write_prediction_file(stem, result.mask)
        self.controller.commit_prediction(stem, result.version, result.uncertainty, result.model_hash)
        self._replace_review_mask(result.mask)

    def _replace_review_mask(self, mask) -> None:
        if self.view.layer_in_viewer(self.view.mask_layer):
            apply_mask_undoable(self.view.mask_layer, mask)
            self.view.baseline = (mask > 0).copy()
            self.view.mask_edited.emit()

    def _store_project_result(self, result: Predicted) -> None:
        """One finished project image: its file is written (by the worker); commit one record,
        which repaints one queue row. O(1) however large the project."""
        stem = result.key
        record = self.controller.commit_prediction(stem, result.version, result.uncertainty, result.model_hash)
        if record is None or stem != self.controller.current_stem:
            return
        if not record.status.decided and not self.view.is_dirty():
            self._replace_review_mask(result.mask)
