"""Crash safety: a writer killed at random moments never leaves a half-written file, and the
project database it was accepting masks into reopens consistent: every committed row's mask file
exists and holds what the row says."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.core.atomic import atomic_write_bytes, atomic_write_text

KILLS = 30

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from napari_nevseg.core.atomic import atomic_write_bytes
    from napari_nevseg.core.project import Project

    target, project_dir = Path(sys.argv[1]), Path(sys.argv[2])
    payloads = [Path(sys.argv[3]).read_bytes(), Path(sys.argv[4]).read_bytes()]
    masks = [np.load(sys.argv[5]), np.load(sys.argv[6])]
    project = Project.open(project_dir)
    i = 0
    while True:
        atomic_write_bytes(target, payloads[i % 2])
        project.review("case0", masks[i % 2])
        if i == 1:
            print("running", flush=True)
        i += 1
    """
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"a" * 1000)
    atomic_write_text(target, "short")
    assert target.read_text() == "short"
    assert os.listdir(tmp_path) == ["f.bin"]


def _check_consistent(project, masks) -> None:
    from napari_nevseg.core.history import file_stamp

    conn = project.store.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    mask = project.read_mask("case0")
    assert mask is not None and project.records["case0"].status.reviewed
    assert np.array_equal(mask, masks[0]) or np.array_equal(mask, masks[1])
    row_stamp = conn.execute("SELECT mask_stamp FROM images WHERE stem = 'case0'").fetchone()[0]
    assert row_stamp == file_stamp(project.mask_path("case0"))  # the row knows the file on disk
    versions = project.history("case0")
    assert all(v.path.is_file() for v in versions)  # no committed version without its file
    if project.audit("case0")[-1]["action"] != "mask newer than its record":  # killed between file and row
        assert versions[0].path.read_bytes() == project.mask_path("case0").read_bytes()


@pytest.mark.slow
def test_sigkill_never_leaves_a_partial_file(tmp_path, project_dir):
    from napari_nevseg.core.project import Project

    rng = np.random.default_rng(0)
    # two large, different payloads (several MB: a write takes long enough to be interrupted)
    a = rng.integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    b = rng.integers(0, 256, 5_000_000, dtype=np.uint8).tobytes()
    (tmp_path / "a.bin").write_bytes(a)
    (tmp_path / "b.bin").write_bytes(b)
    h, w = np.asarray(Image.open(project_dir / "images" / "case0.png")).shape[:2]
    masks = [np.zeros((h, w), bool), np.zeros((h, w), bool)]
    masks[0][: h // 2] = True
    masks[1][:, : w // 3] = True
    np.save(tmp_path / "m0.npy", masks[0])
    np.save(tmp_path / "m1.npy", masks[1])
    Project.open(project_dir).close()  # the state exists before the writer starts
    target = tmp_path / "target.bin"
    atomic_write_bytes(target, a)
    args = [sys.executable, "-c", WRITER, str(target), str(project_dir), str(tmp_path / "a.bin"),
            str(tmp_path / "b.bin"), str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy")]
    chooser = random.Random(1)
    outcomes = set()
    for _ in range(KILLS):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = proc.stdout.readline()
            assert line.strip() == b"running", proc.stderr.read().decode()
            time.sleep(chooser.uniform(0.0, 0.15))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            proc.stdout.close()
            proc.stderr.close()
        data = target.read_bytes()
        assert data == a or data == b, f"partial file: {len(data)} bytes"
        outcomes.add(data == a)
        with Project.open(project_dir) as project:
            _check_consistent(project, masks)
    assert outcomes == {True, False}, "the kills should land at different moments"
