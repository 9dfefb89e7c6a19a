"""Click to correct in napari (issue 14): the clicks and box layers, on the tiny click model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from tests.synthetic import small_lesion_picture
from tests.widgets.conftest import LONG, SAMPLES, press, wait_idle

H, W = 192, 256


@pytest.fixture
def click_widget(make_napari_viewer_proxy, qtbot, click_model_file):
    """The dock on the tiny click model (through the proxy: a worker touching napari fails)."""
    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = make_napari_viewer_proxy()
    w = NevsegWidget(viewer, model=str(click_model_file), device="cpu")
    viewer.window.add_dock_widget(w, name="NevSeg", area="right")
    qtbot.waitUntil(lambda: w.controller.session is not None, timeout=LONG)
    yield w
    wait_idle(qtbot, w)
    w.teardown()


def _lesion_project(root, seeds=(3, 5)):
    images = root / "images"
    images.mkdir(parents=True)
    truths = {}
    for seed in seeds:
        rgb, truth = small_lesion_picture(H, W, seed, share=0.35)
        Image.fromarray(rgb).save(images / f"lesion{seed}.png")
        truths[f"lesion{seed}"] = truth
    return root, truths


def _open(w, qtbot, root):
    """Open a project and make the tiny click model its active version (a project starts on
    the shipped default, which has no click mode yet)."""
    from tests.click_model import CLICK_MODEL_FILE

    assert w.open_project(root)
    wait_idle(qtbot, w)
    version = w.models.import_file(CLICK_MODEL_FILE)
    qtbot.waitUntil(lambda: w.controller.session.version == version, timeout=LONG)
    wait_idle(qtbot, w)
    assert w.controller.session.supports_clicks
    assert w.view.mask_layer is not None and w.clicks.points is not None


def _set_mask(w, mask):
    from napari_nevseg.widgets._layers import apply_mask_undoable

    apply_mask_undoable(w.view.mask_layer, mask)
    w.view.mask_edited.emit()


def _click(w, qtbot, row, col):
    w.clicks.points.add([row, col])
    wait_idle(qtbot, w)


def _centre(mask):
    rows, cols = np.nonzero(mask)
    return float(rows.mean()), float(cols.mean())


def _mask(w):
    return np.asarray(w.view.mask_layer.data) > 0


def test_layers_sit_above_the_mask_and_follow_the_image(click_widget, qtbot, tmp_path):
    w = click_widget
    root, _ = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    layers = w.viewer.layers
    stem = w.controller.current_stem
    assert "clicks" in w.clicks.points.name and w.clicks.points.name.startswith(stem)
    assert w.clicks.box.name == f"{stem} box"
    assert layers.index(w.clicks.points) > layers.index(w.view.mask_layer)
    w.review.next_image()
    wait_idle(qtbot, w)
    assert w.clicks.points.name.startswith(w.controller.current_stem)
    assert layers.index(w.clicks.points) > layers.index(w.view.mask_layer)  # above the new mask too


def test_positive_click_adds_the_missed_lesion_there_only(click_widget, qtbot, tmp_path):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    truth = truths[w.controller.current_stem]
    prior = np.zeros((H, W), bool)
    prior[170:185, 10:25] = True  # a hand edit far away, and the lesion missed
    _set_mask(w, prior)
    cy, cx = _centre(truth)
    _click(w, qtbot, cy, cx)
    mask = _mask(w)
    assert bool(w.clicks.points.features["positive"].iloc[0])
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.8
    changed = np.argwhere(mask != prior)
    far = np.hypot(changed[:, 0] - cy, changed[:, 1] - cx).max()
    assert far < 0.25 * np.hypot(H, W), f"a pixel {far:.0f} px from the click changed"
    assert mask[170:185, 10:25].all()  # the far hand edit is kept


def test_negative_click_removes_the_skin_around_it(click_widget, qtbot, tmp_path):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    truth = truths[w.controller.current_stem]
    cy, cx = _centre(truth)
    yy, xx = np.mgrid[:H, :W]
    extra = ((yy - cy - 50) ** 2 + (xx - cx) ** 2 < 12**2) & ~truth
    _set_mask(w, truth | extra)
    w.clicks.toggle_kind()
    assert w.clicks.negative and "negative" in w.click_panel.status_label.text()
    _click(w, qtbot, cy + 50, cx)
    mask = _mask(w)
    assert not bool(w.clicks.points.features["positive"].iloc[0])
    assert np.allclose(w.clicks.points.face_color[0][:3], [1.0, 0.2, 1 / 3], atol=0.01)  # drawn as negative
    assert (mask & extra).sum() < 0.2 * extra.sum()
    assert (mask & truth).sum() > 0.9 * truth.sum()


def test_ctrl_z_after_a_click_restores_the_mask(click_widget, qtbot, tmp_path):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    before = _mask(w).copy()
    cy, cx = _centre(truths[w.controller.current_stem])
    _click(w, qtbot, cy, cx + 25)
    w.clicks.toggle_kind()
    _click(w, qtbot, cy, cx)
    after_two = _mask(w).copy()
    assert not np.array_equal(after_two, before)
    undo_key = next(f for k, f in w.clicks.points.keymap.items() if str(k) == "Ctrl+Z")
    undo_key(w.clicks.points)  # Ctrl+Z with the clicks layer selected
    undone_once = _mask(w)
    assert not np.array_equal(undone_once, after_two)
    assert len(w.clicks.points.data) == 0  # the set ended: its points are baked in
    w.view.mask_layer.undo()
    assert np.array_equal(_mask(w), before)


def test_deleting_a_point_predicts_again_without_it(click_widget, qtbot, tmp_path, click_session):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    truth = truths[w.controller.current_stem]
    base = np.zeros((H, W), bool)
    _set_mask(w, base)
    cy, cx = _centre(truth)
    _click(w, qtbot, cy, cx)
    one = _mask(w).copy()
    _click(w, qtbot, 30, 40)  # a second positive click on skin
    assert not np.array_equal(_mask(w), one)
    started = w.clicks.predictions
    w.clicks.points.selected_data = {1}
    w.clicks.points.remove_selected()  # what Delete does
    wait_idle(qtbot, w)
    assert w.clicks.predictions == started + 1
    rgb = np.asarray(w.view.image_layer.data)
    expected = click_session.predict(rgb, 0.5, w.predict.cleanup(), clicks=[(cy, cx, True)], prior=base).mask
    assert np.array_equal(_mask(w), expected)
    w.clicks.points.selected_data = {0}
    w.clicks.points.remove_selected()
    wait_idle(qtbot, w)
    assert np.array_equal(_mask(w), base)  # no click left: the base


def test_a_box_on_a_sample_image_gives_a_mask_inside_it(click_widget, qtbot, project_dir):
    from napari_nevseg.core.image_io import read_mask

    w = click_widget
    _open(w, qtbot, project_dir)
    stem = w.controller.current_stem
    reference = read_mask(SAMPLES / "masks" / f"{stem}.png")
    empty = np.zeros(reference.shape, bool)
    _set_mask(w, empty)
    rows, cols = np.nonzero(reference)
    r0, c0, r1, c1 = rows.min() - 15, cols.min() - 15, rows.max() + 15, cols.max() + 15
    w.clicks.arm_box()
    assert w.viewer.layers.selection.active == w.clicks.box and w.clicks.box.mode == "add_rectangle"
    w.clicks.box.add_rectangles(np.array([[r0, c0], [r1, c1]]))
    wait_idle(qtbot, w)
    mask = _mask(w)
    inside = np.zeros_like(mask)
    inside[r0 : r1 + 1, c0 : c1 + 1] = True
    assert mask.any() and not (mask & ~inside).any()
    assert 2 * (mask & reference).sum() / (mask.sum() + reference.sum()) > 0.5
    assert w.viewer.layers.selection.active == w.clicks.points  # clicks then refine it
    boxed = mask.copy()
    w.clicks.toggle_kind()
    _click(w, qtbot, (r0 + r1) / 2, (c0 + c1) / 2)
    assert not np.array_equal(_mask(w), boxed)


def test_rapid_clicks_coalesce_and_the_last_set_wins(click_widget, qtbot, tmp_path, click_session):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    truth = truths[w.controller.current_stem]
    base = np.zeros((H, W), bool)
    _set_mask(w, base)
    cy, cx = _centre(truth)
    spots = [(cy, cx), (cy - 5, cx + 5), (cy + 5, cx - 5), (cy + 3, cx + 8), (cy - 4, cx - 6)]
    started = w.clicks.predictions
    for row, col in spots:
        w.clicks.points.add([row, col])  # no waiting in between
    wait_idle(qtbot, w)
    assert w.clicks.predictions - started < len(spots)
    rgb = np.asarray(w.view.image_layer.data)
    clicks = [(r, c, True) for r, c in spots]
    expected = click_session.predict(rgb, 0.5, w.predict.cleanup(), clicks=clicks, prior=base).mask
    assert np.array_equal(_mask(w), expected)


def test_brushing_after_clicks_starts_a_new_base(click_widget, qtbot, tmp_path):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    cy, cx = _centre(truths[w.controller.current_stem])
    _set_mask(w, np.zeros((H, W), bool))
    _click(w, qtbot, cy, cx)
    layer = w.view.mask_layer
    layer.brush_size = 10
    layer.paint((20, 200), 1)  # a stroke after the click
    _click(w, qtbot, 180, 30)  # a click far away, on skin
    assert len(w.clicks.points.data) == 1  # the first set's point was baked in
    assert _mask(w)[20, 200]  # the stroke is kept: it is part of the new base
    assert _mask(w)[int(cy), int(cx)]


def test_clicked_mask_counts_as_corrected_and_clicks_clear_on_accept(click_widget, qtbot, tmp_path):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    stem = w.controller.current_stem
    cy, cx = _centre(truths[stem])
    _click(w, qtbot, cy + 30, cx + 30)
    assert w.view.is_dirty()
    w.review.accept_current()
    wait_idle(qtbot, w)
    assert w.controller.project.records[stem].status.value == "corrected"
    assert len(w.clicks.points.data) == 0


def test_a_model_without_clicks_greys_the_tool_out(click_widget, qtbot, tmp_path, click_model_file, tiny_model_file,
                                                  notifications):
    w = click_widget
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    w.load_model(str(tiny_model_file), "cpu")  # a 3-channel model file, as before issue 13
    qtbot.waitUntil(lambda: not w.controller.session.supports_clicks, timeout=LONG)
    wait_idle(qtbot, w)
    text = w.click_panel.status_label.text()
    assert "trained without clicks" in text and "\n" not in text
    assert not w.click_panel.kind_btn.isEnabled() and not w.clicks.points.editable
    before = _mask(w).copy()
    w.clicks.points.add([50, 50])
    wait_idle(qtbot, w)
    assert len(w.clicks.points.data) == 0 and np.array_equal(_mask(w), before)
    assert any("trained without clicks" in m for m in notifications)
    w.load_model(str(click_model_file), "cpu")  # switch back: clicks work again
    qtbot.waitUntil(lambda: w.controller.session.supports_clicks, timeout=LONG)
    assert w.click_panel.kind_btn.isEnabled() and w.clicks.points.editable
    _set_mask(w, np.zeros((H, W), bool))
    _click(w, qtbot, *_centre(truths[w.controller.current_stem]))
    assert _mask(w).any()


def test_w_key_toggles_the_kind_from_the_canvas(click_widget, qtbot, tmp_path):
    w = click_widget
    root, _ = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    canvas = w.viewer.__wrapped__.window._qt_viewer.canvas.native  # the real viewer, past the proxy
    press(qtbot, canvas, "W")
    assert w.clicks.negative and w.clicks.points.feature_defaults["positive"][0] == False  # noqa: E712
    press(qtbot, canvas, "W")
    assert not w.clicks.negative
    press(qtbot, canvas, "Q")
    assert w.viewer.layers.selection.active == w.clicks.box


def test_click_keys_clash_with_no_napari_or_review_key():
    """W and Q are bound nowhere in napari 0.9 (layer actions, layer class keymaps, the viewer,
    app-model menu keys) and are not review keys."""
    from napari._app_model import get_app_model
    from napari._qt._qapp_model.qactions import init_qactions
    from napari.components import ViewerModel
    from napari.layers import Image, Labels, Points, Shapes
    from napari.utils.shortcuts import default_shortcuts

    from napari_nevseg.widgets._keys import KEYS
    from napari_nevseg.widgets.click_tool import CLICK_KEYS

    init_qactions()  # the window's menu actions and their keys

    taken: dict[str, str] = {}
    for action, keys in default_shortcuts.items():
        for key in keys:
            taken[str(key).lower()] = action
    for cls in (Points, Labels, Shapes, Image, ViewerModel):
        for key in getattr(cls, "class_keymap", {}):
            taken[str(key).lower()] = cls.__name__
    for binding in get_app_model().keybindings:
        taken[str(binding.keybinding).lower()] = binding.command_id
    for keys in KEYS.values():
        for key in keys:
            taken[key.lower()] = "review"
    ours = [key for keys in CLICK_KEYS.values() for key in keys]
    assert len(set(ours)) == len(ours)
    clashes = {key: taken[key.lower()] for key in ours if key.lower() in taken}
    assert not clashes, clashes
    assert "t" in taken and "ctrl+z" in taken  # the check sees napari's own keys


@dataclass
class _Mouse:
    """A vispy-like mouse event for napari's mouse callbacks (as napari's own tests make them)."""

    type: str
    position: tuple[float, float]
    pos: np.ndarray
    is_dragging: bool = False
    modifiers: list[str] = field(default_factory=list)
    view_direction: list[float] | None = None
    up_direction: list[float] | None = None
    dims_displayed: list[int] = field(default_factory=lambda: [0, 1])


def _mouse(kind: str, row: float, col: float, canvas_pos=(0.0, 0.0)):
    from napari.utils._proxies import ReadOnlyWrapper

    return ReadOnlyWrapper(_Mouse(kind, (row, col), np.asarray(canvas_pos, float), is_dragging=kind == "mouse_move"),
                           exceptions=("handled",))


def _open_on_empty_mask(w, qtbot, tmp_path):
    """A project open on the tiny click model, the mask on screen emptied, clicks armed: the
    projects' truths and the empty base."""
    root, truths = _lesion_project(tmp_path / "p")
    _open(w, qtbot, root)
    base = np.zeros((H, W), bool)
    _set_mask(w, base)
    w.clicks.arm_clicks()
    return truths, base


