"""(image, mask) pairs: finding them on disk, splitting them, and loading them for training."""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from napari_nevseg.core.errors import NoPairsError
from napari_nevseg.core.image_io import IMAGE_SUFFIXES, list_images, read_image, read_mask

__all__ = [
    "Pair",
    "find_pairs",
    "find_ph2_pairs",
    "read_strata",
    "stratified_split",
    "resize_rgb",
    "resize_mask",
    "load_pair",
]


@dataclass(frozen=True)
class Pair:
    """One image file and its mask file."""

    stem: str
    image: Path
    mask: Path


def find_pairs(images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str]) -> list[Pair]:
    """Pairs of ``images_dir/<stem>.<ext>`` and ``masks_dir/<stem>.<ext>`` (any image suffix).

    A mask may also be named ``<stem>_mask`` or ``<stem>_lesion``. Images without a mask are
    skipped; if nothing pairs up, :class:`NoPairsError` says what was looked for.
    """
    images = list_images(images_dir)
    if not Path(masks_dir).is_dir():
        raise NoPairsError(f"{masks_dir} is not a folder of masks")
    masks: dict[str, Path] = {}
    for mask in list_images(masks_dir):
        stem = mask.stem
        for suffix in ("_mask", "_lesion", "_segmentation"):
            stem = stem.removesuffix(suffix)
        masks.setdefault(stem, mask)
    pairs = [Pair(img.stem, img, masks[img.stem]) for img in images if img.stem in masks]
    if not pairs:
        raise NoPairsError(
            f"no image in {images_dir} has a mask of the same name in {masks_dir} "
            f"({len(images)} images, {len(masks)} masks; suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return pairs


def find_ph2_pairs(root: str | os.PathLike[str]) -> list[Pair]:
    """Pairs from the original PH2 tree: ``IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp`` and
    ``IMDxxx/IMDxxx_lesion/IMDxxx_lesion.bmp``."""
    base = Path(root)
    pairs = []
    for case in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        image = case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp"
        mask = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
        if image.is_file() and mask.is_file():
            pairs.append(Pair(case.name, image, mask))
    if not pairs:
        raise NoPairsError(
            f"no PH2 cases found under {root} (expected IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp)"
        )
    return pairs


def read_strata(csv_path: str | os.PathLike[str], column: str = "diagnosis") -> dict[str, str]:
    """``{stem: stratum}`` from a CSV whose first column is the image id (PH2 ``classes.csv``)."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or column not in rows[0]:
        raise NoPairsError(f"{csv_path} has no column {column!r}")
    key = next(iter(rows[0]))
    return {row[key]: row[column] for row in rows}


def stratified_split(
    stems: Sequence[str],
    fraction: float,
    seed: int,
    strata: dict[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Split ``stems`` into (rest, held_out) with ``fraction`` of each stratum held out.

    Deterministic for a given seed and set of stems (stems are sorted first), and at least one
    image stays on each side when there are two or more.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError("the validation fraction must be in [0, 1)")
    groups: dict[str, list[str]] = defaultdict(list)
    for stem in sorted(stems):
        groups[(strata or {}).get(stem, "all")].append(stem)
    rng = random.Random(seed)
    held: list[str] = []
    for name in sorted(groups):
        members = groups[name]
        rng.shuffle(members)
        held += members[: round(len(members) * fraction)]
    if fraction > 0 and not held and len(stems) >= 2:
        held = [sorted(stems)[rng.randrange(len(stems))]]
    held_set = set(held)
    rest = [s for s in sorted(stems) if s not in held_set]
    if not rest and held:
        rest.append(held.pop())
    return rest, sorted(held)


def resize_rgb(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of a uint8 RGB image to ``(H, W)`` (Pillow: fast, also for 48 MP)."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR, reducing_gap=2.0))


def resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to ``(H, W)`` as a float fraction-of-foreground map in [0, 1]."""
    h, w = size_hw
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((w, h), Image.BILINEAR, reducing_gap=2.0), dtype=np.float32) / 255.0


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Read one pair: ``(H, W, 3) uint8`` image and ``(H, W) bool`` mask of the same size."""
    image = read_image(pair.image)
    return image, read_mask(pair.mask, expected_shape=image.shape[:2])
