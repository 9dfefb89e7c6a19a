"""The SQLite project store: migration from state.json, history and restore, statuses, audit,
effort, the lock between processes, reconciling with the folder, O(1) changes, export."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.core.errors import MaskError, NevsegError, ProjectInUseError
from napari_nevseg.core.project import STATE_DIR, Effort, Project, Status
from tests.legacy import project_v1


def _mask(project, stem: str, shift: int = 0) -> np.ndarray:
    h, w = project.read_image(stem).shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 4 + shift : w // 2 + shift] = True
    return mask


def _db(project_dir):
    return sqlite3.connect(project_dir / STATE_DIR / "project.sqlite")


# -- migration from the state.json of the previous version ---------------------------------------
def _legacy_project(project_dir):
    """A project made and worked on by the code of commit 5d8b90b (tests/legacy/project_v1.py)."""
    (project_dir / "masks").mkdir()
    h, w = np.asarray(Image.open(project_dir / "images" / "case5.png")).shape[:2]
    Image.fromarray(np.full((h, w), 255, np.uint8)).save(project_dir / "masks" / "case5.png")
    old = project_v1.Project.open(project_dir)  # case5: accepted (a mask was there)
    old.record_prediction("case1", _mask(old, "case1"), "default", 0.31)
    old.review("case1", _mask(old, "case1", shift=2))  # corrected, Dice < 1
    old.record_prediction("case2", _mask(old, "case2"), "default", 0.12)
    old.review("case2", _mask(old, "case2"))  # accepted, Dice 1
    old.record_prediction("case3", _mask(old, "case3"), "v1", 0.77)  # predicted only
    old.ensure_validation(fraction=0.5)
    old.add_round({"version": "v1", "parent": "default", "train_images": ["case1"], "val_dice_after": 0.8})
    old.pixel_size_mm = 0.0125
    old.save()
    return old


def test_state_json_of_the_previous_version_migrates_without_loss(project_dir):
    old = _legacy_project(project_dir)
    state_file = project_dir / STATE_DIR / "state.json"
    original = state_file.read_bytes()
    project = Project.open(project_dir)
    assert not state_file.exists()
    assert (project_dir / STATE_DIR / "state.json.migrated").read_bytes() == original  # kept as it was
    assert list(project.records) == list(old.records)
    for stem, before in old.records.items():
        after = project.records[stem]
        for name in before.__dataclass_fields__:
            assert getattr(after, name) == getattr(before, name), (stem, name)
    assert project.validation == old.validation and project.validation
    assert project.rounds == old.rounds
    assert project.pixel_size_mm == 0.0125
    assert project.training_stems() == old.training_stems()
    assert project.correction_dice_by_version() == old.correction_dice_by_version()
    assert project.audit()[0]["action"] == "migrated from state.json"
    project.close()
    # and it stays migrated: the next open reads the database, not the old file
    again = Project.open(project_dir)
    assert again.records == project.records and again.rounds == old.rounds
    assert not state_file.exists() and not (project_dir / STATE_DIR / "state.json.migrated.1").exists()


def test_migrated_masks_are_kept_before_a_new_review(project_dir):
    old = _legacy_project(project_dir)
    corrected = old.read_mask("case1")
    project = Project.open(project_dir)
    project.review("case1", ~corrected)
    versions = project.history("case1")
    assert [v.action for v in versions] == ["review", "found on disk"]
    np.testing.assert_array_equal(project.restore("case1", versions[1].id), corrected)


# -- history, restore, statuses, audit, effort -------------------------------------------------
def test_every_mask_version_is_kept_and_restorable(project_dir):
    project = Project.open(project_dir)
    first, second = _mask(project, "case0"), _mask(project, "case0", shift=4)
    project.review("case0", first)
    project.review("case0", second)  # e.g. an accidental stroke saved
    versions = project.history("case0")
    assert [v.action for v in versions] == ["review", "review"] and versions[0].id > versions[1].id
    assert all(v.path.is_file() for v in versions)
    restored = project.restore("case0", versions[1].id, user="dr b")
    np.testing.assert_array_equal(restored, first)
    np.testing.assert_array_equal(project.read_mask("case0"), first)
    again = Project.open(project_dir)
    latest = again.history("case0")
    assert len(latest) == 3 and latest[0].action == f"restore of version {versions[1].id}"
    assert latest[0].user == "dr b" and again.records["case0"].reviewed_by == "dr b"
    with pytest.raises(MaskError, match="no stored mask version 999"):
        project.restore("case0", 999)


def test_no_lesion_unusable_and_second_opinion(project_dir):
    project = Project.open(project_dir)
    for stem in ("case0", "case1", "case2", "case3"):
        project.review(stem, _mask(project, stem))
    project.set_status("case1", Status.NO_LESION)
    project.set_status("case2", Status.UNUSABLE)
    project.set_status("case3", "second_opinion")
    assert not project.read_mask("case1").any()  # no lesion: an empty mask, still training data
    assert project.read_mask("case2").any() and project.read_mask("case3").any()  # masks untouched
    assert project.training_stems() == ["case0", "case1"]
    assert Project.open(project_dir).training_stems() == ["case0", "case1"]
    with pytest.raises(MaskError, match="no mask in masks/"):
        project.set_status("case4", Status.ACCEPTED)
    assert project.records["case4"].status is Status.UNREVIEWED


def test_audit_records_who_and_when(project_dir):
    project = Project.open(project_dir)
    assert project.user  # the operating-system user by default
    os_user = project.user
    project.review("case0", _mask(project, "case0"))
    project.user = "Dr. Ana"
    project.review("case1", _mask(project, "case1"))
    project.set_status("case2", Status.SECOND_OPINION)
    trail = Project.open(project_dir).audit()
    assert [(e["user"], e["stem"], e["action"]) for e in trail] == [
        (os_user, "case0", "review"), ("Dr. Ana", "case1", "review"), ("Dr. Ana", "case2", "marked second_opinion")]
    assert all(e["at"].endswith("+00:00") for e in trail)
    assert project.records["case1"].reviewed_by == "Dr. Ana"
    assert project.audit("case2")[0]["detail"]["was"] == "unreviewed"


def test_effort_is_summed_per_image(project_dir, tmp_path):
    project = Project.open(project_dir)
    project.review("case0", _mask(project, "case0"), effort=Effort(seconds=12.5, strokes=3, clicks=1))
    project.review("case0", _mask(project, "case0", 1), effort=Effort(seconds=4.0, strokes=1, clicks=2))
    project.set_status("case0", Status.SECOND_OPINION, effort=Effort(seconds=1.5))
    assert project.records["case0"].effort == Effort(18.0, 4, 3)
    assert Project.open(project_dir).records["case0"].effort == Effort(18.0, 4, 3)
    rows = list(csv.DictReader(project.export(tmp_path / "state.csv").read_text().splitlines()))
    row = next(r for r in rows if r["stem"] == "case0")
    assert (row["effort_seconds"], row["effort_strokes"], row["effort_clicks"]) == ("18.0", "4", "3")
    assert row["status"] == "second_opinion" and row["mask_versions"] == "2" and len(rows) == 6


def test_json_export_holds_everything(project_dir, tmp_path):
    project = Project.open(project_dir)
    project.record_prediction("case1", _mask(project, "case1"), "default", 0.2, model_hash="f00d")
    project.review("case1", _mask(project, "case1"))
    data = json.loads(project.export(tmp_path / "state.json").read_text())
    case1 = next(r for r in data["images"] if r["stem"] == "case1")
    assert case1["status"] == "accepted" and case1["model_hash"] == "f00d"
    assert data["audit"][-1]["action"] == "review" and len(data["images"]) == 6


# -- two processes ----------------------------------------------------------------------------------
OPENER = textwrap.dedent(
    """
    import sys
    from napari_nevseg.core.errors import ProjectInUseError
    from napari_nevseg.core.project import Project
    try:
        Project.open(sys.argv[1])
    except ProjectInUseError as exc:
        print("in use:", exc)
    else:
        print("opened")
    """
)


def _open_elsewhere(project_dir) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", OPENER, str(project_dir)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_second_process_is_told_the_project_is_in_use(project_dir):
    project = Project.open(project_dir)
    again = Project.open(project_dir)  # the same process may open it again (the widget does)
    answer = _open_elsewhere(project_dir)
    assert answer.startswith("in use:") and f"pid {os.getpid()}" in answer and "close the project there" in answer
    again.close()
    assert _open_elsewhere(project_dir).startswith("in use:")  # still held by `project`
    project.close()
    assert _open_elsewhere(project_dir) == "opened"
    with pytest.raises(ProjectInUseError):  # the class is importable from the project module
        raise ProjectInUseError("x")


# -- reconciling with the folder on open ------------------------------------------------------------
def test_a_deleted_mask_sends_its_image_back_to_the_queue(project_dir):
    project = Project.open(project_dir)
    project.record_prediction("case2", _mask(project, "case2"), "default", 0.4)
    project.review("case2", _mask(project, "case2", shift=3))
    project.close()
    (project_dir / "masks" / "case2.png").unlink()
    again = Project.open(project_dir)
    assert again.records["case2"].status is Status.PREDICTED
    assert "case2" not in again.training_stems()
    assert again.audit("case2")[-1]["action"] == "mask file missing"
    again.restore("case2", again.history("case2")[0].id)  # the last version is still there
    assert again.read_mask("case2").sum() == _mask(project, "case2", shift=3).sum()


def test_a_mask_changed_outside_counts_as_accepted(project_dir):
    project = Project.open(project_dir)
    project.record_prediction("case3", _mask(project, "case3"), "default", 0.4)
    project.review("case3", _mask(project, "case3", shift=3))
    assert project.records["case3"].status is Status.CORRECTED
    project.close()
    path = project_dir / "masks" / "case3.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched only: no change
    assert Project.open(project_dir).records["case3"].status is Status.CORRECTED
    h, w = _mask(project, "case3").shape
    Image.fromarray(np.full((h, w), 255, np.uint8)).save(path)  # edited in another program
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    again = Project.open(project_dir)
    record = again.records["case3"]
    assert record.status is Status.ACCEPTED and record.dice_prediction_vs_final is None
    assert again.audit("case3")[-1]["action"] == "mask newer than its record"
    assert Project.open(project_dir).audit("case3") == again.audit("case3")  # recorded once
    again.review("case3", _mask(project, "case3"))  # the outside version is kept before overwriting
    assert [v.action for v in again.history("case3")] == ["review", "found on disk", "review"]


# -- O(1) per change ----------------------------------------------------------------------------------
def _project_of(tmp_path, n: int) -> Project:
    images = tmp_path / f"p{n}" / "images"
    images.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / "img00000.png")
    data = (images / "img00000.png").read_bytes()
    for i in range(1, n):
        (images / f"img{i:05d}.png").write_bytes(data)
    return Project.open(tmp_path / f"p{n}")


def _statements(project: Project, change) -> list[str]:
    seen: list[str] = []
    project.store.trace(seen.append)
    try:
        change()
    finally:
        project.store.trace(None)
    return seen


@pytest.mark.slow
def test_statements_per_change_do_not_grow_with_the_project(tmp_path):
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    counts = []
    for n in (200, 2000):
        project = _project_of(tmp_path, n)
        stem = f"img{n // 2:05d}"
        project.write_prediction_file(stem, mask)
        predicted = _statements(project, lambda p=project, s=stem: p.commit_prediction(s, "default", 0.2, "ab"))
        reviewed = _statements(project, lambda p=project, s=stem: p.review(s, mask))
        counts.append((len(predicted), len(reviewed)))
        assert predicted[0].startswith("BEGIN") and predicted[-1] == "COMMIT"
        assert sum(s.startswith("UPDATE") for s in predicted) == 1
        project.close()
    assert counts[0] == counts[1]


def test_network_file_systems_use_the_rollback_journal(project_dir, monkeypatch):
    import napari_nevseg.core.project as project_module

    Project.open(project_dir).close()
    with closing(_db(project_dir)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.setattr(project_module, "network_fs_type", lambda _path: "nfs4")
    project = Project.open(project_dir)
    assert project.store.journal_mode == "DELETE"
    assert project.store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_database_of_a_newer_version_is_not_touched(project_dir):
    Project.open(project_dir).close()
    with closing(_db(project_dir)) as conn, conn:
        conn.execute("UPDATE settings SET value = '99' WHERE key = 'schema'")
    with pytest.raises(NevsegError, match="newer napari-nevseg"):
        Project.open(project_dir)
    code = f"from napari_nevseg.core.project import Project\ntry:\n    Project.open({str(project_dir)!r})\n" \
           "except Exception as exc:\n    print(type(exc).__name__)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.strip() == "NevsegError"  # not ProjectInUseError: the refusal freed the lock