def _expected(w, session, clicks, prior):
    """What the core makes of ``clicks`` on the image on screen from ``prior``."""
    rgb = np.asarray(w.view.image_layer.data)
    return session.predict(rgb, 0.5, w.predict.cleanup(), clicks=clicks, prior=prior).mask


def test_a_press_starts_the_prediction_that_the_added_point_adopts(click_widget, qtbot, tmp_path, click_session):
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    w = click_widget
    truths, base = _open_on_empty_mask(w, qtbot, tmp_path)
    cy, cx = (round(v) for v in _centre(truths[w.controller.current_stem]))
    layer, started = w.clicks.points, w.clicks.predictions
    mouse_press_callbacks(layer, _mouse("mouse_press", cy + 0.1, cx + 0.2))
    assert w.clicks.predictions == started + 1 and len(layer.data) == 0  # predicting before the point exists
    # the hand moved a fraction of a pixel before the button came up: the same pixel to the core
    mouse_release_callbacks(layer, _mouse("mouse_release", cy - 0.2, cx - 0.1, canvas_pos=(0.5, 0.0)))
    assert len(layer.data) == 1  # napari added the point on release
    wait_idle(qtbot, w)
    assert w.clicks.predictions == started + 1  # the point adopted the running prediction
    expected = _expected(w, click_session, [(cy, cx, True)], base)
    assert expected.any() and np.array_equal(_mask(w), expected)


