"""The NevSeg dock widget: model status on top, then tabs for review, measurements,
fine-tuning and model versions. It builds the shared state, the panels, and connects them."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QGroupBox, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from napari_nevseg.widgets._state import AppState
from napari_nevseg.widgets.cleanup_panel import CleanupPanel
from napari_nevseg.widgets.display_row import MaskDisplayRow
from napari_nevseg.widgets.measure_panel import MeasurePanel
from napari_nevseg.widgets.predict_panel import PredictPanel
from napari_nevseg.widgets.review_panel import ReviewPanel

if TYPE_CHECKING:
    import napari

#: the dock's preferred width: at most 420 px keeps 60% of a 1920-px window for the canvas and
#: leaves the canvas more than half of a 1366-px laptop screen beside napari's layer list
DOCK_WIDTH = 380

#: the fine-tune path's one-off imports were done (once per process, see training.warm_up)
_TRAINING_WARMED = False


def _group(title: str, child: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    QVBoxLayout(box).addWidget(child)
    return box


class _TabScroll(QScrollArea):
    """A tab page that scrolls vertically: a tab taller than a laptop screen scrolls instead of
    forcing the window taller than the screen (or squashing its spin boxes). Its minimum width
    is its page's, so narrowing the dock never cuts a control off."""

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(page)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        page = self.widget().minimumSizeHint().width()
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(page + bar + 2 * self.frameWidth(), super().minimumSizeHint().height())


def _stop_workers(workers: list) -> None:
    """Ask running workers to stop at their next yield (called when the widget goes away)."""
    for worker in workers:
        try:
            worker.quit()
        except RuntimeError:  # the Qt side is already gone
            pass


class NevsegWidget(QWidget):
    """Review, correct, measure and fine-tune, in one dock."""

    def __init__(self, napari_viewer: napari.Viewer, model: str = "default", device: str = "auto") -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = AppState(napari_viewer)
        self.status_label = QLabel("loading the model…")
        self.status_label.setWordWrap(True)
        self.review = ReviewPanel(self.state)
        self.predict = PredictPanel(self.state, review=self.review)
        self.review.predict_panel = self.predict
        self.cleanup = CleanupPanel(self.state)
        self.measure = MeasurePanel(self.state)

        self.display = MaskDisplayRow(napari_viewer)

        review_tab = QWidget()
        review_layout = QVBoxLayout(review_tab)
        review_layout.addWidget(_group("Project and queue", self.review))
        review_layout.addWidget(self.display)
        review_layout.addWidget(_group("Clean up the mask (Ctrl+Z undoes)", self.cleanup))
        review_layout.addWidget(_group("Predict", self.predict))
        review_layout.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(_TabScroll(review_tab), "Review")
        self.tabs.addTab(_TabScroll(self.measure), "Measure")
        self._add_training_tabs()

        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(self.tabs)

        self.state.session_changed.connect(self._update_status)
        self.state.busy_changed.connect(self._update_status)
        self._workers: list = []
        self._torn_down = False
        self.destroyed.connect(partial(_stop_workers, self._workers))
        self.load_model(model, device)

    def _add_training_tabs(self) -> None:
        """Fine-tune and Models tabs (imported lazily: they pull in matplotlib)."""
        from napari_nevseg.widgets.finetune_panel import FinetunePanel
        from napari_nevseg.widgets.models_panel import ModelsPanel

        self.models = ModelsPanel(self.state, self)
        self.finetune = FinetunePanel(self.state, self)
        self.tabs.addTab(_TabScroll(self.finetune), "Fine-tune")
        self.tabs.addTab(_TabScroll(self.models), "Models")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Ask for :data:`DOCK_WIDTH`; the tabs scroll vertically and wrap their text, so
        every control stays usable at that width."""
        return QSize(DOCK_WIDTH, super().sizeHint().height())

    def show_panel(self, panel: QWidget) -> None:
        """Bring the tab holding ``panel`` to the front (each tab wraps its panel in a scroll area)."""
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            if page is panel or page.isAncestorOf(panel):
                self.tabs.setCurrentIndex(index)
                return

    # -- model ---------------------------------------------------------------------------
    def load_model(self, spec: str = "default", device: str = "auto", version: str | None = None) -> None:
        """Load a model in a worker (torch imports there); the GUI stays responsive."""
        from napari.qt.threading import create_worker

        from napari_nevseg.widgets._workers import load_session

        self.state.set_busy("load", True)
        worker = create_worker(load_session, spec, device, _progress={"desc": "NevSeg: loading model"})
        worker.returned.connect(partial(self._on_model_loaded, version))
        worker.errored.connect(lambda _exc: self.status_label.setText("the model could not be loaded (see notifications)"))
        worker.finished.connect(lambda: self.state.set_busy("load", False))
        self.track(worker)
        worker.start()

    def _on_model_loaded(self, version: str | None, session) -> None:
        from napari_nevseg.widgets._workers import LoadFailed

        if isinstance(session, LoadFailed):
            from napari.utils.notifications import show_error

            show_error(f"{session.message}; the previous model stays active")
            self._update_status()
            return
        if version:
            session.version = version
        self.state.set_session(session)
        self._warm_up_training()

    def _warm_up_training(self) -> None:
        """Once per process, after the first model load: the fine-tune path's imports, in a worker."""
        global _TRAINING_WARMED
        if _TRAINING_WARMED:
            return
        _TRAINING_WARMED = True
        from napari.qt.threading import create_worker

        from napari_nevseg.widgets._workers import warm_up_training

        worker = create_worker(warm_up_training)
        self.track(worker)
        worker.start()

    def track(self, worker) -> None:
        """Remember a worker so it is stopped if the widget is closed mid-work."""
        self._workers.append(worker)
        worker.finished.connect(lambda: self._workers.remove(worker) if worker in self._workers else None)

    def _update_status(self, *_) -> None:
        session = self.state.session
        parts = []
        if session is None:
            parts.append("loading the model…" if self.state.is_busy("load") else "no model loaded")
        else:
            parts.append(f"model <b>{session.version}</b> on {session.device.type}")
        for job, text in (("predict", "predicting…"), ("train", "fine-tuning…"), ("load", "loading a model…")):
            if self.state.is_busy(job) and session is not None:
                parts.append(text)
        self.status_label.setText(" · ".join(parts))

    # -- public entry points (used by the launcher and tests) -------------------------------
    def open_project(self, folder) -> bool:
        return self.review.open_project(folder)

    def closeEvent(self, event) -> None:
        self.teardown()
        super().closeEvent(event)

    def teardown(self) -> None:
        """Stop workers, save edits and release the keys this widget bound."""
        if self._torn_down:
            return
        self._torn_down = True
        _stop_workers(list(self._workers))
        self.review.save_current_edits()
        self.review.unbind_keys()
        self.measure.teardown()
        self.display.teardown()
