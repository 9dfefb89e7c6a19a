"""Clicks: the guidance channels, the click API of ModelSession.predict (locality, the erased-part
test, negative clicks, boxes, bad input), old 3-channel models, and training that keeps clicks.

The click model is the tiny one in tests/data (``click_session``, see tests/click_model.py)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from napari_nevseg.core.clicks import check_clicks, click_maps, guidance_tensor, next_click
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession
from tests.synthetic import blob_picture, small_lesion_picture


# -- the guidance channels ------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(7, 5), (33, 47), (48, 64), (61, 40)])
def test_click_channels_shape_and_disks_on_odd_sizes(hw):
    h, w = hw
    points = torch.tensor([[[h // 2, w // 2, 1.0], [0, 0, -1.0], [h - 1, w - 1, 0.0]]])
    maps = click_maps(points, hw, radius=2.0)
    assert maps.shape == (1, 2, h, w) and maps.dtype == torch.float32
    pos, neg = maps[0, 0].numpy(), maps[0, 1].numpy()
    rows, cols = np.mgrid[0:h, 0:w]
    np.testing.assert_array_equal(pos > 0, (rows - h // 2) ** 2 + (cols - w // 2) ** 2 <= 4)
    np.testing.assert_array_equal(neg > 0, rows**2 + cols**2 <= 4)  # a corner: a quarter disk
    assert maps[0, :, h - 1, w - 1].sum() == 0 or (h // 2 - (h - 1)) ** 2 + (w // 2 - (w - 1)) ** 2 <= 4
    g = guidance_tensor([(1.0, 2.0, True)], np.full(hw, 0.5, np.float32), hw, 1.5)
    assert g.shape == (1, 3, h, w) and torch.all(g[0, 2] == 0.5) and g[0, 0, 1, 2] == 1 and g[0, 1].sum() == 0
    assert guidance_tensor([], None, hw, 1.5).abs().sum() == 0


@pytest.mark.parametrize("radius", [1.0, 2.5, 5.0, 7.3])
def test_one_images_guidance_draws_the_same_disks_as_the_batched_training_maps(radius):
    """guidance_tensor (inference, drawn per click in numpy) and click_maps (training, batched on
    the device) must agree pixel for pixel, or the network sees other disks than it learned."""
    rng = np.random.default_rng(int(radius * 10))
    hw = (48, 64)
    for _ in range(20):
        n = int(rng.integers(1, 9))
        rows, cols = rng.uniform(-6, 54, n), rng.uniform(-6, 70, n)  # fractional, some off the edges
        rows[0], cols[0] = np.round(rows[0]), np.round(cols[0]) + 0.5  # exact .5 and integer positions
        clicks = [(float(r), float(c), bool(p)) for r, c, p in zip(rows, cols, rng.integers(0, 2, n), strict=True)]
        points = torch.tensor([[(r, c, 1.0 if p else -1.0) for r, c, p in clicks]], dtype=torch.float32)
        expected = click_maps(points, hw, radius)
        got = guidance_tensor(clicks, None, hw, radius)
        assert got.shape == (1, 3, *hw) and got.dtype == torch.float32
        torch.testing.assert_close(got[:, :2], expected, rtol=0, atol=0)


@pytest.mark.parametrize("radius", [8**0.5, 18**0.5, 0.3 * 7])
def test_disks_agree_on_pixels_exactly_at_the_radius(radius):
    """Integer clicks put pixels at exactly the radius for radii like sqrt(18): both drawings
    must square the radius the same way (torch compares with radius**2 cast to float32)."""
    hw = (40, 40)
    clicks = [(20.0, 20.0, True), (5.0, 33.0, False), (0.0, 0.0, True)]
    points = torch.tensor([[(r, c, 1.0 if p else -1.0) for r, c, p in clicks]], dtype=torch.float32)
    torch.testing.assert_close(guidance_tensor(clicks, None, hw, radius)[:, :2], click_maps(points, hw, radius),
                               rtol=0, atol=0)


@pytest.mark.parametrize("hw", [(7, 5), (37, 53), (61, 40), (101, 151)])
def test_clicked_prediction_has_the_image_size(click_session, hw):
    rgb, truth = blob_picture(*hw, seed=4)
    rows, cols = np.nonzero(truth)
    click = (float(rows.mean()), float(cols.mean()), True)
    pred = click_session.predict(rgb, clicks=[click], return_probability=True)
    assert pred.mask.shape == hw and pred.mask.dtype == bool
    assert pred.probability.shape == hw and pred.probability.dtype == np.float32
    assert pred.low_res_probability.shape == (48, 64)
    r0, c0, r1, c1 = pred.region
    assert 0 <= r0 < r1 <= hw[0] and 0 <= c0 < c1 <= hw[1]
    assert 0.0 <= pred.uncertainty <= 1.0


def test_clicks_are_rounded_and_checked():
    assert check_clicks([(2.4, 3.6, True), (0.5, -0.4, 0)], (10, 10)) == [(2, 4, True), (1, 0, False)]
    for bad in [(-0.6, 0, True), (9.5, 0, True), (0, 10, False), (float("nan"), 1, True)]:
        with pytest.raises(ValueError, match="click at"):
            check_clicks([bad], (10, 10))
    with pytest.raises(ValueError, match=r"\(row, col, positive\)"):
        check_clicks([(1, 2)], (10, 10))


def test_click_outside_the_image_is_refused(click_session):
    rgb, _ = blob_picture(40, 60, seed=1)
    with pytest.raises(ValueError, match=r"outside the image \(40 x 60 pixels\)"):
        click_session.predict(rgb, clicks=[(10, 10, True), (40, 5, True)])
    with pytest.raises(ValueError, match="outside the image"):
        click_session.predict(rgb, box=(50, 70, 60, 90))


def test_bad_prior_is_refused(click_session):
    rgb, truth = blob_picture(40, 60, seed=1)
    with pytest.raises(ValueError, match="the prior mask is"):
        click_session.predict(rgb, clicks=[(20, 20, True)], prior=truth[:-1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        click_session.predict(rgb, clicks=[(20, 20, True)], prior=truth.astype(np.uint8) * 255)


def test_next_click_goes_deepest_into_the_deeper_error():
    truth = np.zeros((30, 30), bool)
    truth[5:25, 5:25] = True
    pred = truth.copy()
    pred[5:25, 15:25] = False  # missed: 20 x 10
    pred[0:3, 0:30] = True  # extra skin: 3 rows thin
    row, col, positive = next_click(pred, truth)
    assert positive and 5 <= row < 25 and 18 <= col <= 21
    assert next_click(truth, truth) is None
    assert next_click(truth | np.pad(np.ones((12, 12), bool), ((0, 18), (18, 0))), truth)[2] is False


# -- the click API ----------------------------------------------------------------------------------
def _erased(truth: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The prior with the last 40% of the lesion's width erased, and a click inside that part."""
    cols = np.flatnonzero(truth.any(axis=0))
    cut = cols[0] + int(0.6 * (cols[-1] - cols[0]))
    prior = truth.copy()
    prior[:, cut:] = False
    rows, cols = np.nonzero(truth & ~prior)
    return prior, (int(rows.mean()), int(cols.mean()))


