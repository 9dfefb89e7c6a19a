"""Validation score and the input normalisation shared by training and validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from napari_nevseg.core.training.records import TrainingSet

__all__ = ["evaluate_dice", "channel_stats", "stats_tensors", "normalise"]


def normalise(images_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images_u8.float() / 255.0 - mean) / std


def stats_tensors(mean: Sequence[float], std: Sequence[float], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, 3, 1, 1)`` mean and std on ``device``."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return m, s


def channel_stats(data: TrainingSet) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (at least 1e-3) of a training set's images in [0, 1]."""
    x = data.images.float() / 255.0
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()


@torch.inference_mode()
def evaluate_dice(
    model: nn.Module, data: TrainingSet, mean, std, device: torch.device, batch_size: int = 8, guidance_channels: int = 0
) -> float:
    """Mean per-image Dice at working size, threshold 0.5 (the validation score); a click model
    (``guidance_channels`` 3) is scored in its automatic mode, every guidance channel empty."""
    was_training = model.training
    model.eval()
    scores = []
    m, s = stats_tensors(mean, std, device)
    for start in range(0, len(data), batch_size):
        x = normalise(data.images[start : start + batch_size].to(device), m, s)
        if guidance_channels:
            x = torch.cat([x, x.new_zeros(x.shape[0], guidance_channels, *x.shape[-2:])], dim=1)
        pred = model(x) > 0
        ref = data.masks[start : start + batch_size].to(device) > 0.5
        inter = (pred & ref).flatten(1).sum(1).float()
        total = (pred.flatten(1).sum(1) + ref.flatten(1).sum(1)).float()
        scores += torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total)).tolist()
    model.train(was_training)
    return float(np.mean(scores)) if scores else float("nan")
