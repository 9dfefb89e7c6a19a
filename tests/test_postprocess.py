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


def _big_lesion(seed: int, hw=(1500, 2000)) -> np.ndarray:
    """A wobbly lesion of a 3-megapixel image, with specks and pinholes, the way a network's
    upsampled mask looks."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = ndimage.gaussian_filter(rng.normal(size=(hw[0] // 16, hw[1] // 16)), 6)
    rows, cols = np.ogrid[: coarse.shape[0], : coarse.shape[1]]
    bump = -((rows - coarse.shape[0] / 2) ** 2 + (cols - coarse.shape[1] / 2) ** 2) / (coarse.shape[0] * 12)
    field = np.kron(coarse / coarse.std() * 0.3 + bump, np.ones((16, 16)))[: hw[0], : hw[1]]
    mask = field > np.quantile(field, 0.7)
    mask[60:200, 60:200] = True  # a speck far from the lesion
    centre = (hw[0] // 2, hw[1] // 2)
    mask[centre[0] - 30 : centre[0] + 30, centre[1] - 30 : centre[1] + 30] = False  # a hole inside it
    return mask


def test_coarse_clean_up_of_a_large_mask_matches_the_full_resolution_one(monkeypatch):
    """Above COARSE_MIN_PIXELS the clean-up runs on a coarser grid (3 s -> tens of ms on a
    4288x2848 image); its outline must be the full-resolution clean-up's within a pixel or two,
    and it must still drop specks, fill holes and keep clicked regions."""
    from scipy import ndimage

    import napari_nevseg.core.postprocess as postprocess
    from napari_nevseg.core.metrics import jaccard

    mask = _big_lesion(0)
    calls, real = [], postprocess._coarse_clean
    monkeypatch.setattr(postprocess, "_coarse_clean", lambda *a: calls.append(a[2]) or real(*a))
    coarse = clean_mask(mask)
    assert calls and calls[0] > 1  # the coarse path is the one under test
    exact = _whole_image_clean(mask, Cleanup())
    assert jaccard(coarse, exact) > 0.995
    differing = coarse ^ exact
    # the differences are a thin band along the outline, not regions
    assert not ndimage.binary_erosion(differing, iterations=3).any()
    assert not coarse[60:200, 60:200].any()  # the speck is dropped
    centre = (mask.shape[0] // 2, mask.shape[1] // 2)
    assert coarse[centre].all()  # the hole is filled
    kept = clean_mask(mask, keep_points=[(130, 130)])
    assert kept[100:160, 100:160].all()  # a positive click keeps its region


def test_small_images_never_take_the_coarse_path():
    from napari_nevseg.core.postprocess import coarse_factor

    assert coarse_factor((576, 768), 0.004 * np.hypot(576, 768)) == 1  # PH2: exact as before
    assert coarse_factor((150, 200), 8.5) == 1
    assert coarse_factor((2848, 4288), 20.6) == 6