@pytest.mark.parametrize("seed", [50, 51, 52])
def test_one_click_restores_an_erased_part_far_beyond_its_disk(click_session, seed):
    """More than a brush: one positive click inside a part erased from the prior restores at
    least 80% of it, and most of what lies three disk radii or more from the click."""
    rgb, truth = blob_picture(96, 128, seed=seed)
    prior, (row, col) = _erased(truth)
    erased = truth & ~prior
    pred = click_session.predict(rgb, clicks=[(row, col, True)], prior=prior)
    assert (pred.mask & erased).sum() >= 0.8 * erased.sum()
    r0, _, r1, _ = pred.region
    disk = click_session.predictor.clicks.radius * (r1 - r0) / click_session.predictor.work_hw[0]
    rows, cols = np.mgrid[0:96, 0:128]
    far = erased & (np.hypot(rows - row, cols - col) > 3 * disk)
    assert far.sum() > 20, "the erased part is no bigger than the click's disk: the test would show nothing"
    assert (pred.mask & far).sum() >= 0.7 * far.sum()
    assert dice(pred.mask, truth) > 0.9


def test_outside_the_window_the_mask_is_the_prior(click_session):
    """A small lesion in a large picture: a click changes the window around it only; the hand
    edits elsewhere survive bit for bit, even a stray stroke that keep-largest would remove."""
    rgb, truth = small_lesion_picture(150, 200, seed=3, share=0.3)
    prior = click_session.predict(rgb).mask
    rows, cols = np.nonzero(truth)
    far_r = 5 if rows.mean() > 75 else 140
    far_c = 5 if cols.mean() > 100 else 180
    prior[far_r : far_r + 6, far_c : far_c + 12] = True  # a stroke far from the lesion
    prior[far_r + 2, far_c + 2] = False
    pred = click_session.predict(rgb, clicks=[(int(rows.mean()), int(cols.mean()) + 3, True)], prior=prior)
    r0, c0, r1, c1 = pred.region
    assert (r1 - r0) * (c1 - c0) < 0.6 * 150 * 200
    outside = np.ones_like(prior)
    outside[r0:r1, c0:c1] = False
    np.testing.assert_array_equal(pred.mask[outside], prior[outside])
    assert pred.mask[far_r : far_r + 6, far_c : far_c + 12].sum() == 6 * 12 - 1
    assert dice(pred.mask[~outside], truth[~outside]) > 0.85


