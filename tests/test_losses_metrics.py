"""Loss on logits and the overlap metrics (Dice, Jaccard, thresholded Jaccard at 0.65, as ISIC 2018 scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_nevseg.core.losses import bce_dice_loss, click_disk_loss, soft_dice_loss
from napari_nevseg.core.metrics import Scores, dice, jaccard, mean_scores, score, thresholded_jaccard


def _target() -> torch.Tensor:
    t = torch.zeros(2, 1, 16, 16)
    t[0, :, 4:12, 4:12] = 1
    t[1, :, :8, :] = 1
    return t


def test_perfect_logits_beat_wrong_ones():
    t = _target()
    perfect = (t * 2 - 1) * 10
    wrong = -perfect
    zero = torch.zeros_like(t)
    l_perfect, l_zero, l_wrong = (bce_dice_loss(x, t).item() for x in (perfect, zero, wrong))
    assert l_perfect < 0.01
    assert l_perfect < l_zero < l_wrong
    assert l_wrong > 5


def test_loss_expects_logits():
    """Passing probabilities (the bug this project comes from) scores a perfect answer badly."""
    t = _target()
    perfect_logits = (t * 2 - 1) * 10
    as_probabilities = torch.sigmoid(perfect_logits)
    assert bce_dice_loss(as_probabilities, t).item() > bce_dice_loss(perfect_logits, t).item() + 0.3


def test_loss_gradient_finite_even_for_extreme_logits():
    t = _target()
    logits = torch.full_like(t, 80.0).requires_grad_(True)
    loss = bce_dice_loss(logits, t)
    loss.backward()
    assert math.isfinite(loss.item())
    assert torch.isfinite(logits.grad).all()
    # the gradient pushes the wrongly positive pixels down
    assert logits.grad[t == 0].mean().item() > 0


def test_soft_dice_values():
    t = _target()
    assert soft_dice_loss(torch.full_like(t, 50.0), t).item() == pytest.approx(
        1 - ((2 * t.flatten(1).sum(1) + 1) / (256 + t.flatten(1).sum(1) + 1)).mean().item(), abs=1e-5
    )
    empty = torch.zeros(1, 1, 8, 8)
    assert soft_dice_loss(torch.full_like(empty, -50.0), empty).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_weight():
    t = _target()
    x = torch.zeros_like(t)
    bce_only = bce_dice_loss(x, t, dice_weight=0.0).item()
    assert bce_only == pytest.approx(math.log(2), abs=1e-6)
    assert bce_dice_loss(x, t).item() == pytest.approx(bce_only + soft_dice_loss(x, t).item(), abs=1e-6)


# -- metrics -----------------------------------------------------------------------------------
A = np.zeros((4, 4), bool)
A[:2, :2] = True  # 4 pixels
B = np.zeros((4, 4), bool)
B[:2, :3] = True  # 6 pixels, 4 shared


def test_click_disk_loss_counts_only_the_pixels_under_a_disk():
    """Errors under a click's disk cost ``weight`` times a pixel's share; errors elsewhere
    nothing; no disk, no loss (the automatic half of a batch is not touched)."""
    target = torch.zeros(1, 1, 8, 8)
    logits = torch.full((1, 1, 8, 8), -10.0)
    logits[0, 0, 0, 0] = 10.0  # a wrong pixel, not under a disk
    disks = torch.zeros(1, 2, 8, 8)
    assert click_disk_loss(logits, target, disks, 10.0).item() == 0.0
    disks[0, 1, 4, 4] = 1.0  # a negative click's disk on one pixel the network gets right
    right = click_disk_loss(logits, target, disks, 10.0).item()
    logits[0, 0, 4, 4] = 10.0  # now the network overrules the click
    wrong = click_disk_loss(logits, target, disks, 10.0).item()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(10.0), torch.tensor(0.0)).item()
    assert right < 1e-5 < wrong
    assert math.isclose(wrong, 10.0 * bce / 64, rel_tol=1e-5)
    assert math.isclose(click_disk_loss(logits, target, disks, 20.0).item(), 2 * wrong, rel_tol=1e-6)


def test_dice_jaccard_hand_made():
    assert dice(A, B) == pytest.approx(2 * 4 / 10)
    assert jaccard(A, B) == pytest.approx(4 / 6)
    assert thresholded_jaccard(A, B) == pytest.approx(4 / 6)
    assert thresholded_jaccard(A, B, threshold=0.7) == 0.0
    assert dice(A, A) == 1.0 and jaccard(A, A) == 1.0
    assert dice(A, ~A) == 0.0 and jaccard(A, ~A) == 0.0


def test_thresholded_jaccard_at_isic_threshold():
    ref = np.zeros((10, 10), bool)
    ref[:, :10] = True
    pred = np.zeros((10, 10), bool)
    pred[:, :6] = True  # jaccard 0.6 < 0.65
    assert jaccard(pred, ref) == pytest.approx(0.6)
    assert thresholded_jaccard(pred, ref) == 0.0
    pred[:, :7] = True  # 0.7
    assert thresholded_jaccard(pred, ref) == pytest.approx(0.7)


def test_both_empty_and_one_empty():
    empty = np.zeros((5, 5), bool)
    assert dice(empty, empty) == 1.0
    assert jaccard(empty, empty) == 1.0
    assert thresholded_jaccard(empty, empty) == 1.0
    assert dice(empty, np.pad(A, ((0, 1), (0, 1)))) == 0.0
    assert jaccard(np.pad(A, ((0, 1), (0, 1))), empty) == 0.0
    assert score(empty, empty) == Scores(1.0, 1.0, 1.0)


def test_label_and_uint8_masks_count_as_foreground():
    labels = A.astype(np.uint8) * 3
    assert dice(labels, B.astype(np.uint8) * 255) == pytest.approx(0.8)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        dice(A, np.zeros((4, 5), bool))


def test_score_matches_the_single_functions():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, r = rng.random((2, 12, 9)) > rng.random(2)[:, None, None]
        s = score(p, r)
        assert s.dice == pytest.approx(dice(p, r))
        assert s.jaccard == pytest.approx(jaccard(p, r))
        assert s.thresholded_jaccard == pytest.approx(thresholded_jaccard(p, r))


def test_mean_scores():
    per = {"a": Scores(1.0, 1.0, 1.0), "b": Scores(0.5, 0.25, 0.0)}
    means = mean_scores(per)
    assert means == pytest.approx({"dice": 0.75, "jaccard": 0.625, "thresholded_jaccard": 0.5})
    assert mean_scores(list(per.values())) == means
    empty = mean_scores([])
    assert set(empty) == {"dice", "jaccard", "thresholded_jaccard"}
    assert all(math.isnan(v) for v in empty.values())
