"""Predictor / ModelSession: full-size masks for any input, probabilities, batching."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_nevseg.core.inference import Prediction, Predictor, uncertainty
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession, resolve_model_path


def _inputs(rgb):
    grey = rgb.mean(axis=-1).astype(np.uint8)
    return {
        "rgb": rgb,
        "grey": grey,
        "grey_channel": grey[..., None],
        "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "uint16": rgb.astype(np.uint16) * 257,
        "float01": rgb.astype(np.float32) / 255,
        "float64_255": rgb.astype(np.float64),
        "channel_first": np.moveaxis(rgb, -1, 0),
    }


@pytest.mark.parametrize("hw", [(37, 53), (61, 40), (100, 151), (7, 5)])
def test_mask_has_the_input_size_for_every_kind(tiny_session, make_blob, hw):
    rgb, _ = make_blob(*hw, seed=3)
    for name, image in _inputs(rgb).items():
        pred = tiny_session.predict(image, return_probability=True)
        assert isinstance(pred, Prediction)
        assert pred.mask.shape == hw, name
        assert pred.mask.dtype == bool, name
        assert pred.probability.shape == hw and pred.probability.dtype == np.float32
        assert 0.0 <= pred.probability.min() and pred.probability.max() <= 1.0
        assert pred.low_res_probability.shape == (32, 48)
        assert 0.0 <= pred.uncertainty <= 1.0


def test_same_picture_same_mask(blob_session, make_blob):
    rgb, truth = make_blob(70, 90, seed=11)
    reference = blob_session.predict(rgb).mask
    assert dice(reference, truth) > 0.9  # the blob model finds the lesion
    for name, image in _inputs(rgb).items():
        if name.startswith("grey"):
            continue
        np.testing.assert_array_equal(blob_session.predict(image).mask, reference, err_msg=name)


def test_probability_off_by_default(tiny_session, make_blob):
    rgb, _ = make_blob(20, 30, seed=0)
    assert tiny_session.predict(rgb).probability is None


def test_threshold_controls_the_mask(blob_session, make_blob):
    rgb, _ = make_blob(64, 96, seed=5)
    none = Cleanup.none()
    low = blob_session.predict(rgb, threshold=0.05, cleanup=none, return_probability=True)
    high = blob_session.predict(rgb, threshold=0.95, cleanup=none)
    assert low.mask.sum() >= high.mask.sum()
    assert not (high.mask & ~low.mask).any()
    np.testing.assert_array_equal(low.mask, low.probability > 0.05)


def test_cleanup_is_applied(blob_session, make_blob):
    rgb, _ = make_blob(64, 96, seed=6)
    rgb[2:6, 85:92] = (40, 20, 10)  # a dark speck far from the lesion
    raw = blob_session.predict(rgb, threshold=0.5, cleanup=Cleanup.none())
    cleaned = blob_session.predict(rgb, threshold=0.5)
    from skimage.measure import label

    assert label(cleaned.mask, connectivity=2).max() <= 1
    assert label(raw.mask, connectivity=2).max() >= label(cleaned.mask, connectivity=2).max()


def test_predict_many_matches_predict_and_batches(tiny_session, make_blob):
    images = [make_blob(30 + 3 * i, 40 + 5 * i, seed=i)[0] for i in range(5)]
    predictor = tiny_session.predictor
    seen_batches = []
    original = predictor.low_res_probabilities

    def spy(batch, tta=None):
        seen_batches.append(len(batch))
        return original(batch, tta)

    predictor.low_res_probabilities = spy
    try:
        many = list(predictor.predict_many(iter(images), batch_size=2, return_probability=True))
    finally:
        del predictor.low_res_probabilities
    assert seen_batches == [2, 2, 1]
    assert [p.mask.shape for p in many] == [im.shape[:2] for im in images]
    for image, pred in zip(images, many, strict=True):
        single = tiny_session.predict(image, return_probability=True)
        np.testing.assert_allclose(pred.probability, single.probability, atol=1e-5)


def test_tta_flips_average(blob_session, make_blob):
    rgb, _ = make_blob(32, 48, seed=8)
    one = blob_session.predictor.low_res_probabilities([rgb], tta=1)
    four = blob_session.predictor.low_res_probabilities([rgb], tta=4)
    assert one.shape == four.shape == (1, 32, 48)
    assert 0 <= four.min().item() and four.max().item() <= 1


def test_flips_in_one_pass_equal_flips_one_at_a_time(blob_session, make_blob, monkeypatch):
    """A few images go through the network with all their flipped copies in one batch (faster);
    the probabilities must be those of one pass per flip, each flipped back."""
    import torch

    from napari_nevseg.core import inference

    images = [make_blob(32, 48, seed=s)[0] for s in (8, 9)]
    predictor = blob_session.predictor
    passes: list[int] = []
    forward = predictor.forward
    monkeypatch.setattr(predictor, "forward", lambda x: (passes.append(len(x)), forward(x))[1])
    stacked = predictor.low_res_probabilities(images, tta=4)
    assert passes == [8], "2 images x 4 flips should be one pass"
    monkeypatch.setattr(inference, "_STACKED_FLIPS", 1)
    passes.clear()
    one_by_one = predictor.low_res_probabilities(images, tta=4)
    assert passes == [2, 2, 2, 2]
    x = predictor.batch(images)
    by_hand = sum(torch.flip(torch.sigmoid(forward(torch.flip(x, d) if d else x)), d) if d
                  else torch.sigmoid(forward(x)) for d in inference.TTA_FLIPS)[:, 0] / 4
    # bf16 on CPUs that have it ("auto"): batch sizes may round differently there
    tolerance = 1e-5 if predictor.amp_dtype is None else 2e-2
    torch.testing.assert_close(stacked, one_by_one, atol=tolerance, rtol=0)
    torch.testing.assert_close(one_by_one, by_hand, atol=1e-6, rtol=0)
    assert not torch.allclose(stacked, predictor.low_res_probabilities(images, tta=1), atol=1e-3)


def test_uncertainty():
    assert uncertainty(np.array([0.0, 1.0, 1.0, 0.0])) == pytest.approx(0.0)
    sure = uncertainty(np.array([0.0, 0.99, 0.98, 0.01]))
    unsure = uncertainty(np.array([0.4, 0.6, 0.55, 0.45]))
    assert 0 <= sure < unsure <= 1
    assert uncertainty(np.zeros(10)) == 0.0
    assert uncertainty(np.full(10, 0.4)) == pytest.approx(0.8)


def test_session_load_and_metadata(tiny_model_file):
    session = ModelSession.load(tiny_model_file, "cpu")
    assert session.version == "tiny"
    assert session.device.type == "cpu"
    assert session.meta["work_size"] == [32, 48]
    model, meta = session.cpu_copy()
    assert model is not session.model and meta["version"] == "tiny"
    named = ModelSession.load(tiny_model_file, "cpu", version="mine")
    assert named.version == "mine"
    assert resolve_model_path(tiny_model_file) == tiny_model_file
    assert resolve_model_path("default").name == "default.safetensors"


def test_session_is_thread_safe(tiny_session, make_blob):
    rgb, _ = make_blob(40, 50, seed=1)
    expected = tiny_session.predict(rgb, return_probability=True).probability
    results, errors = [], []

    def work():
        try:
            results.append(tiny_session.predict(rgb, return_probability=True).probability)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)


def test_predictor_from_model_directly(make_blob, model_meta):
    from napari_nevseg.core.model import UNet

    torch.manual_seed(0)
    predictor = Predictor(UNet(width=4, depth=2), model_meta(threshold=0.3), torch.device("cpu"))
    assert predictor.threshold == 0.3 and predictor.work_hw == (32, 48)
    assert not predictor.model.training
    rgb, _ = make_blob(33, 47, seed=0)
    assert predictor.predict(rgb).mask.shape == (33, 47)


def test_cpu_layout_follows_the_network():
    """Channels-last on the CPU only where it was measured to pay: BatchNorm networks."""
    import torch

    from napari_nevseg.core.inference import Predictor
    from napari_nevseg.core.model import ResUNet, UNet

    meta = {"work_size": [32, 48], "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    image = np.zeros((20, 30, 3), np.uint8)
    unet = Predictor(UNet(width=4, depth=2), meta, torch.device("cpu"))
    assert unet.channels_last
    assert unet.batch([image]).is_contiguous(memory_format=torch.channels_last)
    res = Predictor(ResUNet(channels=(4, 8, 8)), meta, torch.device("cpu"))
    assert not res.channels_last
    # the input is plain NCHW too, not the channels-last strides an HWC image permutes to
    assert res.batch([image]).is_contiguous()
    res.to_device(torch.device("cpu"))  # the out-of-memory fallback applies the same rule
    assert not res.channels_last


def test_upright_flips_never_turn_an_image_upside_down():
    """The flips a model with an up keeps (training.inherited_tta) are a prefix of TTA_FLIPS
    without the height axis; the full set has all four."""
    from napari_nevseg.core.inference import TTA_FLIPS, UPRIGHT_TTA

    assert all(2 not in dims for dims in TTA_FLIPS[:UPRIGHT_TTA])
    assert (3,) in TTA_FLIPS[:UPRIGHT_TTA]
    assert set(TTA_FLIPS) == {(), (3,), (2,), (2, 3)}