def test_a_press_that_becomes_a_drag_changes_nothing(click_widget, qtbot, tmp_path, click_session):
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    w = click_widget
    truths, base = _open_on_empty_mask(w, qtbot, tmp_path)
    cy, cx = _centre(truths[w.controller.current_stem])
    layer = w.clicks.points
    _click(w, qtbot, cy, cx)  # a set with one point
    after_one = _mask(w)
    mouse_press_callbacks(layer, _mouse("mouse_press", cy + 40, cx + 60))  # on skin, where a point would matter
    mouse_move_callbacks(layer, _mouse("mouse_move", cy + 40, cx + 70, canvas_pos=(40.0, 0.0)))
    mouse_release_callbacks(layer, _mouse("mouse_release", cy + 40, cx + 70, canvas_pos=(40.0, 0.0)))
    wait_idle(qtbot, w)
    assert len(layer.data) == 1 and np.array_equal(_mask(w), after_one)  # a pan: no point, the mask untouched
    _click(w, qtbot, cy - 3, cx + 2)  # the next click is predicted with the set's points only
    clicks = [(cy, cx, True), (cy - 3, cx + 2, True)]
    expected = _expected(w, click_session, clicks, base)
    assert np.array_equal(_mask(w), expected)


@pytest.fixture
def gated_clicks(monkeypatch):
    """Click predictions wait for ``gate.set()`` in their worker: the test decides what happens
    while one runs."""
    import threading

    from napari_nevseg.widgets import click_tool

    gate = threading.Event()
    real = click_tool.predict_click_set

    def gated(session, request, *rest):
        gate.wait(10)
        return real(session, request, *rest)

    monkeypatch.setattr(click_tool, "predict_click_set", gated)
    yield gate
    gate.set()


