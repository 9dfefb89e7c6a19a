"""Weight-space blending of a fine-tuned model with its start (WiSE-FT, Wortsman et al. 2022):
``(1 - alpha) * start + alpha * tuned``.

Fine-tuning on a new camera's few images moves the weights toward that camera; the straight
line back to the starting weights keeps most of the gain on the new camera while restoring much
of what the model knew of the others, at no training cost (the measurements that chose alpha
are in docs/experiments.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["blend_weights"]


def blend_weights(start: nn.Module, tuned: nn.Module, alpha: float) -> nn.Module:
    """A new module: ``tuned``'s architecture with ``(1 - alpha) * start + alpha * tuned`` for
    every floating-point tensor (integer buffers, such as BatchNorm's step count, are tuned's)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend alpha must be in [0, 1], not {alpha}")
    start_state = start.state_dict()
    blended = copy.deepcopy(tuned)
    state = {}
    for name, value in tuned.state_dict().items():
        base = start_state[name].to(value.device)
        if base.shape != value.shape:
            raise ValueError(f"cannot blend models of different shapes: {name} {tuple(base.shape)} vs {tuple(value.shape)}")
        state[name] = torch.lerp(base, value, alpha) if value.is_floating_point() else value.clone()
    blended.load_state_dict(state)
    return blended.eval()
