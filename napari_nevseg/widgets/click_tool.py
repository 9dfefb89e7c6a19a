"""Click to correct: a Points layer ``<image> clicks`` and a Shapes layer ``<image> box`` above the
mask under review; every change of the points or the box re-predicts the mask in a worker.

A *click set* starts with its first click or box: its base is the mask on screen then (hand
edits included). Each prediction uses the base, the box and all current points, so deleting a
point re-predicts from the base without it. Any other change to the mask (the brush, Ctrl+Z, a
clean-up, a new prediction) ends the set: its points are baked into the mask and taken off the
layer, and the next click starts a new set from the mask as it is. Requests coalesce: one
prediction runs at a time, only the latest set waits behind it, and a result is applied only if
the set has not changed since it was asked for, as one undo step of the Labels layer. The layers
are tracked by identity (napari renames duplicates); the worker never touches them.

A mouse press in add mode starts the prediction of the set with the point napari will add when
the button comes up (a person's click holds the button down for about a tenth of a second, and
napari's own handling of the release takes tens of milliseconds more); when the point arrives,
a running prediction of exactly that set is adopted instead of started again. A press that
becomes a drag (napari pans the view then) or lands elsewhere leaves its result unused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_nevseg.core.threads import threads_beside_a_viewer
from napari_nevseg.widgets._click_layers import (
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    add_box_layer,
    add_points_layer,
    arm_kind,
    colour_by_kind,
    marker_size,
    place_above,
)
from napari_nevseg.widgets._click_worker import (
    ClickRequest,
    box_in_image,
    box_of,
    clicks_in_image,
    predict_click_set,
    same_work,
)
from napari_nevseg.widgets._layers import apply_mask_undoable, image_rgb

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

#: the keys (window shortcuts, see _keys.py): left hand, the right one holds the mouse
CLICK_KEYS = {"toggle_kind": ("W",), "box": ("Q",)}
HELP = ("clicks: left click on missed lesion adds it · W: next clicks negative / positive · "
        "Q: draw a box around a lesion · select a point + Delete: remove it · Ctrl+Z: undo")


class ClickTool:
    """Owns the clicks and box layers of the image under review and the click set's state."""

    status_changed = Signal(str)

    def __init__(self, controller: ReviewController, view: ViewState, settings: Callable[[], tuple[float, Any]]) -> None:
        self.controller, self.view, self.settings = controller, view, settings
        self.points: Any = None
        self.box: Any = None
        self.image: Any = None
        self.mask: Any = None
        self.negative = False
        self.predictions = 0  # started, for the tests and the benchmark
        self._base: np.ndarray | None = None
        self._on_screen: np.ndarray | None = None
        self._rgb: np.ndarray | None = None
        self._box_cache: tuple[Any, np.ndarray] | None = None
        self._generation = 0
        #: the generation (a request's number) whose result is wanted (None: none is)
        self._wanted: int | None = None
        self._running: Any = None
        self._running_request: ClickRequest | None = None
        self._pending: ClickRequest | None = None
        self._quiet = False
        self._check_timer = QTimer(singleShot=True, interval=150)
        self._check_timer.timeout.connect(self._end_set_if_edited)
        events = controller.events
        events.current_changed.connect(self._on_current)
        events.reviewed.connect(lambda _stem: self.clear())
        events.session_changed.connect(self._on_session)
        view.mask_edited.connect(lambda: self._check_timer.start())

    # -- what can be done ------------------------------------------------------------------
    def reason_off(self) -> str | None:
        """Why clicks cannot be used now (one line), None when they can."""
        session = self.controller.session
        if session is None:
            return "clicks: waiting for the model to load"
        if not session.supports_clicks:
            return (f"clicks off: model {session.version} was trained without clicks "
                    "(a box, the brush and the clean-up still work)")
        return None

    def status(self) -> str:
        reason = self.reason_off()
        if reason:
            return reason
        kind = (f"<b style='color:{NEGATIVE_COLOR}'>negative</b> (skin wrongly included)" if self.negative
                else f"<b style='color:{POSITIVE_COLOR}'>positive</b> (missed lesion)")
        return f"next click: {kind} · {HELP}"

    def _announce(self) -> None:
        self.status_changed.emit(self.status())

    def _on_session(self, _session=None) -> None:
        if self.points is not None:
            self.points.editable = self.reason_off() is None
            if self.points.editable:
                self.points.mode = "add"
        self._announce()

    # -- layers ------------------------------------------------------------------------------
    def _on_current(self, _stem: str = "") -> None:
        """A new image is under review: clear the set, follow it with the layers."""
        resume = self.points is not None and self.view.viewer.layers.selection.active in (self.points, self.box)
        resume = resume or bool(self.points is not None and len(self.points.data))
        self.clear()
        self.image, self.mask = self.view.image_layer, self.view.mask_layer
        if not (self.view.layer_in_viewer(self.image) and self.view.layer_in_viewer(self.mask)):
            return
        self._rgb = None
        self._ensure_layers()
        if resume and self.points.editable:
            self.arm_clicks()

    def _ensure_layers(self) -> None:
        viewer, name, size = self.view.viewer, self.image.name, marker_size(self.image)
        if not self.view.layer_in_viewer(self.box):
            self.box = add_box_layer(viewer, name, size)
            self.box.events.data.connect(self._on_box_data)
        if not self.view.layer_in_viewer(self.points):
            self.points = add_points_layer(viewer, name, size)
            self.points.events.data.connect(self._on_points_data)
            self.points.mouse_drag_callbacks.append(self._on_press)
            self.points.bind_key("Control-Z", lambda _layer: self.undo(), overwrite=True)
            self._set_kind(self.negative)
        place_above(viewer, self.image, {"box": self.box, "clicks": self.points})  # a new mask comes on top
        with self.points.block_update_properties():
            self.points.current_size = size
        viewer.layers.selection.active = self.mask
        self._on_session()

    def _expect_clicks(self) -> None:
        """Clicks are armed: a running project prediction keeps its passes short from now on."""
        if self.controller.session is not None:
            self.controller.session.note_interaction()

    def arm_clicks(self) -> None:
        if self.points is None or not self.view.layer_in_viewer(self.points):
            return
        self._expect_clicks()
        self.view.viewer.layers.selection.active = self.points
        if self.points.editable:
            self.points.mode = "add"

    def arm_box(self) -> None:
        """Q: draw a box (again: back to clicks)."""
        if self.box is None or not self.view.layer_in_viewer(self.box):
            self._notify("open a project image first: the box acts on the mask under review")
            return
        layers = self.view.viewer.layers
        if layers.selection.active == self.box and self.box.mode == "add_rectangle":
            self.arm_clicks()
            return
        layers.selection.active = self.box
        self.box.mode = "add_rectangle"
        self._expect_clicks()

    def toggle_kind(self) -> None:
        """W: the next clicks are negative (then positive again)."""
        reason = self.reason_off()
        if reason:
            self._notify(reason)
            return
        self._set_kind(not self.negative)
        self.view.viewer.status = f"next click: {'negative' if self.negative else 'positive'}"

    def _set_kind(self, negative: bool) -> None:
        self.negative = negative
        if self.points is not None:
            arm_kind(self.points, negative)
        self._announce()

    def _notify(self, text: str) -> None:
        from napari.utils.notifications import show_info

        show_info(text)

    # -- the click set ---------------------------------------------------------------------------
    def _mask_now(self) -> np.ndarray:
        return np.asarray(self.mask.data) > 0

    def _quietly(self, change: Callable[[], None]) -> None:
        self._quiet = True
        try:
            change()
        finally:
            self._quiet = False

    def clear(self) -> None:
        """End the set: points and box off their layers, nothing in flight is applied."""
        self._wanted = self._pending = None
        self._base = self._on_screen = self._box_cache = None
        for layer in (self.points, self.box):
            if layer is not None and len(layer.data):
                self._quietly(lambda layer=layer: layer.remove(list(range(len(layer.data)))))

    def _start_set_if_needed(self, keep: set[int]) -> bool:
        """Start a new set when there is none or the mask was changed by something else; the
        points not in ``keep`` belong to the old set and leave. True when a new set started."""
        now = self._mask_now()
        if self._base is not None and self._on_screen is not None and np.array_equal(now, self._on_screen):
            return False
        old_points = [i for i in range(len(self.points.data)) if i not in keep]
        if old_points:
            self._quietly(lambda: self.points.remove(old_points))
        self._base, self._on_screen, self._box_cache = now, now, None
        return True

    def _on_points_data(self, event) -> None:
        action = str(getattr(event, "action", ""))
        if self._quiet or action not in ("added", "removed", "changed") or self.mask is None:
            return
        if not self.view.layer_in_viewer(self.mask):
            return
        n = len(self.points.data)
        added = {i % n for i in event.data_indices} if action == "added" and n else set()
        if action == "added":
            reason = self.reason_off()
            if reason:
                self._quietly(lambda: self.points.remove(sorted(added)))
                self._notify(reason)
                return
            self._quietly(lambda: colour_by_kind(self.points, sorted(added)))
        new = self._start_set_if_needed(added)
        if new and action != "added":
            return  # a point of a baked-in set moved or left: nothing to re-predict
        self.request()

    def _on_box_data(self, event) -> None:
        action = str(getattr(event, "action", ""))
        if self._quiet or action not in ("added", "removed", "changed") or self.mask is None:
            return
        if action == "added" and len(self.box.data) > 1:  # one box per set: the newest
            self._quietly(lambda: self.box.remove(list(range(len(self.box.data) - 1))))
        self._start_set_if_needed(keep=set())  # a new set leaves the old points behind
        self._box_cache = None
        self.request()
        if action == "added" and self.reason_off() is None:
            self.arm_clicks()  # clicks then refine the box

    def current_box(self):
        if self.box is None or not len(self.box.data):
            return None
        return box_of(self.box.data[-1])

    def _box_in_image(self) -> tuple[Any, bool]:
        return box_in_image(self.current_box(), self._rgb.shape[:2])

    def _request_for(self, clicks: tuple, box: Any, base: np.ndarray) -> ClickRequest:
        self._generation += 1
        cached = self._box_cache[1] if self._box_cache is not None and self._box_cache[0] == box else None
        threshold, cleanup = self.settings()
        return ClickRequest(self._generation, self._rgb, base, clicks, box, cached, threshold, cleanup)

    def _ensure_rgb(self, quiet: bool = False) -> bool:
        """The image's RGB pixels, read once per image; False (with a warning unless ``quiet``)
        when it has none."""
        if self._rgb is None:
            try:
                self._rgb = image_rgb(self.image)
            except ValueError as exc:
                if not quiet:
                    from napari.utils.notifications import show_warning

                    show_warning(str(exc))
                return False
        return True

    def request(self) -> None:
        """Predict the set as it is now (coalesced: see the module's docstring)."""
        from napari.utils.notifications import show_warning

        self._wanted = None
        if not self._ensure_rgb():
            return
        clicks, outside = clicks_in_image(self.points.data, self.points.features["positive"].to_numpy(),
                                          self._rgb.shape[:2])
        if outside:
            self._quietly(lambda: self.points.remove(outside))
            show_warning("a click outside the image was taken off: click on the image")
        box, box_ok = self._box_in_image()
        if not box_ok:
            show_warning("the box lies outside the image: draw it around a lesion")
        if not clicks and box is None:
            self._pending = None
            self._apply(self._base)
            return
        req = self._request_for(tuple(clicks), box, self._base)
        self._wanted = req.generation
        if self._running is not None:
            if self._running_request is not None and same_work(self._running_request, req):
                self._wanted, self._pending = self._running_request.generation, None  # adopt it
                return
            self._pending = req
            return
        self._start(req)

    def _on_press(self, layer, event) -> None:
        """A press in add mode: predict the set with the point to come (module docstring)."""
        if (layer is not self.points or layer.mode != "add" or getattr(event, "button", 1) != 1
                or getattr(event, "modifiers", ()) or self._running is not None or self.mask is None
                or self.reason_off() is not None or not self.view.layer_in_viewer(self.mask)):
            return
        if not self._ensure_rgb(quiet=True):  # the click's own request says why
            return
        now = self._mask_now()
        continuing = self._base is not None and self._on_screen is not None and np.array_equal(now, self._on_screen)
        points = np.asarray(self.points.data, float).reshape(-1, 2) if continuing else np.zeros((0, 2))
        positive = self.points.features["positive"].to_numpy(bool) if continuing else np.zeros(0, bool)
        where = np.asarray(layer.world_to_data(event.position), float)[-2:]
        clicks, outside = clicks_in_image(np.vstack([points, where[None]]), np.append(positive, not self.negative),
                                          self._rgb.shape[:2])
        box, box_ok = self._box_in_image()
        if outside or not box_ok or (box is not None and not continuing):
            return  # a new set beside an old box: the click's own request decides what the box does
        self._start(self._request_for(tuple(clicks), box, self._base if continuing else now))

    def _start(self, req: ClickRequest) -> None:
        from napari_nevseg.widgets._jobs import start_worker

        self.predictions += 1
        self._running_request = req
        self._running = start_worker(self.controller, predict_click_set, self.controller.session, req,
                                     threads_beside_a_viewer(),
                                     returned=self._on_result, finished=self._on_finished)

    def _on_finished(self) -> None:
        self._running = self._running_request = None
        if self._pending is not None:
            req, self._pending = self._pending, None
            self._start(req)

    def _on_result(self, result) -> None:
        self._running_request = None  # delivered: nothing left of it to adopt (a request below must run anew)
        if result.generation != self._wanted or self._base is None or not self.view.layer_in_viewer(self.mask):
            return  # the set changed since: a newer request is waiting or the set ended
        if result.box is not None and result.box_mask is not None:
            self._box_cache = (result.box, result.box_mask)
        if not np.array_equal(self._mask_now(), self._on_screen):
            # the mask was edited while predicting: those edits are the new base
            self._base = self._on_screen = self._mask_now()
            self._box_cache = None
            self.request()
            return
        self._apply(result.mask)

    def _apply(self, mask: np.ndarray | None) -> None:
        if mask is None or not self.view.layer_in_viewer(self.mask):
            return
        apply_mask_undoable(self.mask, mask)
        self._on_screen = np.asarray(mask, bool).copy()
        self.view.mask_edited.emit()

    def _end_set_if_edited(self) -> None:
        """The mask changed, not by a click: the set's points are baked in; take them off."""
        if self._base is None or not self.view.layer_in_viewer(self.mask):
            return
        if not np.array_equal(self._mask_now(), self._on_screen):
            self.clear()

    def undo(self) -> None:
        """Ctrl+Z on the clicks layer undoes the mask's last step (and ends the set)."""
        if self.view.layer_in_viewer(self.mask):
            self.mask.undo()
            self.clear()

    def teardown(self) -> None:
        """Let go of the layers, which outlive a closed dock; nothing in flight is applied."""
        self._check_timer.stop()
        self._wanted = self._pending = None
        if self.points is not None:
            self.points.events.data.disconnect(self._on_points_data)
            self.points.bind_key("Control-Z", None, overwrite=True)
            if self._on_press in self.points.mouse_drag_callbacks:
                self.points.mouse_drag_callbacks.remove(self._on_press)
        if self.box is not None:
            self.box.events.data.disconnect(self._on_box_data)

