"""Overlap metrics between binary masks: Dice, Jaccard and thresholded Jaccard (0 below 0.65, as ISIC 2018 scores)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["dice", "jaccard", "thresholded_jaccard", "Scores", "score", "mean_scores"]


def _counts(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int]:
    p, r = np.asarray(pred) > 0, np.asarray(ref) > 0
    if p.shape != r.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {r.shape}")
    return int(np.count_nonzero(p & r)), int(np.count_nonzero(p)), int(np.count_nonzero(r))


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """2|P∩R| / (|P| + |R|); 1.0 when both masks are empty."""
    inter, n_pred, n_ref = _counts(pred, ref)
    return 1.0 if n_pred + n_ref == 0 else 2.0 * inter / (n_pred + n_ref)


def jaccard(pred: np.ndarray, ref: np.ndarray) -> float:
    """|P∩R| / |P∪R|; 1.0 when both masks are empty."""
    inter, n_pred, n_ref = _counts(pred, ref)
    union = n_pred + n_ref - inter
    return 1.0 if union == 0 else inter / union


def thresholded_jaccard(pred: np.ndarray, ref: np.ndarray, threshold: float = 0.65) -> float:
    """Jaccard, or 0 when it is below ``threshold`` (the ISIC 2018 challenge score)."""
    value = jaccard(pred, ref)
    return value if value >= threshold else 0.0


@dataclass(frozen=True)
class Scores:
    """Per-image scores."""

    dice: float
    jaccard: float
    thresholded_jaccard: float


def score(pred: np.ndarray, ref: np.ndarray) -> Scores:
    """All three scores for one image (one pass over the pixels)."""
    inter, n_pred, n_ref = _counts(pred, ref)
    union = n_pred + n_ref - inter
    d = 1.0 if n_pred + n_ref == 0 else 2.0 * inter / (n_pred + n_ref)
    j = 1.0 if union == 0 else inter / union
    return Scores(d, j, j if j >= 0.65 else 0.0)


def mean_scores(per_image: Iterable[Scores] | Mapping[str, Scores]) -> dict[str, float]:
    """Mean of each score over a set (empty set: NaN)."""
    values = list(per_image.values() if isinstance(per_image, Mapping) else per_image)
    keys = ("dice", "jaccard", "thresholded_jaccard")
    if not values:
        return {k: float("nan") for k in keys}
    return {k: float(np.mean([asdict(v)[k] for v in values])) for k in keys}