def test_a_negative_click_removes_the_region_around_it(click_session):
    rgb, truth = blob_picture(96, 128, seed=60)
    rows, cols = np.nonzero(truth)
    extra = np.zeros_like(truth)
    mid = int(rows.mean())
    extra[mid - 8 : mid + 8, cols.max() - 3 : cols.max() + 16] = True  # lesion's right: its centre is left of the middle
    extra &= ~truth  # wrongly included skin, attached to the lesion
    assert extra.sum() > 150
    er, ec = np.nonzero(extra)
    pred = click_session.predict(rgb, clicks=[(int(er.mean()), int(ec.mean()), False)], prior=truth | extra)
    assert (pred.mask & extra).sum() <= 0.2 * extra.sum()
    assert dice(pred.mask, truth) > 0.9


def test_keep_largest_keeps_every_region_holding_a_positive_click(click_session):
    big, big_truth = blob_picture(96, 128, seed=61)
    small, small_truth = small_lesion_picture(96, 128, seed=62, share=0.5)
    rgb = np.concatenate([big, small], axis=1)
    second = np.concatenate([np.zeros_like(small_truth), small_truth], axis=1)
    prior = np.concatenate([big_truth, np.zeros_like(small_truth)], axis=1)
    rows, cols = np.nonzero(second)
    pred = click_session.predict(rgb, clicks=[(int(rows.mean()), int(cols.mean()), True)], prior=prior)
    assert (pred.mask & second).sum() >= 0.8 * second.sum()
    assert (pred.mask & prior).sum() >= 0.95 * prior.sum()  # the larger lesion stays too


def test_no_clicks_no_box(click_session, make_blob):
    rgb, truth = make_blob(50, 70, seed=8)
    automatic = click_session.predict(rgb)
    np.testing.assert_array_equal(click_session.predict(rgb, clicks=[], prior=None).mask, automatic.mask)
    prior = np.zeros_like(truth)
    prior[3:9, 4:30] = True
    same = click_session.predict(rgb, clicks=[], prior=prior.astype(np.uint8))
    np.testing.assert_array_equal(same.mask, prior)
    assert same.mask is not prior and same.region is None
    assert dice(automatic.mask, truth) > 0.9  # the click model is a good automatic model too


def test_a_box_alone_finds_a_small_lesion(click_session):
    rgb, truth = small_lesion_picture(150, 200, seed=5, share=0.3)
    rows, cols = np.nonzero(truth)
    margin = 4
    box = (rows.min() - margin, cols.min() - margin, rows.max() + margin, cols.max() + margin)
    prior = np.zeros_like(truth)
    prior[0:4, 0:4] = True
    pred = click_session.predict(rgb, box=box, prior=prior)
    assert dice(pred.mask, truth) > 0.85
    assert pred.mask[0:4, 0:4].all()  # outside the box: the prior


# -- old models, identity ---------------------------------------------------------------------------
def test_old_three_channel_model_predicts_as_before(blob_session, make_blob):
    """A model file from before clicks (3 input channels) takes no clicks and predicts what its
    network gives on the plain normalised RGB image, nothing added."""
    from napari_nevseg.core.data import resize_rgb

    assert not blob_session.supports_clicks
    rgb, _ = make_blob(45, 67, seed=2)
    pred = blob_session.predict(rgb, return_probability=True)
    predictor = blob_session.predictor
    x = torch.from_numpy(np.array(resize_rgb(rgb, predictor.work_hw))).permute(2, 0, 1)[None].float() / 255.0
    x = (x - predictor._mean) / predictor._std
    x = x.contiguous(memory_format=torch.channels_last if predictor.channels_last else torch.contiguous_format)
    assert predictor.tta == 1
    low = torch.sigmoid(predictor.forward(x))[0, 0]
    np.testing.assert_allclose(pred.low_res_probability, low.numpy(), atol=1e-6)
    np.testing.assert_array_equal(pred.mask, predictor.finish(low, (45, 67)).mask)
    with pytest.raises(ValueError, match="trained without clicks"):
        blob_session.predict(rgb, clicks=[(20, 30, True)])
    boxed = blob_session.predict(rgb, box=(5, 5, 40, 60))  # a box needs no guidance channels
    assert boxed.mask.shape == (45, 67)


