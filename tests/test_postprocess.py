"""Lesion clean-up on synthetic shapes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label

from napari_nevseg.core.postprocess import Cleanup, clean_mask, fill_holes, keep_largest_region, smooth_border


def _disk(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_keep_largest_region():
    big = _disk((60, 80), (30, 30), 12)
    small = _disk((60, 80), (10, 70), 4)
    out = keep_largest_region(big | small)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, big)


def test_keep_largest_uses_8_connectivity():
    mask = np.zeros((10, 10), bool)
    mask[2, 2] = mask[3, 3] = mask[4, 4] = True  # diagonal chain: one region
    mask[8, 0] = True
    out = keep_largest_region(mask)
    assert out[2, 2] and out[3, 3] and out[4, 4] and not out[8, 0]


def test_keep_largest_empty_and_single():
    empty = np.zeros((5, 7), bool)
    assert not keep_largest_region(empty).any()
    single = _disk((20, 20), (10, 10), 5)
    np.testing.assert_array_equal(keep_largest_region(single), single)


def test_fill_holes_fills_inner_but_not_border_touching_background():
    ring = _disk((50, 50), (25, 25), 15) & ~_disk((50, 50), (25, 25), 6)
    filled = fill_holes(ring)
    np.testing.assert_array_equal(filled, _disk((50, 50), (25, 25), 15))
    # a "bay" open to the image border is not a hole
    bay = np.zeros((20, 20), bool)
    bay[:, 5:15] = True
    bay[:, 8:12] = False
    np.testing.assert_array_equal(fill_holes(bay), bay)


def test_smooth_border_removes_jaggies_and_keeps_the_shape():
    base = _disk((200, 200), (100, 100), 50)
    rng = np.random.default_rng(0)
    noisy = base ^ (rng.random(base.shape) < 0.03) & (np.abs(np.hypot(*(np.mgrid[:200, :200] - 100)) - 50) < 3)
    smooth = smooth_border(noisy, sigma_fraction=0.01)
    assert smooth.dtype == bool and smooth.shape == base.shape
    assert (smooth != base).sum() < (noisy != base).sum()
    # a single-pixel spur is removed, the disk stays
    spur = base.copy()
    spur[100, 150:170] = True
    out = smooth_border(spur, 0.01)
    assert not out[100, 160:170].any()
    assert out[100, 100]


def test_smooth_border_is_resolution_independent():
    small = _disk((100, 100), (50, 50), 25)
    large = _disk((400, 400), (200, 200), 100)
    a = smooth_border(small, 0.02)
    b = smooth_border(large, 0.02)
    assert abs(a.mean() - b.mean()) < 0.01


def test_smooth_border_tiny_sigma_and_empty():
    mask = np.zeros((10, 10), bool)
    mask[3:5, 3:5] = True
    np.testing.assert_array_equal(smooth_border(mask, 0.004), mask)  # sigma < 0.5 px: unchanged
    empty = np.zeros((300, 300), bool)
    assert not smooth_border(empty).any()


def test_clean_mask_full():
    lesion = _disk((120, 160), (60, 70), 30) & ~_disk((120, 160), (60, 70), 5)
    speck = _disk((120, 160), (10, 150), 3)
    out = clean_mask(lesion | speck)
    assert out.dtype == bool and out.shape == lesion.shape
    assert out[60, 70], "hole not filled"
    assert not out[10, 150], "speck kept"
    assert label(out, connectivity=2).max() == 1


def test_clean_mask_none_only_binarises():
    labels = np.zeros((20, 20), np.uint8)
    labels[2:5, 2:5] = 1
    labels[10:18, 10:18] = 2
    out = clean_mask(labels, Cleanup.none())
    np.testing.assert_array_equal(out, labels > 0)


@pytest.mark.parametrize("step", ["keep_largest", "fill_holes", "smooth"])
def test_each_step_can_be_switched_off(step):
    lesion = _disk((100, 100), (50, 50), 25) & ~_disk((100, 100), (50, 50), 4)
    speck = _disk((100, 100), (8, 8), 2)
    mask = lesion | speck
    only = Cleanup(keep_largest=step == "keep_largest", fill_holes=step == "fill_holes", smooth=step == "smooth")
    out = clean_mask(mask, only)
    if step == "keep_largest":
        assert not out[8, 8] and not out[50, 50]
    elif step == "fill_holes":
        assert out[8, 8] and out[50, 50]
    else:
        assert out[8, 8] and not out[50, 50]


def _whole_image_clean(mask, cleanup):
    """The plain definition of the clean-up, on the whole image (the reference)."""
    from scipy import ndimage

    from napari_nevseg.core.postprocess import keep_largest_region, smooth_border

    out = mask > 0
    if cleanup.smooth:
        out = smooth_border(out, cleanup.smooth_sigma)
    if cleanup.keep_largest:
        out = keep_largest_region(out)
    if cleanup.fill_holes:
        out = ndimage.binary_fill_holes(out)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_bounding_box_clean_up_equals_the_whole_image_definition(seed):
    """clean_mask works on the lesion's box for speed; it must give exactly the plain result."""
    from scipy import ndimage

    from napari_nevseg.core.postprocess import Cleanup, clean_mask

    rng = np.random.default_rng(seed)
    h, w = rng.integers(20, 200, size=2)
    noise = ndimage.gaussian_filter(rng.normal(size=(h, w)), rng.uniform(1, 6))
    mask = noise > np.quantile(noise, rng.uniform(0.5, 0.98))
    if seed % 2:
        mask[: h // 3] = False  # a lesion away from the border
    for cleanup in (Cleanup(), Cleanup(smooth=False), Cleanup(keep_largest=False), Cleanup(fill_holes=False),
                    Cleanup.none(), Cleanup(smooth_sigma=0.03)):
        np.testing.assert_array_equal(clean_mask(mask, cleanup), _whole_image_clean(mask, cleanup), err_msg=str(cleanup))


def test_keep_largest_also_keeps_regions_holding_a_point():
    from napari_nevseg.core.postprocess import keep_largest_region

    mask = np.zeros((20, 40), bool)
    mask[2:12, 2:12] = True  # largest
    mask[15:18, 20:23] = True  # small, clicked
    mask[15:18, 30:33] = True  # small, not clicked
    kept = keep_largest_region(mask, [(16, 21), (0, 0)])  # a point on the background keeps nothing
    assert kept[2:12, 2:12].all() and kept[15:18, 20:23].all() and not kept[15:18, 30:33].any()
    np.testing.assert_array_equal(keep_largest_region(mask), mask & (np.arange(40) < 15)[None, :] & (np.arange(20) < 13)[:, None])
    cleaned = clean_mask(mask, Cleanup(smooth=False), keep_points=[(16, 21)])
    assert cleaned[15:18, 20:23].all() and not cleaned[15:18, 30:33].any()
