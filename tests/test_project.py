"""Project folders: opening, predictions, review, state on disk, the fixed validation pool."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.core.errors import NevsegError, NoPairsError
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.project import STATE_DIR, Project, Status


def _mask_like(project: Project, stem: str, shift: int = 0) -> np.ndarray:
    h, w = project.read_image(stem).shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 4 + shift : w // 2 + shift] = True
    return mask


def test_open_new_project(project_dir):
    project = Project.open(project_dir)
    assert project.stems == [f"case{i}" for i in range(6)]
    assert all(r.status is Status.UNREVIEWED for r in project.records.values())
    assert not (project_dir / STATE_DIR / "state.json").exists()
    assert (project_dir / STATE_DIR / "README.txt").read_text().startswith("napari-nevseg project state")
    assert "project.sqlite" in (project_dir / STATE_DIR / "README.txt").read_text()
    with sqlite3.connect(project_dir / STATE_DIR / "project.sqlite") as conn:
        rows = conn.execute("SELECT stem, status FROM images ORDER BY stem").fetchall()
    assert rows == [(f"case{i}", "unreviewed") for i in range(6)]
    assert project.counts() == {"unreviewed": 6, "predicted": 0, "corrected": 0, "accepted": 0,
                                "no_lesion": 0, "unusable": 0, "second_opinion": 0}
    assert project.training_stems() == []


def test_existing_masks_count_as_accepted(project_dir):
    (project_dir / "masks").mkdir()
    for stem in ("case1", "case4"):
        h, w = np.asarray(Image.open(project_dir / "images" / f"{stem}.png")).shape[:2]
        Image.fromarray(np.full((h, w), 255, np.uint8)).save(project_dir / "masks" / f"{stem}.png")
    project = Project.open(project_dir)
    assert project.records["case1"].status is Status.ACCEPTED
    assert project.records["case4"].status is Status.ACCEPTED
    assert project.records["case0"].status is Status.UNREVIEWED
    assert project.training_stems() == ["case1", "case4"]
    assert project.records["case1"].reviewed_at is not None


def test_not_a_project(tmp_path):
    with pytest.raises(NoPairsError, match="not a folder"):
        Project.open(tmp_path / "missing")
    with pytest.raises(NoPairsError, match="no images/ folder"):
        Project.open(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(NoPairsError, match="holds no images"):
        Project.open(tmp_path)


def test_record_prediction_and_review(project_dir):
    project = Project.open(project_dir)
    predicted = _mask_like(project, "case2")
    project.record_prediction("case2", predicted, "v1", 0.12)
    record = project.records["case2"]
    assert record.status is Status.PREDICTED and record.model_version == "v1"
    assert record.uncertainty == pytest.approx(0.12) and record.predicted_at
    assert project.read_prediction("case2").sum() == predicted.sum()

    # accepting the prediction as it is
    accepted = project.review("case2", predicted.astype(np.uint8))  # label data, not bool
    assert accepted.status is Status.ACCEPTED
    assert accepted.dice_prediction_vs_final == 1.0
    with Image.open(project.mask_path("case2")) as im:
        arr = np.asarray(im)
    assert arr.shape == predicted.shape and arr.dtype == np.uint8
    assert set(np.unique(arr)) == {0, 255}
    np.testing.assert_array_equal(arr > 0, predicted)

    # correcting another one
    project.record_prediction("case3", _mask_like(project, "case3"), "v1", 0.3)
    corrected_mask = _mask_like(project, "case3", shift=3)
    corrected = project.review("case3", corrected_mask)
    assert corrected.status is Status.CORRECTED
    expected = round(dice(_mask_like(project, "case3"), corrected_mask), 5)
    assert corrected.dice_prediction_vs_final == pytest.approx(expected)
    assert 0 < corrected.dice_prediction_vs_final < 1

    # reviewed without any prediction: corrected, no Dice
    plain = project.review("case0", _mask_like(project, "case0"))
    assert plain.status is Status.CORRECTED and plain.dice_prediction_vs_final is None

    assert {k: v for k, v in project.counts().items() if v} == {"unreviewed": 3, "corrected": 2, "accepted": 1}
    assert project.correction_dice_by_version() == pytest.approx({"v1": (1.0 + expected) / 2})

    # a new prediction does not undo a review
    project.record_prediction("case2", ~predicted, "v2", 0.5)
    assert project.records["case2"].status is Status.ACCEPTED
    np.testing.assert_array_equal(project.read_mask("case2"), predicted)


def test_reopen_restores_state(project_dir):
    project = Project.open(project_dir)
    project.record_prediction("case1", _mask_like(project, "case1"), "v1", 0.2)
    project.review("case1", _mask_like(project, "case1", shift=2))
    project.record_prediction("case5", _mask_like(project, "case5"), "v1", 0.7)
    project.add_round({"version": "v2", "train_images": ["case1"]})
    project.pixel_size_mm = 0.01
    project.save()
    again = Project.open(project_dir)
    assert again.records == project.records
    assert again.rounds == project.rounds
    assert again.pixel_size_mm == 0.01
    assert again.records["case1"].status is Status.CORRECTED
    assert again.records["case5"].status is Status.PREDICTED
    np.testing.assert_array_equal(again.read_mask("case1"), _mask_like(project, "case1", shift=2))


def test_images_added_and_removed_between_sessions(project_dir):
    project = Project.open(project_dir)
    project.review("case0", _mask_like(project, "case0"))
    (project_dir / "images" / "case5.png").unlink()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(project_dir / "images" / "new.png")
    again = Project.open(project_dir)
    assert "case5" not in again.records and again.records["new"].status is Status.UNREVIEWED
    assert again.records["case0"].status is Status.CORRECTED


def test_corrupt_state_file(project_dir):
    """A damaged database, or a damaged state.json of an older version, is reported, not replaced."""
    Project.open(project_dir).close()
    (project_dir / STATE_DIR / "project.sqlite").write_bytes(b"{ half written" * 100)
    with pytest.raises(NevsegError, match="unreadable.*move it away"):
        Project.open(project_dir)
    (project_dir / STATE_DIR / "project.sqlite").unlink()
    (project_dir / STATE_DIR / "state.json").write_text("{ half written")
    with pytest.raises(NevsegError, match="state.json is unreadable.*move it away"):
        Project.open(project_dir)
    assert (project_dir / STATE_DIR / "state.json").read_text() == "{ half written"


def _review_all(project, stems):
    for stem in stems:
        project.review(stem, _mask_like(project, stem))


def test_validation_pool_is_fixed(project_dir):
    project = Project.open(project_dir)
    assert project.ensure_validation() == []  # nothing reviewed yet
    _review_all(project, ["case0", "case1", "case2", "case3", "case4"])
    pool = project.ensure_validation(fraction=0.2)
    assert len(pool) == 1 and pool[0] in project.training_stems()
    for _ in range(3):
        assert project.ensure_validation(fraction=0.2) == pool
    assert Project.open(project_dir).ensure_validation(fraction=0.2) == pool  # and across sessions
    # growing the reviewed set only adds to the pool
    _review_all(project, ["case5"])
    grown = project.ensure_validation(fraction=0.4)
    assert grown[: len(pool)] == pool and len(grown) == 2


def test_validation_never_takes_trained_images(project_dir):
    project = Project.open(project_dir)
    _review_all(project, ["case0", "case1"])
    pool = project.ensure_validation(fraction=0.5)
    trained = [s for s in ("case0", "case1") if s not in pool]
    project.add_round({"version": "v1", "train_images": trained})
    _review_all(project, ["case2", "case3", "case4", "case5"])
    grown = project.ensure_validation(fraction=0.5)
    assert len(grown) == 3
    assert not set(grown) & set(trained)
    assert set(pool) <= set(grown)
    # even when the fraction asks for more than the untrained images, trained ones never move
    everything = project.ensure_validation(fraction=0.99)
    assert not set(everything) & set(trained)
    assert len(project.training_stems()) - len(everything) >= 1


def test_validation_keeps_one_training_image(project_dir):
    project = Project.open(project_dir)
    _review_all(project, ["case0", "case1"])
    pool = project.ensure_validation(fraction=0.9, minimum=5)
    assert len(pool) == 1  # at least one image is left to train on


def test_validation_is_seeded(project_dir, tmp_path):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(project_dir, other)
    a, b = Project.open(project_dir), Project.open(other)
    stems = ["case0", "case1", "case2", "case3", "case4", "case5"]
    _review_all(a, stems)
    _review_all(b, stems)
    assert a.ensure_validation(0.5, seed=3) == b.ensure_validation(0.5, seed=3)


def test_review_refuses_a_mask_of_another_size(project_dir):
    from napari_nevseg.core.errors import MaskError

    project = Project.open(project_dir)
    h, w = project.read_image("case1").shape[:2]
    with pytest.raises(MaskError, match="exactly the size of its image"):
        project.review("case1", np.ones((h, w + 1), bool))
    assert not project.mask_path("case1").exists()
    assert project.records["case1"].status is Status.UNREVIEWED


def test_review_with_exif_rotated_image(tmp_path):
    images = tmp_path / "p" / "images"
    images.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "rot.jpg", exif=exif)
    project = Project.open(tmp_path / "p")
    assert project.read_image("rot").shape[:2] == (30, 20)
    assert project.image_shape("rot") == (30, 20)
    project.review("rot", np.ones((30, 20), bool))
    assert project.read_mask("rot", (30, 20)).all()


def test_prediction_file_then_commit(project_dir):
    """The file is written first (a worker can do it); the record changes only on commit."""
    project = Project.open(project_dir)
    predicted = _mask_like(project, "case1")
    path = project.write_prediction_file("case1", predicted)
    assert path == project.prediction_path("case1") and path.is_file()
    assert project.records["case1"].status is Status.UNREVIEWED
    record = project.commit_prediction("case1", "v2", 0.25, model_hash="abc123")
    assert record is project.records["case1"]
    assert (record.status, record.model_version, record.model_hash) == (Status.PREDICTED, "v2", "abc123")
    assert record.uncertainty == pytest.approx(0.25)
    np.testing.assert_array_equal(project.read_prediction("case1"), predicted)
    assert Project.open(project_dir).records["case1"].model_hash == "abc123"


def test_statuses_a_person_sets(project_dir):
    project = Project.open(project_dir)
    assert [s for s in Status if s.reviewed] == [Status.CORRECTED, Status.ACCEPTED, Status.NO_LESION]
    _review_all(project, ["case0", "case1", "case2"])
    project.set_status("case1", Status.UNUSABLE)
    project.set_status("case2", Status.SECOND_OPINION)
    # kept out of training although their masks are on disk
    assert project.mask_path("case1").exists() and project.mask_path("case2").exists()
    assert project.training_stems() == ["case0"]
    # a later prediction does not undo what a person decided
    project.record_prediction("case1", _mask_like(project, "case1"), "v1", 0.1)
    project.record_prediction("case2", _mask_like(project, "case2"), "v1", 0.1)
    again = Project.open(project_dir)
    assert again.records["case1"].status is Status.UNUSABLE
    assert again.records["case2"].status is Status.SECOND_OPINION
    assert again.training_stems() == ["case0"]
