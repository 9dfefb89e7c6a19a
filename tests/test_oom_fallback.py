"""A GPU out-of-memory error falls back to smaller batches, then to the CPU, and says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_nevseg.core.session import ModelSession


@pytest.fixture
def fresh_session(blob_model_file):
    """A session of its own: these tests replace a method of its predictor."""
    return ModelSession.load(blob_model_file, "cpu")


def _failing_when(predictor, too_big: int, failures: list):
    real = predictor.low_res_probabilities

    def fake(batch, tta=None):
        if len(batch) > too_big:
            failures.append(len(batch))
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch, tta)

    predictor.low_res_probabilities = fake


def test_batch_is_halved_until_it_fits(fresh_session, make_blob):
    blob_session = fresh_session
    images = [make_blob(48, 64, seed=i)[0] for i in range(8)]
    expected = [p.mask for p in blob_session.predictor.predict_many(images, batch_size=8)]
    notes: list[str] = []
    failures: list[int] = []
    _failing_when(blob_session.predictor, 2, failures)
    got = [p.mask for p in blob_session.predictor.predict_many(images, batch_size=8, on_fallback=notes.append)]
    assert failures == [8, 4, 4]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    assert notes and "at a time" in notes[0]


def test_single_image_moves_to_the_cpu(fresh_session, make_blob):
    blob_session = fresh_session
    image = make_blob(48, 64, seed=3)[0]
    expected = blob_session.predict(image).mask
    predictor = blob_session.predictor
    real = predictor.low_res_probabilities
    calls = {"n": 0}

    def once(batch, tta=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch, tta)

    predictor.low_res_probabilities = once
    notes: list[str] = []
    mask = blob_session.predict(image, on_fallback=notes.append).mask
    assert np.array_equal(mask, expected)
    assert notes == ["GPU memory is short: this image is predicted on the CPU"]
    assert predictor.device.type == "cpu"
