"""Bootstrap 95% intervals for per-image scores, alone and paired.

A mean over 32 or 150 images moves by about 0.01 Dice from one draw of images to the next, so a
number without its interval cannot say whether a model or a setting is better. Both functions
resample *images* with replacement (percentile bootstrap); the paired one resamples the same
images for both models, so the difference's interval is not widened by how hard the images are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_mean", "paired_difference"]


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap interval ``[low, high]`` at ``level``."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[picks].mean(axis=1)


def _interval(values: np.ndarray, level: float, resamples: int, seed: int) -> Interval:
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("need a non-empty 1-D sequence of per-image scores")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), not {level}")
    means = _resampled_means(values, resamples, seed)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(values.mean()), float(low), float(high), len(values), level)


def bootstrap_mean(values: Sequence[float], *, level: float = 0.95, resamples: int = 10_000,
                   seed: int = 0) -> Interval:
    """The mean of ``values`` (one score per image) with its percentile bootstrap interval."""
    return _interval(np.asarray(values, dtype=np.float64), level, resamples, seed)


def paired_difference(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                      resamples: int = 10_000, seed: int = 0) -> Interval:
    """Mean of ``a - b`` over the same images, with its paired bootstrap interval: an interval
    that excludes 0 says the two differ on images like these."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired scores need the same images: {a_arr.shape} vs {b_arr.shape}")
    return _interval(a_arr - b_arr, level, resamples, seed)
