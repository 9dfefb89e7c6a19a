"""The NevSeg dock widget: model status on top, then tabs for review, measurements,
fine-tuning and model versions. It builds the controller, the view state and the panels; the
panels listen to the controller and never see one another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import QFrame, QGroupBox, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from napari_nevseg.widgets._state import ViewState
from napari_nevseg.widgets.cleanup_panel import CleanupPanel
from napari_nevseg.widgets.click_panel import ClickPanel
from napari_nevseg.widgets.click_tool import CLICK_KEYS, ClickTool
from napari_nevseg.widgets.controller import ReviewController
from napari_nevseg.widgets.display_row import MaskDisplayRow
from napari_nevseg.widgets.history_panel import HistoryPanel
from napari_nevseg.widgets.measure_panel import MeasurePanel
from napari_nevseg.widgets.predict_panel import PredictPanel
from napari_nevseg.widgets.review_panel import PROJECT_KEY, ReviewPanel

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


class _WindowWatcher(QObject):
    """Watches the widget's ancestors: a dock moved into the main window binds the keys there;
    the main window closing tears the widget down (before Qt deletes it)."""

    def __init__(self, dock: NevsegWidget) -> None:
        super().__init__(dock)
        self.dock = dock

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if self.dock._torn_down:
            return False
        if event.type() == QEvent.Type.Close and obj is self.dock._window:
            self.dock.teardown()
        elif event.type() == QEvent.Type.ParentChange:
            self.dock._bind_to_window()
        return False


class NevsegWidget(QWidget):
    """Review, correct, measure and fine-tune, in one dock."""

    def __init__(self, napari_viewer: napari.Viewer, model: str = "default", device: str = "auto") -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.controller = ReviewController()
        self.view = ViewState(napari_viewer)
        self.status_label = QLabel("loading the model…")
        self.status_label.setWordWrap(True)
        self.review = ReviewPanel(self.controller, self.view)
        self.history = HistoryPanel(self.controller, self.view)
        self.predict = PredictPanel(self.controller, self.view)
        self.cleanup = CleanupPanel(self.view)
        self.measure = MeasurePanel(self.controller, self.view)
        self.clicks = ClickTool(self.controller, self.view,
                                lambda: (self.predict.threshold.value(), self.predict.cleanup()))
        self.click_panel = ClickPanel(self.clicks)

        self.display = MaskDisplayRow(napari_viewer)

        review_tab = QWidget()
        review_layout = QVBoxLayout(review_tab)
        review_layout.addWidget(_group("Project and queue", self.review))
        review_layout.addWidget(_group("Reviewer and history", self.history))
        review_layout.addWidget(self.display)
        review_layout.addWidget(_group("Click to correct", self.click_panel))
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

        events = self.controller.events
        events.session_changed.connect(self._update_status)
        events.busy_changed.connect(self._update_status)
        events.model_requested.connect(self.load_model)
        self._torn_down = False
        self._bind_lifetime()
        self.load_model(model, device)
        self._resume_project()

    def _add_training_tabs(self) -> None:
        """Fine-tune and Models tabs (imported lazily: they pull in matplotlib)."""
        from napari_nevseg.widgets.finetune_panel import FinetunePanel
        from napari_nevseg.widgets.models_panel import ModelsPanel

        self.models = ModelsPanel(self.controller)
        self.finetune = FinetunePanel(self.controller, self.view)
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

    # -- lifetime ----------------------------------------------------------------------------
    def _bind_lifetime(self) -> None:
        """Teardown when the application quits; the keys follow once the widget is docked."""
        from qtpy.QtWidgets import QApplication

        self.keys = self.click_keys = None
        self._window = None
        self._close_watcher = _WindowWatcher(self)
        QApplication.instance().aboutToQuit.connect(self._on_quit)

    def _bind_to_window(self) -> None:
        """Docked: bind the review keys to the viewer's main window and watch it close."""
        from qtpy.QtWidgets import QMainWindow

        from napari_nevseg.widgets._keys import ReviewKeys

        window, top = self.parentWidget(), self
        while window is not None and not isinstance(window, QMainWindow):
            top, window = window, window.parentWidget()
        if window is None:  # not in a main window yet: wait for the dock to be put in one
            if top is not self:
                top.installEventFilter(self._close_watcher)
            return
        if window is self._window:
            return
        self._unbind_window()
        self._window = window
        self.keys = ReviewKeys(window, {"next": self.review.next_image, "previous": self.review.previous_image,
                                        "accept": self.review.accept_current})
        self.click_keys = ReviewKeys(window, {"toggle_kind": self.clicks.toggle_kind, "box": self.clicks.arm_box},
                                     bindings=CLICK_KEYS)
        window.installEventFilter(self._close_watcher)

    def _unbind_window(self) -> None:
        for keys in (self.keys, self.click_keys):
            if keys is not None:
                keys.unbind()
        self.keys = self.click_keys = None
        if self._window is not None:
            self._window.removeEventFilter(self._close_watcher)
            self._window = None

    def _resume_project(self) -> None:
        """A dock reopened on a viewer that shows a project image takes that project up again."""
        for layer in self.viewer.layers:
            root = layer.metadata.get(PROJECT_KEY)
            if root:
                self.view.image_layer = layer
                self.review.open_project(root, stem=layer.name)
                return

    def event(self, event) -> bool:
        """Docked: bind to the window. The dock's X (napari's remove_dock_widget) takes the
        widget out of its dock: tear down."""
        if event.type() == QEvent.Type.ParentChange and not self._torn_down:
            if self.parent() is None:
                self.teardown()
            else:
                self._bind_to_window()
        return super().event(event)

    def _on_quit(self) -> None:
        from napari_nevseg.widgets._jobs import join_thread_pool

        self.teardown()
        join_thread_pool()

    # -- model ---------------------------------------------------------------------------
    def load_model(self, spec: str = "default", device: str = "auto", version: str | None = None) -> None:
        """Load a model in a worker (torch imports there); the GUI stays responsive."""
        from napari_nevseg.widgets._jobs import start_worker
        from napari_nevseg.widgets._workers import load_session

        if self._torn_down:
            return
        self.controller.set_busy("load", True)
        start_worker(self.controller, load_session, spec, device, _progress={"desc": "NevSeg: loading model"},
                     returned=lambda session: self._on_model_loaded(version, session),
                     errored=lambda _exc: self.status_label.setText("the model could not be loaded (see notifications)"),
                     finished=lambda: self.controller.set_busy("load", False))

    def _on_model_loaded(self, version: str | None, session) -> None:
        from napari_nevseg.widgets._workers import LoadFailed

        if self._torn_down:  # delivered after teardown (quitting): start nothing any more
            return
        if isinstance(session, LoadFailed):
            from napari.utils.notifications import show_error

            show_error(f"{session.message}; the previous model stays active")
            self._update_status()
            return
        if version:
            session.version = version
        self.controller.set_session(session)
        self._warm_up_training()

    def _warm_up_training(self) -> None:
        """Once per process, after the first model load: the fine-tune path's imports, in a worker."""
        global _TRAINING_WARMED
        if _TRAINING_WARMED:
            return
        _TRAINING_WARMED = True
        from napari_nevseg.widgets._jobs import start_worker
        from napari_nevseg.widgets._workers import warm_up_training

        start_worker(self.controller, warm_up_training)

    @staticmethod
    def training_ready() -> bool:
        """Whether the first fine-tune step's one-off imports are done (they run in a worker
        after the first model load, once per process). Measurements of the viewer's
        responsiveness wait for it, so that this one-off cost does not count against them."""
        from napari_nevseg.widgets._workers import TRAINING_WARM

        return TRAINING_WARM.is_set()

    def _update_status(self, *_) -> None:
        session = self.controller.session
        parts = []
        if session is None:
            parts.append("loading the model…" if self.controller.is_busy("load") else "no model loaded")
        else:
            parts.append(f"model <b>{session.version}</b> on {session.device.type}")
        for job, text in (("predict", "predicting…"), ("train", "fine-tuning…"), ("load", "loading a model…")):
            if self.controller.is_busy(job) and session is not None:
                parts.append(text)
        self.status_label.setText(" · ".join(parts))

    # -- public entry points (used by the launcher and tests) -------------------------------
    def open_project(self, folder) -> bool:
        return self.review.open_project(folder)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.teardown()
        super().closeEvent(event)

    def teardown(self) -> None:
        """Save edits, stop and join the workers, release the keys and the viewer's events."""
        if self._torn_down:
            return
        self._torn_down = True
        from qtpy.QtWidgets import QApplication

        from napari_nevseg.widgets._jobs import stop_and_join

        self.review.save_current_edits()
        stop_and_join(self.controller)
        self._unbind_window()
        QApplication.instance().aboutToQuit.disconnect(self._on_quit)
        self.measure.teardown()
        self.clicks.teardown()
        self.click_panel.teardown()
        self.review.teardown()
        self.history.teardown()
        self.display.teardown()
        self.controller.close_project()
