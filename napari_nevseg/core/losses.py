"""Training loss on logits: BCE-with-logits plus soft Dice (sigmoid applied once, here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_dice_loss", "bce_dice_loss", "click_disk_loss"]


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image, averaged over the batch; ``target`` in [0, 1]."""
    prob = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    inter = (prob * t).sum(1)
    return (1.0 - (2.0 * inter + eps) / (prob.sum(1) + t.sum(1) + eps)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """``BCEWithLogits(logits, target) + dice_weight * soft_dice(logits, target)``.

    ``logits`` are raw network outputs; never pass probabilities here.
    """
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    return bce + dice_weight * soft_dice_loss(logits, target)


def click_disk_loss(logits: torch.Tensor, target: torch.Tensor, disks: torch.Tensor, weight: float) -> torch.Tensor:
    """BCE on the pixels under the click disks ``disks (N, 2, H, W)``, each counted ``weight``
    times more than a pixel of :func:`bce_dice_loss`'s mean: the disks are well under 1% of the
    pixels, and a click the network overrules costs the annotator another click on the same spot."""
    on = disks.float().amax(dim=1, keepdim=True)
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return weight * (bce * on).sum() / on.numel()