def test_the_shipped_model_takes_clicks():
    session = ModelSession.load("default", "cpu")
    assert session.supports_clicks is True
    assert session.meta["in_channels"] == 6 and session.meta["clicks"]["encoding"] == "disk"


def test_content_hash(click_model_file, blob_model_file, click_session, blob_session, model_meta):
    assert click_session.content_hash == hashlib.sha256(click_model_file.read_bytes()).hexdigest()
    assert blob_session.content_hash == hashlib.sha256(blob_model_file.read_bytes()).hexdigest()
    from napari_nevseg.core.model import UNet

    torch.manual_seed(0)
    a = ModelSession(UNet(width=4, depth=2), model_meta(), torch.device("cpu"), "a")
    b = ModelSession(UNet(width=4, depth=2), model_meta(), torch.device("cpu"), "b")
    assert len(a.content_hash) == 64 and a.content_hash != b.content_hash  # other random weights
    assert a.content_hash == ModelSession(a.model, model_meta(), torch.device("cpu"), "c").content_hash


def test_click_model_metadata(click_session):
    meta = click_session.meta
    assert click_session.supports_clicks
    assert meta["in_channels"] == 6 and meta["arch_params"]["in_channels"] == 6
    assert meta["clicks"]["encoding"] == "disk" and meta["clicks"]["radius"] == 2.5
    assert meta["clicks"]["channels"] == ["positive", "negative", "prior"]


def test_inconsistent_click_metadata_is_refused(tmp_path, click_model_file):
    from napari_nevseg.core.checkpoint import load_model, save_model
    from napari_nevseg.core.errors import ModelFileError

    model, meta = load_model(click_model_file)
    broken = save_model(tmp_path / "b.safetensors", model, {k: v for k, v in meta.items() if k != "clicks"})
    with pytest.raises(ModelFileError, match="6 input channels"):
        ModelSession.load(broken, "cpu")


# -- training keeps clicks ----------------------------------------------------------------------------
def _training_data(n=8):
    from napari_nevseg.core.training import make_training_set

    return make_training_set([(f"b{i}", *blob_picture(96, 128, 500 + i)) for i in range(n)], (48, 64))


def _run(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def test_fine_tuning_a_click_model_keeps_simulating_clicks(click_session, monkeypatch, tmp_path):
    from napari_nevseg.core.checkpoint import load_model, save_model
    from napari_nevseg.core.training import TrainConfig, steps, train

    calls = []
    real = steps.simulate_guidance

    def spy(*args, **kwargs):
        calls.append(args[3].radius)
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "simulate_guidance", spy)
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-4, device="cpu", freeze_bn=True)
    result = _run(train(_training_data(), None, config, init=click_session.cpu_copy()))
    assert calls == [2.5, 2.5]  # two steps, the parent's disk radius
    meta = result.metadata
    assert meta["in_channels"] == 6 and meta["clicks"]["radius"] == 2.5 and meta["arch_params"]["in_channels"] == 6
    model, meta = load_model(save_model(tmp_path / "ft.safetensors", result.model, meta))
    assert ModelSession(model, meta, torch.device("cpu"), "ft").supports_clicks


def test_clicks_on_a_model_without_them_are_refused_in_training(blob_session):
    from napari_nevseg.core.training import ClickTraining, TrainConfig, make_training_set, train

    data = make_training_set([(f"b{i}", *blob_picture(40, 60, i)) for i in range(2)], (32, 48))
    with pytest.raises(ValueError, match="takes no clicks"):
        next(train(data, None, TrainConfig(epochs=1, device="cpu", clicks=ClickTraining()), init=blob_session.cpu_copy()))


def test_simulated_guidance(click_session):
    from napari_nevseg.core.training.guidance import ClickTraining, simulate_guidance

    data = _training_data(6)
    x = (data.images.float() / 255 - 0.5) / 0.25
    model = click_session.cpu_copy()[0]

    def simulate(seed, **kw):
        return simulate_guidance(model, x, data.masks, ClickTraining(radius=0.5, **kw), torch.Generator().manual_seed(seed))

    g = simulate(0, empty_fraction=0.0)
    assert g.shape == (6, 3, 48, 64)
    assert all(g[i, :2].sum() > 0 for i in range(6)), "every guided image has at least one click"
    assert torch.equal(g, simulate(0, empty_fraction=0.0))
    assert simulate(0, empty_fraction=1.0).abs().sum() == 0
    # a disk of radius 0.5 is the clicked pixel alone: positive clicks on the lesion, negative off it
    positive = g[:, 0] > 0
    assert (data.masks[:, 0][positive] > 0.5).all() and (data.masks[:, 0][g[:, 1] > 0] <= 0.5).all()
    with pytest.raises(ValueError, match="at most 1"):
        ClickTraining(from_auto_fraction=0.7, edited_fraction=0.5)


