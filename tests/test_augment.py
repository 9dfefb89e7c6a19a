"""Training augmentation: image and mask stay aligned, a seed repeats, upright stays upright,
copy-paste makes the union of two objects."""

from __future__ import annotations

import pytest
import torch

from napari_nevseg.core.augment import AugmentConfig, _copy_paste, augment_batch

NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, channel_gain=0.0, gamma=0.0)


def _squares(n: int = 4, h: int = 48, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        masks[i, :, 8 + 2 * i : 30 + 2 * i, 10 + 4 * i : 34 + 4 * i] = 1.0
    images = masks.repeat(1, 3, 1, 1) * 0.8 + 0.1
    return images, masks


def test_geometry_moves_image_and_mask_together():
    images, masks = _squares()
    images = masks.repeat(1, 3, 1, 1)  # an image that is its own mask
    out_images, out_masks = augment_batch(images, masks, AugmentConfig(**NO_COLOUR), torch.Generator().manual_seed(0))
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    assert 0 <= out_masks.min() and out_masks.max() <= 1
    for c in range(3):  # one warp for both: the image is still its mask
        torch.testing.assert_close(out_images[:, c : c + 1], out_masks, atol=1e-5, rtol=0)
    assert not torch.equal(out_masks, masks)  # something did move


def test_same_seed_same_batch_other_seed_other_batch():
    images, masks = _squares()
    run = lambda seed: augment_batch(images, masks, AugmentConfig(), torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_upright_keeps_up_up():
    """Without rotations an object in the top half stays there (flips are left-right only)."""
    masks = torch.zeros(8, 1, 48, 64)
    masks[:, :, 4:18, 20:44] = 1.0
    images = masks.repeat(1, 3, 1, 1)
    _, out = augment_batch(images, masks, AugmentConfig(rotate=False, **NO_COLOUR), torch.Generator().manual_seed(1))
    top, bottom = out[:, :, :24].sum(dim=(1, 2, 3)), out[:, :, 24:].sum(dim=(1, 2, 3))
    assert (top > 10 * bottom).all()


def test_copy_paste_pastes_another_object_and_unites_the_masks():
    images, masks = _squares(n=2)
    images[1] = 1.0 - images[1]  # tell the two images apart
    out_images, out_masks = _copy_paste(images.clone(), masks.clone(), 1.0, torch.Generator().manual_seed(0))
    for i, donor in ((0, 1), (1, 0)):  # with two images, each one's donor is the other
        torch.testing.assert_close(out_masks[i], torch.maximum(masks[i], masks[donor]))
        pasted = masks[donor].bool().expand(3, -1, -1)
        torch.testing.assert_close(out_images[i][pasted], images[donor][pasted])
        untouched = ~masks[donor].bool().expand(3, -1, -1)
        torch.testing.assert_close(out_images[i][untouched], images[i][untouched])
    # off by default, and a batch of one has nobody to paste from
    assert AugmentConfig().copy_paste == 0.0
    one_image, one_mask = _copy_paste(images[:1], masks[:1], 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(one_image, images[:1]) and torch.equal(one_mask, masks[:1])


def test_colour_strength_widens_colour_only():
    base = AugmentConfig(zoom=(0.9, 1.1), copy_paste=0.3)
    strong = base.with_colour_strength(2.0)
    assert (strong.brightness, strong.contrast, strong.saturation, strong.channel_gain, strong.gamma) == (
        0.4, 0.4, 0.5, 0.16, 0.4)
    assert (strong.rotate, strong.zoom, strong.shift, strong.copy_paste) == (base.rotate, base.zoom, base.shift, 0.3)
    assert base.with_colour_strength(0.0) == AugmentConfig(zoom=(0.9, 1.1), copy_paste=0.3, **NO_COLOUR)
    images, masks = _squares()
    run = lambda k: augment_batch(images, masks, AugmentConfig(rotate=False).with_colour_strength(k), torch.Generator().manual_seed(1))[0]  # noqa: E731
    plain = run(0.0)  # the same seed draws the same geometry at every strength
    change = lambda k: float((run(k) - plain).abs().mean())  # noqa: E731
    assert 0 < change(1.0) < change(3.0)
    with pytest.raises(ValueError, match="colour strength"):
        base.with_colour_strength(-1)
    with pytest.raises(ValueError, match="below 1"):  # saturation 0.25 x 4: a factor could reach 0
        base.with_colour_strength(4.0)