def test_a_click_predicts_with_the_cores_the_viewer_leaves(click_widget, qtbot, tmp_path, monkeypatch):
    """The worker runs a click with every core but the viewer's (on two cores, one torch
    thread: sooner on screen than two, docs/benchmarks.md), and gives the count back."""
    import torch

    from napari_nevseg.widgets import _click_worker, click_tool

    own = torch.get_num_threads()  # the tests run with one thread: the click is told to take another count
    during, after = [], []
    real_set, real_job = _click_worker._predict_click_set, click_tool.predict_click_set

    def spy(session, request):
        during.append(torch.get_num_threads())
        return real_set(session, request)

    def job(*args):
        out = real_job(*args)
        after.append(torch.get_num_threads())
        return out

    monkeypatch.setattr(click_tool, "threads_beside_a_viewer", lambda: own + 1)
    monkeypatch.setattr(_click_worker, "_predict_click_set", spy)
    monkeypatch.setattr(click_tool, "predict_click_set", job)
    w = click_widget
    truths, base = _open_on_empty_mask(w, qtbot, tmp_path)
    _click(w, qtbot, *_centre(truths[w.controller.current_stem]))
    wait_idle(qtbot, w)
    assert during and set(during) == {own + 1}
    assert after and all(n != own + 1 for n in after)
    assert not np.array_equal(_mask(w), base)


