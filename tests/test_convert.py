"""Conversion rules of core/convert.py (module docstring), case by case."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nevseg.core.convert import mask_to_uint8, to_bool_mask, to_rgb_uint8


def test_rgb_uint8_passes_through_unchanged():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = to_rgb_uint8(rgb)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags["C_CONTIGUOUS"]


def test_grey_is_repeated():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_rgb_uint8(grey)
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)
    np.testing.assert_array_equal(to_rgb_uint8(grey[..., None]), out)


def test_alpha_is_dropped():
    rgb = np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((4, 6), 7, np.uint8)])
    np.testing.assert_array_equal(to_rgb_uint8(rgba), rgb)
    grey_alpha = np.dstack([rgb[..., 0], np.zeros((4, 6), np.uint8)])
    np.testing.assert_array_equal(to_rgb_uint8(grey_alpha), np.repeat(rgb[..., :1], 3, axis=-1))


def test_channel_first_is_moved():
    rgb = np.random.default_rng(2).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(np.moveaxis(rgb, -1, 0)), rgb)
    rgba_first = np.moveaxis(np.dstack([rgb, rgb[..., :1]]), -1, 0)
    np.testing.assert_array_equal(to_rgb_uint8(rgba_first), rgb)


def test_16bit_scaled_by_257():
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(values)[..., 0], [[0, 1, 255, 128]])
    rgb = np.random.default_rng(3).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.uint16) * 257), rgb)


def test_signed_integers_clip_at_zero():
    values = np.array([[-5, 0, 2**31 - 1]], dtype=np.int32)
    np.testing.assert_array_equal(to_rgb_uint8(values)[..., 0], [[0, 0, 255]])


def test_floats():
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_rgb_uint8(unit)[..., 0], [[0, 128, 255]])
    byte_range = np.array([[0.0, 100.0, 255.0]], dtype=np.float64)
    np.testing.assert_array_equal(to_rgb_uint8(byte_range)[..., 0], [[0, 100, 255]])
    stretched = np.array([[-1.0, 0.0, 1000.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_rgb_uint8(stretched)[..., 0], [[0, 0, 255]])
    rgb = np.random.default_rng(4).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.float32) / 255), rgb)


def test_nan_and_inf_become_zero():
    values = np.array([[np.nan, np.inf, -np.inf, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_rgb_uint8(values)[..., 0], [[0, 0, 0, 255]])


def test_extreme_floats_do_not_overflow():
    values = np.array([[-3e38, 0.0, 3e38]], dtype=np.float32)
    out = to_rgb_uint8(values)[..., 0]
    np.testing.assert_array_equal(out, [[0, 128, 255]])
    huge64 = np.array([[0.0, 1e300, 5.0]], dtype=np.float64)  # beyond float32: treated as inf -> 0
    assert to_rgb_uint8(huge64).dtype == np.uint8


def test_bool_image():
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[True, False]]))[..., 0], [[255, 0]])


@pytest.mark.parametrize(
    "shape", [(5, 6, 7), (2, 3, 4, 3), (0, 5), (5, 0, 3), (7,)]
)
def test_unsupported_shapes(shape):
    with pytest.raises(ValueError):
        to_rgb_uint8(np.zeros(shape, np.uint8))


def test_unsupported_dtype():
    with pytest.raises(ValueError, match="unsupported pixel type"):
        to_rgb_uint8(np.zeros((3, 3), np.complex64))


# -- masks (the documented rule) -----------------------------------------------------------------
def test_mask_0_255():
    m = np.array([[0, 255, 127, 128]], dtype=np.uint8)
    np.testing.assert_array_equal(to_bool_mask(m), [[False, True, False, True]])


def test_mask_0_1():
    np.testing.assert_array_equal(to_bool_mask(np.array([[0, 1, 1, 0]], np.uint8)), [[0, 1, 1, 0]])
    np.testing.assert_array_equal(to_bool_mask(np.array([[0, 1]], np.int64)), [[False, True]])


def test_mask_jpeg_noise():
    noisy = np.array([[0, 3, 9, 120, 128, 135, 250, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(to_bool_mask(noisy), [[0, 0, 0, 0, 1, 1, 1, 1]])


def test_mask_float_probabilities():
    probs = np.array([[0.0, 0.49, 0.5, 0.9, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(to_bool_mask(probs), [[0, 0, 1, 1, 0]])
    float255 = np.array([[0.0, 100.0, 200.0]], dtype=np.float64)
    np.testing.assert_array_equal(to_bool_mask(float255), [[0, 0, 1]])


def test_mask_16bit_and_bool():
    np.testing.assert_array_equal(to_bool_mask(np.array([[0, 255, 40000]], np.uint16)), [[0, 0, 1]])
    m = np.array([[True, False]])
    out = to_bool_mask(m)
    np.testing.assert_array_equal(out, m)
    assert out is not m


def test_colour_masks():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (0, 0, 200)
    np.testing.assert_array_equal(to_bool_mask(rgb), [[True, False], [False, True]])
    rgba = np.dstack([rgb, np.full((2, 2), 255, np.uint8)])  # alpha is not foreground
    np.testing.assert_array_equal(to_bool_mask(rgba), [[True, False], [False, True]])


def test_mask_bad_shape():
    with pytest.raises(ValueError, match="2-D mask"):
        to_bool_mask(np.zeros((2, 3, 4, 5), np.uint8))


def test_mask_to_uint8():
    labels = np.array([[0, 1, 2, -1]], np.int32)
    out = mask_to_uint8(labels)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 255, 255, 0]])
