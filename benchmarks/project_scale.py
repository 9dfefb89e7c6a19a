"""How long a project of many images takes to open, and what one change costs at that size.

Builds a project of N copies of one tiny image in a temporary folder (masks for a tenth of them,
as if reviewed in another tool), then prints: the first open (every row created), a reopen (the
records read back: the queue is usable), a reopen after every image was predicted and a tenth
reviewed, and the mean time of one commit_prediction and one review at that size.

    PYTHONPATH=. python benchmarks/project_scale.py [--images 20000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
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


def _timed_open(root: Path) -> tuple[float, Project]:
    started = time.perf_counter()
    project = Project.open(root)
    return time.perf_counter() - started, project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=200, help="reviews timed for the per-change cost")
    parser.add_argument("--dir", default=None, help="where to build the project (default: the temp folder)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nevseg-scale-", dir=args.dir))
    try:
        root = tmp / "project"
        _build(root, args.images)
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
        print(f"commit_prediction: mean {1000 * statistics.fmean(commits):.2f} ms, "
              f"p99 {1000 * sorted(commits)[int(0.99 * len(commits))]:.2f} ms ({len(commits)} changes)")
        print(f"review (mask, history copy, row): mean {1000 * statistics.fmean(reviews):.2f} ms "
              f"({len(reviews)} changes)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
