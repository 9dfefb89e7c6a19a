"""Property-based tests (hypothesis) of conversion, clean-up and metrics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import label

from napari_nevseg.core.convert import mask_to_uint8, to_bool_mask, to_rgb_uint8
from napari_nevseg.core.metrics import dice, jaccard, score, thresholded_jaccard
from napari_nevseg.core.postprocess import Cleanup, clean_mask

SETTINGS = settings(max_examples=50, deadline=None)
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.bool_])
SIDE = st.integers(1, 24)


def _elements(dtype):
    if dtype == np.float32:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    return None


@st.composite
def images(draw):
    dtype = draw(DTYPES)
    h, w = draw(SIDE), draw(SIDE)
    layout = draw(st.sampled_from(["2d", "last", "first"]))
    if layout == "2d":
        shape = (h, w)
    elif layout == "last":
        shape = (h, w, draw(st.integers(1, 4)))
    else:
        w = draw(st.integers(5, 24))  # channel-first is recognised when the last axis is wider than 4
        shape = (draw(st.integers(1, 4)), h, w)
    array = draw(arrays(dtype, shape, elements=_elements(dtype)))
    hw = shape[1:] if layout == "first" else shape[:2]
    return array, hw


@SETTINGS
@given(images())
def test_to_rgb_uint8_always_rgb(case):
    array, hw = case
    out = to_rgb_uint8(array)
    assert out.shape == (*hw, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


@SETTINGS
@given(images())
def test_to_rgb_uint8_is_idempotent(case):
    once = to_rgb_uint8(case[0])
    np.testing.assert_array_equal(to_rgb_uint8(once), once)


@SETTINGS
@given(images())
def test_to_bool_mask_shapes(case):
    array, hw = case
    mask = to_bool_mask(array)
    assert mask.shape == hw and mask.dtype == bool
    np.testing.assert_array_equal(to_bool_mask(mask_to_uint8(mask)), mask)


@SETTINGS
@given(arrays(np.bool_, st.tuples(SIDE, SIDE)))
def test_bool_mask_round_trip(mask):
    np.testing.assert_array_equal(to_bool_mask(mask.astype(np.uint8) * 255), mask)
    np.testing.assert_array_equal(to_bool_mask(mask.astype(np.uint8)), mask)
    np.testing.assert_array_equal(to_bool_mask(mask.astype(np.float32)), mask)


@SETTINGS
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))),
    st.booleans(), st.booleans(), st.booleans(),
)
def test_clean_mask_properties(mask, keep, fill, smooth):
    cleanup = Cleanup(keep_largest=keep, fill_holes=fill, smooth=smooth, smooth_sigma=0.02)
    out = clean_mask(mask, cleanup)
    assert out.dtype == bool and out.shape == mask.shape
    if keep:
        assert label(out, connectivity=2).max() <= 1
    if not (keep or fill or smooth):
        np.testing.assert_array_equal(out, mask)
    if fill and not keep and not smooth:
        assert (out >= mask).all()  # filling only adds


@st.composite
def mask_pairs(draw):
    shape = (draw(SIDE), draw(SIDE))
    return draw(arrays(np.bool_, shape)), draw(arrays(np.bool_, shape))


@SETTINGS
@given(mask_pairs())
def test_metric_properties(pair):
    a, b = pair
    d, j = dice(a, b), jaccard(a, b)
    assert 0.0 <= j <= d <= 1.0
    assert d == dice(b, a) and j == jaccard(b, a)
    assert abs(d - 2 * j / (1 + j)) < 1e-9
    t = thresholded_jaccard(a, b)
    assert t == (j if j >= 0.65 else 0.0)
    assert score(a, b) == score(b, a)
    assert dice(a, a) == 1.0 and jaccard(a, a) == 1.0
