"""How long a project of many images takes to open, and what one change costs at that size.

Builds a project of N copies of one tiny image in a temporary folder (masks for a tenth of them,
as if reviewed in another tool), then prints: the first open (every row created), a reopen (the
records read back: the queue is usable), a reopen after every image was predicted and a tenth
reviewed, the first open of the same images with a ``state.json`` of the previous version (the
migration), and the mean time of one commit_prediction and one review at that size. With
``--widget``, also the open in the real viewer: from the NevSeg dock's ``open_project`` to the
queue table holding every row, the first image and its mask on screen and the event loop free
again (the model already loaded; the prediction of the unreviewed images then runs behind).

    PYTHONPATH=. python benchmarks/project_scale.py [--images 20000]
    PYTHONPATH=. xvfb-run -a python benchmarks/project_scale.py --widget
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _qt_loop import wait_until  # benchmarks/ is on sys.path when a script here runs
from PIL import Image

from napari_nevseg.core.fs_kind import mount_type
from napari_nevseg.core.project import Project


def _build(root: Path, n: int) -> None:
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(images / "img000000.png")
    picture = (images / "img000000.png").read_bytes()
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask).save(masks / "img000000.png")
    mask_bytes = (masks / "img000000.png").read_bytes()
    for i in range(1, n):
        (images / f"img{i:06d}.png").write_bytes(picture)
        if i % 10 == 0:
            (masks / f"img{i:06d}.png").write_bytes(mask_bytes)


def _legacy_copy(root: Path, target: Path) -> None:
    """The same images with a state.json as the previous version wrote it (every image predicted)."""
    (target / "images").mkdir(parents=True)
    names = sorted(p.name for p in (root / "images").iterdir())
    for name in names:
        os.link(root / "images" / name, target / "images" / name)
    images = [{"stem": n[:-4], "file": n, "status": "predicted", "model_version": "default", "uncertainty": 0.5,
               "dice_prediction_vs_final": None, "predicted_at": "2026-01-01T00:00:00+00:00", "reviewed_at": None}
              for n in names]
    state = {"format": "napari-nevseg-project", "version": 1, "saved_at": "2026-01-01T00:00:00+00:00",
             "pixel_size_mm": None, "validation": [], "rounds": [], "images": images}
    (target / "nevseg").mkdir()
    (target / "nevseg" / "state.json").write_text(json.dumps(state, indent=1))


def _timed_open(root: Path) -> tuple[float, Project]:
    started = time.perf_counter()
    project = Project.open(root)
    return time.perf_counter() - started, project


def _widget_open(root: Path) -> float:
    """Seconds from the dock's open_project to a usable queue, in a new viewer whose model and
    one-off warm-ups are done (as when a clinician opens a folder in napari already running)."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_nevseg.widgets.main_widget import NevsegWidget

    viewer = napari.Viewer()
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")

    wait = partial(wait_until, timeout=600.0, poll_ms=20)

    wait(lambda: widget.controller.session is not None and widget.training_ready())
    started = time.perf_counter()
    widget.open_project(root)
    QApplication.processEvents()  # the queue paints, the layers draw
    seconds = time.perf_counter() - started
    assert widget.review.queue.rowCount() == len(widget.controller.project.records), "queue not filled"
    assert widget.controller.current_stem is not None, "no image on screen"
    widget.teardown()  # stops the prediction of the unreviewed images that the open started
    viewer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=200, help="reviews timed for the per-change cost")
    parser.add_argument("--dir", default=None, help="where to build the project (default: the temp folder)")
    parser.add_argument("--widget", action="store_true", help="also time the open in the real viewer (needs a display)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nevseg-scale-", dir=args.dir))
    try:
        root = tmp / "project"
        _build(root, args.images)
        if args.widget:
            _build(tmp / "small", 20)
            cold = _widget_open(tmp / "small")  # napari's one-offs: the process's first image layer
            opens = [_widget_open(root) for _ in range(3)]
            print(f"widget, open_project to a usable queue: a 20-image project in a fresh process (napari's "
                  f"first image layer) {cold:.2f} s; then {args.images:,} images: first open (rows "
                  f"created) {opens[0]:.2f} s, reopens {', '.join(f'{t:.2f}' for t in opens[1:])} s")
            shutil.rmtree(root / "nevseg")  # the core timings below start from a fresh project
        first, project = _timed_open(root)
        project.close()
        again, project = _timed_open(root)
        print(f"{len(project.records)} images ({project.counts()['accepted']} with masks from outside) in {tmp}, "
              f"file system {mount_type(tmp)}, journal {project.store.journal_mode}")
        print(f"first open (rows created): {first:.2f} s")
        print(f"reopen to a usable record set: {again:.2f} s")
        stems = [s for s, r in project.records.items() if not r.status.decided]
        mask = np.zeros((8, 8), bool)
        mask[1:5, 1:5] = True
        project.write_prediction_file(stems[0], mask)
        for stem in stems[1:]:  # the file of every prediction (a worker's job), untimed
            shutil.copyfile(project.prediction_path(stems[0]), project.prediction_path(stem))
        commits = []
        for stem in stems:
            started = time.perf_counter()
            project.commit_prediction(stem, "default", 0.5, "0" * 64)
            commits.append(time.perf_counter() - started)
        reviews = []
        for stem in stems[: args.changes]:
            started = time.perf_counter()
            project.review(stem, mask)
            reviews.append(time.perf_counter() - started)
        project.close()
        predicted, project = _timed_open(root)
        project.close()
        print(f"reopen after {len(commits)} predictions and {len(reviews)} reviews: {predicted:.2f} s")
        _legacy_copy(root, tmp / "legacy")
        migrated, project = _timed_open(tmp / "legacy")
        project.close()
        print(f"first open of the same images with a state.json of the previous version (migration): "
              f"{migrated:.2f} s")
        print(f"commit_prediction: mean {1000 * statistics.fmean(commits):.2f} ms, "
              f"p99 {1000 * sorted(commits)[int(0.99 * len(commits))]:.2f} ms ({len(commits)} changes)")
        print(f"review (mask, history copy, row): mean {1000 * statistics.fmean(reviews):.2f} ms "
              f"({len(reviews)} changes)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