def test_an_undo_while_predicting_is_predicted_again_not_lost(click_widget, qtbot, tmp_path, click_session,
                                                             gated_clicks):
    """The mask goes back to the set's base while click 2 predicts: the answer that comes back
    is from before the edit, so the set is predicted again on the edited mask; the running
    prediction, whose answer was just thrown away, must not stand for it (it did: the points
    stayed and the mask never changed)."""
    w = click_widget
    truths, base = _open_on_empty_mask(w, qtbot, tmp_path)
    cy, cx = _centre(truths[w.controller.current_stem])
    gated_clicks.set()
    _click(w, qtbot, cy, cx)
    assert not np.array_equal(_mask(w), base)
    gated_clicks.clear()
    w.clicks.points.add([cy + 6, cx - 6])  # click 2: its prediction waits at the gate
    w.view.mask_layer.undo()  # the mask is the base again
    w.clicks._check_timer.stop()  # the answer comes back before the 150 ms edit check
    gated_clicks.set()
    wait_idle(qtbot, w)
    clicks = [(cy, cx, True), (cy + 6, cx - 6, True)]
    expected = _expected(w, click_session, clicks, base)
    assert len(w.clicks.points.data) == 2 and np.array_equal(_mask(w), expected)


def test_a_prediction_for_the_previous_image_never_lands_on_the_next(click_widget, qtbot, tmp_path, click_session,
                                                                      gated_clicks):
    """Same size, same empty mask, a click at the same spot: the prediction still running for
    image A must not stand for image B's click."""
    w = click_widget
    truths, empty = _open_on_empty_mask(w, qtbot, tmp_path)
    cy, cx = _centre(truths[w.controller.current_stem])
    w.clicks.points.add([cy, cx])  # image A: waits at the gate
    w.review.show_stem(next(s for s in truths if s != w.controller.current_stem))
    qtbot.waitUntil(lambda: w.clicks.points is not None and len(w.clicks.points.data) == 0, timeout=LONG)
    _set_mask(w, empty)
    w.clicks.points.add([cy, cx])  # image B, the same spot
    gated_clicks.set()
    wait_idle(qtbot, w)
    expected = _expected(w, click_session, [(cy, cx, True)], empty)
    assert np.array_equal(_mask(w), expected)
