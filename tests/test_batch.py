"""Resumable `nevseg predict`: the run record, --overwrite, the failure log, --shard."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.cli import main
from napari_nevseg.core.batch import FAILURES_NAME, RECORD_NAME
from tests.cli_checks import stderr_line as _stderr_line


@pytest.fixture
def inputs(tmp_path, make_blob):
    """Five small pictures in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(make_blob(30 + 3 * i, 40, seed=10 + i)[0]).save(folder / f"case{i}.png")
    return folder


def _predict(src, out, model, *extra):
    return main(["predict", str(src), "--out", str(out), "--model", str(model), "--device", "cpu", *extra])


def _state(out):
    """Every file in ``out`` with its bytes and mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir())}


def test_second_run_writes_nothing(inputs, tmp_path, blob_model_file, capsys):
    out = tmp_path / "out"
    assert _predict(inputs, out, blob_model_file) == 0
    before = _state(out)
    assert set(before) == {f"case{i}.png" for i in range(5)} | {RECORD_NAME}
    capsys.readouterr()
    assert _predict(inputs, out, blob_model_file) == 0
    assert "nothing to predict: all 5 images" in capsys.readouterr().out
    assert _state(out) == before


def test_resume_predicts_only_the_missing(inputs, tmp_path, blob_model_file, capsys):
    out = tmp_path / "out"
    assert _predict(inputs, out, blob_model_file) == 0
    whole = _state(out)
    (out / "case1.png").unlink()
    (out / "case3.png").unlink()
    capsys.readouterr()
    assert _predict(inputs, out, blob_model_file) == 0
    stdout = capsys.readouterr().out
    assert "3 of 5 images already have their masks" in stdout and "predicted 2 of 2 images" in stdout
    after = _state(out)
    for name in ("case0.png", "case2.png", "case4.png", RECORD_NAME):
        assert after[name] == whole[name]  # untouched
    for name in ("case1.png", "case3.png"):
        assert after[name][0] == whole[name][0]  # the same mask again


@pytest.mark.parametrize("change, said", [
    (["--threshold", "0.8"], "threshold 0.5, this run 0.8"),
    (["--no-cleanup"], "cleanup"),
    (["--precision", "bf16"], "precision fp32, this run bf16"),
    (["--tta", "2"], "tta 1, this run 2"),
    ("other model", "model blob"),
])
def test_other_model_or_settings_are_refused(inputs, tmp_path, blob_model_file, tiny_model_file, capsys,
                                             change, said):
    out = tmp_path / "out"
    assert _predict(inputs, out, blob_model_file, "--precision", "fp32") == 0
    (out / "case2.png").unlink()  # something left to do
    before = _state(out)
    capsys.readouterr()
    if change == "other model":
        code = _predict(inputs, out, tiny_model_file, "--precision", "fp32")
    else:
        code = _predict(inputs, out, blob_model_file, "--precision", "fp32", *change)
    assert code == 2
    line = _stderr_line(capsys)
    assert said in line and "--overwrite" in line
    assert _state(out) == before


def test_overwrite_redoes_every_mask_and_records_the_new_model(inputs, tmp_path, blob_model_file,
                                                               tiny_model_file):
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert _predict(inputs, ref, tiny_model_file) == 0
    assert _predict(inputs, out, blob_model_file) == 0
    assert _predict(inputs, out, tiny_model_file, "--overwrite") == 0
    for i in range(5):
        assert (out / f"case{i}.png").read_bytes() == (ref / f"case{i}.png").read_bytes()
    assert json.loads((out / RECORD_NAME).read_text())["model"] == json.loads((ref / RECORD_NAME).read_text())["model"]
    assert _predict(inputs, out, tiny_model_file) == 0  # and it resumes with the new model


def test_masks_an_interrupted_overwrite_left_are_redone(inputs, tmp_path, blob_model_file, tiny_model_file,
                                                        capsys):
    """An overwrite that reached only some images (here: one shard of two) must not leave the
    old model's masks standing as if the new record covered them."""
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert _predict(inputs, ref, tiny_model_file) == 0
    assert _predict(inputs, out, blob_model_file) == 0
    assert _predict(inputs, out, tiny_model_file, "--overwrite", "--shard", "0/2") == 0  # case0, 2, 4
    capsys.readouterr()
    assert _predict(inputs, out, tiny_model_file) == 0
    assert "3 of 5 images already have their masks" in capsys.readouterr().out
    for i in range(5):
        assert (out / f"case{i}.png").read_bytes() == (ref / f"case{i}.png").read_bytes()


