"""The default model's data plan: fixed splits that never leak, and the mixed-source epoch draw."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.core.sources import (
    ISIC_TEST_SIZE,
    epoch_indices,
    split_isic,
    split_ph2,
)


def _pairs(folder: Path, stems: list[str]) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    pixel = np.zeros((4, 4, 3), np.uint8)
    for stem in stems:
        Image.fromarray(pixel).save(folder / "images" / f"{stem}.png")
        Image.fromarray(pixel[..., 0]).save(folder / "masks" / f"{stem}.png")


def _ph2(root: Path) -> Path:
    stems = [f"IMD{i:03d}" for i in range(160)]
    _pairs(root / "ph2", stems)
    with open(root / "ph2" / "classes.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "diagnosis"])
        for i, stem in enumerate(stems):
            writer.writerow([stem, ("common_nevus", "atypical_nevus", "melanoma", "common_nevus", "atypical_nevus")[i % 5]])
    return root / "ph2"


def test_ph2_split_is_stratified_disjoint_and_fixed(tmp_path):
    split = split_ph2(_ph2(tmp_path))
    train, val, test = (set(split.stems(r)) for r in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (103, 25, 32)
    assert not (train & val or train & test or val & test)
    assert split_ph2(tmp_path / "ph2").stems("test") == split.stems("test")
    # stratified: melanomas are a fifth of PH2 here and a fifth of the test split
    melanomas = {f"IMD{i:03d}" for i in range(160) if i % 5 == 2}
    assert len(test & melanomas) == round(0.2 * len(melanomas))


def test_isic_test_draw_is_fixed_and_never_trained_on(tmp_path):
    stems = [f"isic17_train_{i:04d}" for i in range(ISIC_TEST_SIZE + 50)]
    _pairs(tmp_path / "isic2017" / "train", stems)
    _pairs(tmp_path / "isic2017" / "val", ["isic17_val_0000", "isic17_val_0001"])
    split = split_isic(tmp_path / "isic2017")
    assert len(split.test) == ISIC_TEST_SIZE and len(split.train) == 50 and len(split.val) == 2
    assert not set(split.stems("train")) & set(split.stems("test"))
    again = split_isic(tmp_path / "isic2017")
    assert again.stems("test") == split.stems("test")


def test_epoch_gives_each_source_its_share():
    plan = epoch_indices({"ph2": 10, "isic": 90}, {"ph2": 0.25, "isic": 0.75}, 200, seed=0, epoch=0)
    assert len(plan) == 200
    assert int((plan < 10).sum()) == 50
    # PH2 cycles: each of its 10 images five times, none more often than another
    assert np.bincount(plan[plan < 10], minlength=10).tolist() == [5] * 10
    # ISIC (150 draws of 90): each image once or twice
    counts = np.bincount(plan[plan >= 10] - 10, minlength=90)
    assert counts.min() >= 1 and counts.max() <= 2


def test_epoch_plan_depends_only_on_seed_and_epoch():
    args = ({"a": 7, "b": 5}, {"a": 7 / 12, "b": 5 / 12}, 12)
    first = epoch_indices(*args, seed=3, epoch=1)
    assert np.array_equal(first, epoch_indices(*args, seed=3, epoch=1))
    assert not np.array_equal(first, epoch_indices(*args, seed=3, epoch=2))
    assert sorted(first.tolist()) == list(range(12))  # shares equal to sizes: a permutation


def test_epoch_plan_refuses_unusable_shares():
    with pytest.raises(ValueError, match="unknown sources"):
        epoch_indices({"a": 3}, {"b": 1.0}, 4, 0, 0)
    with pytest.raises(ValueError, match="positive share"):
        epoch_indices({"a": 3}, {"a": 0.0}, 4, 0, 0)
    with pytest.raises(ValueError, match="no images"):
        epoch_indices({"a": 3, "b": 0}, {"a": 1.0, "b": 1.0}, 4, 0, 0)
