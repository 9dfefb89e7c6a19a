"""The default model's data: which images of which source train, choose and test it, and how
an epoch mixes the sources.

The splits are fixed once and for all by seeds, so that no later run can train on, or choose
with, an image that is reported as a test result:

- **PH2** (``ph2/``, 160 images with ``classes.csv``): 32 test images, a stratified 20% by
  diagnosis with seed 0, then 25 validation images, a stratified 20% of the rest with seed 1
  (the very splits of the earlier PH2-only default model, so its test numbers stay comparable);
  the other 103 train.
- **ISIC 2017** (``isic2017/train``, 2000 pairs): 200 test images drawn with
  :data:`ISIC_TEST_SEED`; the other 1800 train. ``isic2017/val`` (150) chooses the settings.
- **DermQuest** clinical photos are never part of the default model's data: they stand in for a
  camera the model has not seen, on which adaptation by fine-tuning is measured.

Sampling. PH2 is 7% of the training images, but it is the one source at a dermoscope's full
resolution, with outlines traced at that resolution, and it carries a target of its own (test
Dice >= 0.94), while ISIC's 256x192 downscales stretch every image to one aspect ratio. Drawn
in proportion, PH2 would be one sample in fourteen and the network would fit its dermoscope no
better than any single ISIC clinic's. An epoch is therefore a fixed-size draw in which each
source has a chosen *share* of the samples (:func:`epoch_indices`), PH2's raised above its 7%
(each PH2 image then recurs a few times per epoch under different augmentations); the share is
a recipe setting, chosen on the validation images of both sources.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_nevseg.core.data import Pair, find_pairs, read_strata, stratified_split
from napari_nevseg.core.errors import NoPairsError

__all__ = [
    "ISIC_TEST_SEED",
    "ISIC_TEST_SIZE",
    "SourceSplit",
    "split_ph2",
    "split_isic",
    "default_sources",
    "epoch_indices",
]

#: the ISIC 2017 training images held out as this project's ISIC test split (never trained on)
ISIC_TEST_SIZE = 200
ISIC_TEST_SEED = 2017


@dataclass(frozen=True)
class SourceSplit:
    """One source's pairs by role: ``train`` is trained on, ``val`` chooses settings, ``test``
    only reports."""

    name: str
    train: tuple[Pair, ...]
    val: tuple[Pair, ...]
    test: tuple[Pair, ...]

    def stems(self, role: str) -> list[str]:
        return [p.stem for p in getattr(self, role)]


def _by_stem(pairs: Sequence[Pair], stems: Sequence[str]) -> tuple[Pair, ...]:
    index = {p.stem: p for p in pairs}
    return tuple(index[s] for s in stems)


def split_ph2(root: str | os.PathLike[str]) -> SourceSplit:
    """PH2's fixed test / validation / training split (see the module docstring)."""
    base = Path(root)
    pairs = find_pairs(base / "images", base / "masks")
    strata = read_strata(base / "classes.csv")
    rest, test = stratified_split([p.stem for p in pairs], 0.2, 0, strata)
    train, val = stratified_split(rest, 0.2, 1, strata)
    return SourceSplit("ph2", _by_stem(pairs, train), _by_stem(pairs, val), _by_stem(pairs, test))


def split_isic(root: str | os.PathLike[str], test_size: int = ISIC_TEST_SIZE) -> SourceSplit:
    """ISIC 2017: ``train/`` less a fixed ``test_size`` test draw; ``val/`` for choosing."""
    base = Path(root)
    pairs = find_pairs(base / "train" / "images", base / "train" / "masks")
    if len(pairs) <= test_size:
        raise NoPairsError(f"{base / 'train'} holds {len(pairs)} pairs; at least {test_size + 1} are needed")
    stems = sorted(p.stem for p in pairs)
    test = sorted(random.Random(ISIC_TEST_SEED).sample(stems, test_size))
    held = set(test)
    val_dir = base / "val"
    val = find_pairs(val_dir / "images", val_dir / "masks") if val_dir.is_dir() else []
    return SourceSplit("isic2017", _by_stem(pairs, [s for s in stems if s not in held]), tuple(val),
                       _by_stem(pairs, test))


def default_sources(data_root: str | os.PathLike[str]) -> dict[str, SourceSplit]:
    """The default model's sources under a data folder holding ``ph2/`` and ``isic2017/``."""
    root = Path(data_root)
    return {"ph2": split_ph2(root / "ph2"), "isic2017": split_isic(root / "isic2017")}


def epoch_indices(
    sizes: Mapping[str, int], shares: Mapping[str, float], epoch_size: int, seed: int, epoch: int
) -> np.ndarray:
    """One epoch's draw of sample indices over sources stacked in ``sizes``' order.

    Source ``s`` gets ``round(shares[s] * epoch_size)`` samples (shares are normalised; what
    rounding adds or leaves goes to the largest share). Within a source, images are taken without
    replacement in a shuffled order, cycling when the source has fewer images than its share,
    so every image of a source is seen equally often. The draw depends only on
    ``(seed, epoch)``: every process of a distributed run computes the same plan and takes its
    own slice of it.
    """
    names = list(sizes)
    if set(shares) - set(names):
        raise ValueError(f"shares name unknown sources: {sorted(set(shares) - set(names))}")
    weights = np.array([max(0.0, float(shares.get(n, 0.0))) for n in names])
    if weights.sum() <= 0 or epoch_size < 1:
        raise ValueError("at least one source needs a positive share, and the epoch at least one sample")
    counts = np.rint(weights / weights.sum() * epoch_size).astype(int)
    counts[int(np.argmax(weights))] += epoch_size - counts.sum()
    rng = np.random.default_rng([seed, epoch])
    offset, chosen = 0, []
    for name, count in zip(names, counts, strict=True):
        n = sizes[name]
        if count and n == 0:
            raise ValueError(f"source {name!r} has a share but no images")
        cycles = [rng.permutation(n) for _ in range(-(-count // n))] if count else []
        chosen.append(offset + np.concatenate(cycles)[:count] if cycles else np.zeros(0, int))
        offset += n
    plan = np.concatenate(chosen)
    return plan[rng.permutation(len(plan))]