def test_masks_no_run_recorded_are_not_replaced(inputs, tmp_path, tiny_model_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "case3.png").write_bytes(b"a mask someone drew")
    assert _predict(inputs, out, tiny_model_file) == 2
    assert "case3.png" in _stderr_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["case3.png"]
    assert _predict(inputs, out, tiny_model_file, "--overwrite") == 0
    assert (out / "case3.png").read_bytes() != b"a mask someone drew"


def test_unreadable_images_are_logged_and_the_run_goes_on(inputs, tmp_path, tiny_model_file, capsys):
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = tmp_path / "out"
    assert _predict(inputs, out, tiny_model_file) == 1
    assert "broken.png" in _stderr_line(capsys)
    assert all((out / f"case{i}.png").is_file() for i in range(5))
    lines = (out / FAILURES_NAME).read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["source"] == str(inputs / "broken.png") and "broken.png" in entry["error"] and entry["time"]
    # a resumed run tries the failed image again (and only it), and says so again
    assert _predict(inputs, out, tiny_model_file) == 1
    assert "predicted 0 of 1 images" in capsys.readouterr().out
    assert len((out / FAILURES_NAME).read_text().splitlines()) == 2


def test_shards_together_make_the_whole_run_without_collisions(tmp_path, tiny_model_file, make_blob):
    """Same stems in two folders: names are decided on the whole list, so no shard takes
    another's name, and the union of the shards is the single run, file for file."""
    for folder, count in (("x", 4), ("y", 3)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            Image.fromarray(make_blob(24, 32, seed=20 + i + 10 * count)[0]).save(tmp_path / folder / f"img{i}.png")
    srcs = [tmp_path / "x", tmp_path / "y"]
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert main(["predict", *map(str, srcs), "--out", str(whole), "--model", str(tiny_model_file)]) == 0
    written: list[set[str]] = []
    for index in range(3):
        before = set(os.listdir(sharded)) if sharded.exists() else set()
        assert main(["predict", *map(str, srcs), "--out", str(sharded), "--model", str(tiny_model_file),
                     "--shard", f"{index}/3"]) == 0
        written.append(set(os.listdir(sharded)) - before - {RECORD_NAME})
    masks = {p.name for p in whole.iterdir()} - {RECORD_NAME}
    assert len(masks) == 7 and {"img0.png", "img0-1.png"} <= masks
    assert set().union(*written) == masks and sum(map(len, written)) == 7  # disjoint and complete
    assert [len(w) for w in written] == [3, 2, 2]
    for name in masks:
        assert (sharded / name).read_bytes() == (whole / name).read_bytes()


@pytest.mark.parametrize("shard", ["3/3", "-1/2", "1/0", "a/b", "2"])
def test_bad_shard_is_one_line(inputs, tmp_path, tiny_model_file, capsys, shard):
    assert _predict(inputs, tmp_path / "out", tiny_model_file, f"--shard={shard}") == 2
    assert "--shard" in _stderr_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_stack_resumes_and_its_first_plane_is_written_last(tmp_path, tiny_model_file, make_blob, monkeypatch):
    """``<stem>_z000.png`` marks a multi-plane file done, so it must be the last plane written."""
    import tifffile

    from napari_nevseg.core import pipeline

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack([make_blob(24, 32, seed=s)[0] for s in range(4)]), photometric="rgb")
    order: list[str] = []
    write = pipeline.write_mask_png
    monkeypatch.setattr(pipeline, "write_mask_png", lambda p, m: (order.append(p.name), write(p, m))[1])
    out = tmp_path / "out"
    assert _predict(path, out, tiny_model_file) == 0
    assert sorted(order) == [f"stack_z{i:03d}.png" for i in range(4)] and order[-1] == "stack_z000.png"
    order.clear()
    assert _predict(path, out, tiny_model_file) == 0
    assert order == []


def test_a_terminal_gets_a_bar_counting_images(inputs, tmp_path, tiny_model_file, monkeypatch, capsys):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _predict(inputs, tmp_path / "out", tiny_model_file, "--quiet") == 0
    drawn = terminal.getvalue()
    assert [f"{i}/5 images" in drawn for i in range(1, 6)] == [True] * 5
    assert drawn.rstrip().endswith("[" + "#" * 30 + "] 5/5 images")