def test_train_a_click_model_from_scratch(tmp_path):
    from napari_nevseg.core.checkpoint import load_model, save_model
    from napari_nevseg.core.training import ClickTraining, TrainConfig, train

    config = TrainConfig(arch="unet", arch_params={"width": 4, "depth": 2, "norm": "batch"}, work_size=(48, 64),
                         epochs=1, batch_size=4, device="cpu", clicks=ClickTraining(radius=3))
    data = _training_data(4)
    result = _run(train(data, data, config))
    assert result.model.stem[0].in_channels == 6
    model, meta = load_model(save_model(tmp_path / "c.safetensors", result.model, result.metadata))
    session = ModelSession(model, meta, torch.device("cpu"), "c")
    assert session.supports_clicks and session.predictor.clicks.radius == 3
    rgb, _ = blob_picture(50, 60, seed=0)
    assert session.predict(rgb, clicks=[(25, 25, True)], cleanup=Cleanup.none()).mask.shape == (50, 60)


def test_the_click_disk_loss_joins_the_training_loss_only_when_weighted(monkeypatch):
    """``ClickTraining.click_weight``: the disks of the simulated clicks are passed to the loss
    (channels 3 and 4 of the input); with weight 0 the loss is never called."""
    from napari_nevseg.core.training import ClickTraining, TrainConfig, steps, train

    seen = []
    real = steps.click_disk_loss

    def spy(logits, target, disks, weight):
        seen.append((float(disks.sum()), weight))
        return real(logits, target, disks, weight)

    monkeypatch.setattr(steps, "click_disk_loss", spy)
    data = _training_data(4)
    for weight in (0.0, 10.0):
        config = TrainConfig(arch="unet", arch_params={"width": 4, "depth": 2, "norm": "batch"}, work_size=(48, 64),
                             epochs=1, batch_size=4, device="cpu",
                             clicks=ClickTraining(radius=3, empty_fraction=0.0, click_weight=weight))
        _run(train(data, None, config))
    assert len(seen) == 1 and seen[0][1] == 10.0 and seen[0][0] > 0
    with pytest.raises(ValueError, match="click_weight"):
        ClickTraining(click_weight=-1)


def test_the_click_network_runs_traced_equal_to_eager_and_follows_a_new_model(click_model_file, monkeypatch):
    """Clicks run the network traced (one call without the GIL, napari_nevseg.core.traced): the
    same probabilities as the eager network, and a model swapped in is traced afresh, never the
    old weights. Where tracing fails, the eager network answers."""
    import copy

    from napari_nevseg.core import traced
    from napari_nevseg.core.session import ModelSession

    session = ModelSession.load(click_model_file, "cpu")
    predictor = session.predictor
    h, w = predictor.work_hw
    rgb, _ = blob_picture(h, w, seed=2)
    guidance = guidance_tensor([(h / 2, w / 2, True)], None, (h, w), predictor.clicks.radius)
    calls = []
    real_trace = traced.trace_network

    def counting_trace(*args):
        calls.append(real_trace(*args))
        return calls[-1]

    monkeypatch.setattr(traced, "trace_network", counting_trace)
    fast = predictor.guided_probability(rgb, guidance)
    again = predictor.guided_probability(rgb, guidance)
    assert len(calls) == 1 and calls[0] is not None  # traced (not fallen back), once, then reused
    monkeypatch.setattr(traced, "trace_network", lambda *a: None)  # tracing unavailable: eager
    other = copy.deepcopy(predictor.model)
    predictor.model = copy.deepcopy(other)  # a new network object: not the traced one
    eager = predictor.guided_probability(rgb, guidance)
    torch.testing.assert_close(fast, eager, rtol=0, atol=0)
    torch.testing.assert_close(again, eager, rtol=0, atol=0)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.0)
    monkeypatch.setattr(traced, "trace_network", real_trace)
    predictor.model = other
    flipped = predictor.guided_probability(rgb, guidance)
    assert (flipped - eager).abs().max() > 1e-3  # the new weights answer, not the traced old ones
