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


# -- mixed-source epochs in training ------------------------------------------------------------

WORK = (32, 48)


def _two_sources(make_blob):
    import torch  # noqa: F401  (training needs it; the split tests above do not)

    from napari_nevseg.core.training import TrainingSet, make_training_set

    small = make_training_set([(f"a{i}", *make_blob(40, 60, seed=i)) for i in range(2)], WORK)
    large = make_training_set([(f"b{i}", *make_blob(40, 60, seed=50 + i)) for i in range(6)], WORK)
    return TrainingSet.concat({"small": small, "large": large})


def _config(**kw):
    from napari_nevseg.core.training import TrainConfig

    base = dict(arch="unet", arch_params={"width": 4, "depth": 2, "norm": "batch"}, work_size=WORK, epochs=2,
                batch_size=4, device="cpu", seed=1, lr=1e-2, source_shares={"small": 0.5, "large": 0.5},
                epoch_size=8)
    return TrainConfig(**{**base, **kw})


def test_concat_labels_every_image_with_its_source(make_blob):
    both = _two_sources(make_blob)
    assert len(both) == 8 and both.sources == ["small"] * 2 + ["large"] * 6
    assert {k: v.tolist() for k, v in both.source_indices().items()} == {"small": [0, 1], "large": [2, 3, 4, 5, 6, 7]}


def test_training_draws_each_source_at_its_share(make_blob, monkeypatch):
    from napari_nevseg.core.training import steps, train

    both = _two_sources(make_blob)
    seen: list[int] = []
    real_step = steps.train_step

    def recording(run, train_set, idx):
        seen.extend(idx.tolist())
        return real_step(run, train_set, idx)

    monkeypatch.setattr(steps, "train_step", recording)
    gen = train(both, None, _config())
    total = next(gen).total_steps
    for _ in gen:
        pass
    assert total == 2 * 2  # two epochs of 8 samples at batch 4
    # half the 16 draws from the 2 'small' images (each 4 times), half from the 6 'large' ones
    assert sum(i < 2 for i in seen) == 8 and np.bincount(seen, minlength=8)[:2].tolist() == [4, 4]


def test_mixed_source_run_is_resumable(make_blob, tmp_path):
    from napari_nevseg.core.training import Checkpointing, train

    both = _two_sources(make_blob)

    def finish(gen):
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    whole = finish(train(both, None, _config(epochs=3)))
    ckpt = Checkpointing(tmp_path / "m.resume", every=1)
    gen = train(both, None, _config(epochs=3), checkpoint=ckpt)
    for progress in gen:
        if progress.epoch == 2 and progress.epoch_loss is not None:
            gen.close()
            break
    resumed = finish(train(both, None, _config(epochs=3), checkpoint=Checkpointing(ckpt.path, 1, resume=True)))
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) <= 1e-6
    assert whole.metadata["training"]["sources"] == {"small": 2, "large": 6}


def test_recipe_trains_on_both_sources_and_never_on_a_test_image(tmp_path, make_blob, capsys):
    """``nevseg train --recipe default`` over a data folder laid out as ../shared/data."""
    from napari_nevseg.cli import main
    from napari_nevseg.core.checkpoint import read_metadata

    root = tmp_path / "data"
    _ph2(root)
    rgb, mask = make_blob(24, 32, seed=0)
    for folder, count in ((root / "isic2017" / "train", ISIC_TEST_SIZE + 10), (root / "isic2017" / "val", 3)):
        for sub in ("images", "masks"):
            (folder / sub).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rgb).save(folder / "images" / f"{folder.name}_{i:04d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{folder.name}_{i:04d}.png")
    out = tmp_path / "m.safetensors"
    code = main(["train", "--recipe", "default", "--data", str(root), "--init", "none", "--epochs", "1",
                 "--epoch-size", "8", "--batch-size", "4", "--work-size", "48x32", "--channels", "4,8",
                 "--ph2-share", "0.5", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    training = read_metadata(out)["training"]
    assert training["sources"] == {"ph2": 103, "isic2017": 10}
    assert len(training["test_images"]) == 32 + ISIC_TEST_SIZE
    assert not set(training["test_images"]) & set(training["train_images"] + training["val_images"])
    assert training["config"]["source_shares"] == {"ph2": 0.5, "isic2017": 0.5}
    assert main(["train", "--recipe", "default", "--out", str(out)]) == 2
    assert "--data" in capsys.readouterr().err
