"""Hostile input matrix: every kind of file a user may hand us, through the core and the CLI.

Files that hold a picture give a full-size mask that agrees with the mask of the same picture as
8-bit RGB; the rest give one clear message.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nevseg.cli import main
from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.errors import ImageReadError, MaskError, NoPairsError, WriteError
from napari_nevseg.core.image_io import read_image, read_mask, read_planes, write_mask_png
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.pipeline import collect_inputs

H, W = 90, 120


def _grey(rgb):
    return np.round(rgb.astype(np.float32).mean(axis=-1)).astype(np.uint8)


def _rgb3(grey):
    return np.repeat(grey[..., None], 3, axis=-1)


def _exif_jpeg(path, rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, quality=95, exif=exif)


# name -> (file name, writer(path, rgb), displayed 8-bit RGB picture the mask must match)
VARIANTS = {
    "rgb_png": ("a.png", lambda p, x: Image.fromarray(x).save(p), lambda x: x),
    "rgba_png": ("a.png", lambda p, x: Image.fromarray(np.dstack([x, np.full(x.shape[:2], 200, np.uint8)])).save(p),
                 lambda x: x),
    "grey_png": ("a.png", lambda p, x: Image.fromarray(_grey(x)).save(p), lambda x: _rgb3(_grey(x))),
    "grey_alpha_png": ("a.png", lambda p, x: Image.fromarray(np.dstack([_grey(x), np.full(x.shape[:2], 90, np.uint8)])).save(p),
                       lambda x: _rgb3(_grey(x))),
    "grey16_png": ("a.png", lambda p, x: Image.fromarray(_grey(x).astype(np.uint16) * 257).save(p),
                   lambda x: _rgb3(_grey(x))),
    "rgb16_tiff": ("a.tif", lambda p, x: tifffile.imwrite(p, x.astype(np.uint16) * 257, photometric="rgb"), lambda x: x),
    "grey16_tiff": ("a.tiff", lambda p, x: tifffile.imwrite(p, _grey(x).astype(np.uint16) * 257), lambda x: _rgb3(_grey(x))),
    "float_tiff": ("a.tif", lambda p, x: tifffile.imwrite(p, x.astype(np.float32) / 255, photometric="rgb"), lambda x: x),
    "palette_png": ("a.png", lambda p, x: Image.fromarray(x).quantize(256).save(p), lambda x: x),
    "cmyk_jpeg": ("a.jpg", lambda p, x: Image.fromarray(x).convert("CMYK").save(p, quality=95), lambda x: x),
    "rgb_jpeg": ("a.jpeg", lambda p, x: Image.fromarray(x).save(p, quality=90), lambda x: x),
    "bmp": ("a.bmp", lambda p, x: Image.fromarray(x).save(p), lambda x: x),
    "exif6_jpeg": ("a.jpg", lambda p, x: _exif_jpeg(p, x, 6), lambda x: np.ascontiguousarray(np.rot90(x, -1))),
    "exif8_jpeg": ("a.jpg", lambda p, x: _exif_jpeg(p, x, 8), lambda x: np.ascontiguousarray(np.rot90(x, 1))),
    "spaces_non_ascii": ("mes images/lésion nº 1 ü 皮膚.png", lambda p, x: Image.fromarray(x).save(p), lambda x: x),
}


@pytest.fixture(scope="module")
def picture(make_blob):
    return make_blob(H, W, seed=42)[0]


def _write(tmp_path, variant, rgb) -> Path:
    name, writer, _ = VARIANTS[variant]
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(path, rgb)
    return path


def _reference(blob_session, variant, rgb):
    displayed = VARIANTS[variant][2](rgb)
    return displayed.shape[:2], blob_session.predict(displayed).mask


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_picture_variants_core(tmp_path, variant, picture, blob_session):
    path = _write(tmp_path, variant, picture)
    image = read_image(path)
    shape, ref = _reference(blob_session, variant, picture)
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    mask = blob_session.predict(image).mask
    assert mask.shape == shape
    assert 0.03 < ref.mean() < 0.6, "the reference mask should be a real lesion"
    assert dice(mask, ref) >= 0.98


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_picture_variants_cli(tmp_path, variant, picture, blob_session, blob_model_file, capsys):
    path = _write(tmp_path, variant, picture)
    out = tmp_path / "out put ä"
    code = main(["predict", str(path), "--out", str(out), "--model", str(blob_model_file), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    written = out / f"{path.stem}.png"
    with Image.open(written) as im:
        saved = np.asarray(im)
    shape, ref = _reference(blob_session, variant, picture)
    assert saved.shape == shape and saved.dtype == np.uint8
    assert set(np.unique(saved)) <= {0, 255}
    assert dice(saved > 0, ref) >= 0.98


def test_exif_rotation_mask_follows_the_display(tmp_path, picture, blob_session):
    """Orientation 6: the stored picture is shown rotated; the mask must be in display space."""
    path = _write(tmp_path, "exif6_jpeg", picture)
    mask = blob_session.predict(read_image(path)).mask
    assert mask.shape == (W, H)
    stored_orientation = blob_session.predict(picture).mask
    right = dice(mask, np.rot90(stored_orientation, -1))  # the network is not exactly rotation-equivariant
    wrong = dice(mask, np.rot90(stored_orientation, 1))
    assert right >= 0.9 and wrong < 0.6, (right, wrong)


def test_tiny_16x16(tmp_path, blob_session, blob_model_file, make_blob):
    rgb, _ = make_blob(16, 16, seed=3)
    path = tmp_path / "tiny.png"
    Image.fromarray(rgb.astype(np.uint16)[..., 0] * 257).save(path)  # and 16-bit grey while at it
    mask = blob_session.predict(read_image(path)).mask
    assert mask.shape == (16, 16)
    np.testing.assert_array_equal(mask, blob_session.predict(_rgb3(rgb[..., 0])).mask)
    assert main(["predict", str(path), "--out", str(tmp_path / "o"), "--model", str(blob_model_file)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "tiny.png")) > 0, mask)


def test_one_by_one_pixel(tmp_path, blob_session, blob_model_file):
    path = tmp_path / "dot.png"
    Image.fromarray(np.full((1, 1, 3), 60, np.uint8)).save(path)
    mask = blob_session.predict(read_image(path)).mask
    assert mask.shape == (1, 1)
    assert main(["predict", str(path), "--out", str(tmp_path / "o"), "--model", str(blob_model_file)]) == 0
    assert np.asarray(Image.open(tmp_path / "o" / "dot.png")).shape == (1, 1)


@pytest.mark.parametrize("kind", ["grey_stack", "rgb_stack", "pages"])
def test_stacks_give_a_mask_per_plane(tmp_path, kind, blob_session, blob_model_file, make_blob):
    pictures = [make_blob(48, 64, seed=60 + i)[0] for i in range(3)]
    path = tmp_path / "stack.tif"
    if kind == "grey_stack":
        tifffile.imwrite(path, np.stack([_grey(p) for p in pictures]), photometric="minisblack")
        pictures = [_rgb3(_grey(p)) for p in pictures]
    elif kind == "rgb_stack":
        tifffile.imwrite(path, np.stack(pictures), photometric="rgb")
    else:
        for p in pictures:
            tifffile.imwrite(path, p, photometric="rgb", append=True)
    planes = read_planes(path)
    assert len(planes) == 3
    out = tmp_path / "out"
    assert main(["predict", str(path), "--out", str(out), "--model", str(blob_model_file)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["nevseg-run.json", "stack_z000.png", "stack_z001.png",
                                                     "stack_z002.png"]
    for i, rgb in enumerate(pictures):
        saved = np.asarray(Image.open(out / f"stack_z{i:03d}.png")) > 0
        assert saved.shape == (48, 64)
        np.testing.assert_array_equal(saved, blob_session.predict(rgb).mask)


# -- one clear message ----------------------------------------------------------------------------
def _truncated_png(path, picture):
    Image.fromarray(picture).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


BAD_FILES = {
    "truncated_png": _truncated_png,
    "text_named_png": lambda p, x: p.write_text("hello, I am a text file\n"),
    "empty_file": lambda p, x: p.write_bytes(b""),
    "png_header_only": lambda p, x: p.write_bytes(b"\x89PNG\r\n\x1a\n"),
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_files_core(tmp_path, bad, picture):
    path = tmp_path / "bad.png"
    BAD_FILES[bad](path, picture)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    with pytest.raises(MaskError):
        read_mask(path)


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_files_cli(tmp_path, bad, picture, tiny_model_file, capsys):
    path = tmp_path / "bad.png"
    BAD_FILES[bad](path, picture)
    code = main(["predict", str(path), "--out", str(tmp_path / "out"), "--model", str(tiny_model_file)])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nevseg:") and "bad.png" in lines[0]
    assert not (tmp_path / "out" / "bad.png").exists()


def test_empty_folder(tmp_path, tiny_model_file, capsys):
    folder = tmp_path / "nothing here"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images")
    with pytest.raises(NoPairsError, match="holds no image files"):
        collect_inputs([folder])
    assert main(["predict", str(folder), "--out", str(tmp_path / "o"), "--model", str(tiny_model_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nevseg:") and "Traceback" not in err


def test_mask_of_another_size(tmp_path, capsys):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(ref / "a.png")
    Image.fromarray(np.zeros((20, 31), np.uint8)).save(pred / "a.png")
    with pytest.raises(MaskError, match="is 31x20 but its image is 30x20"):
        read_mask(pred / "a.png", expected_shape=(20, 30))
    assert main(["evaluate", "--pred", str(pred), "--masks", str(ref)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nevseg:") and "31x20" in lines[0] and "Traceback" not in err


def test_mask_of_another_size_with_model(tmp_path, blob_model_file, make_blob, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(make_blob(40, 50, seed=0)[0]).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((50, 40), np.uint8)).save(tmp_path / "masks" / "a.png")
    code = main(["evaluate", "--model", str(blob_model_file), "--images", str(tmp_path / "images"),
                 "--masks", str(tmp_path / "masks")])
    assert code == 2
    assert "exactly the size of their image" in capsys.readouterr().err


# -- masks with other values: the documented rule of core/convert.py --------------------------------
def _mask_shape():
    m = np.zeros((24, 32), bool)
    m[5:15, 8:20] = True
    return m


def test_mask_value_conventions(tmp_path, capsys):
    truth = _mask_shape()
    ref = tmp_path / "ref"
    ref.mkdir()
    Image.fromarray(truth.astype(np.uint8) * 255).save(ref / "a.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(ref / "b.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(ref / "c.png")
    pred = tmp_path / "pred"
    pred.mkdir()
    # 0/1 PNG
    Image.fromarray(truth.astype(np.uint8)).save(pred / "a.png")
    # 0/128/255 with JPEG noise: 128 is foreground (at least half of 255), noise near 0 is not
    noisy = np.where(truth, 255, 0).astype(np.uint8)
    noisy[5:15, 8:10] = 128
    Image.fromarray(noisy).save(pred / "b.jpg", quality=70)
    # float 0..1 TIFF
    tifffile.imwrite(pred / "c.tif", truth.astype(np.float32) * 0.9)
    for name, least in (("a.png", 1.0), ("b.jpg", 0.95), ("c.tif", 1.0)):
        got = read_mask(pred / name, expected_shape=truth.shape)
        assert dice(got, truth) >= least, name
    # the same 0/128/255 without compression: 128 is foreground, exactly
    Image.fromarray(noisy).save(tmp_path / "lossless.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "lossless.png"), truth)
    Image.fromarray(np.where(truth, 127, 0).astype(np.uint8)).save(tmp_path / "dim.png")
    assert not read_mask(tmp_path / "dim.png").any()  # below half of 255: background
    np.testing.assert_array_equal(read_mask(pred / "a.png"), truth)
    np.testing.assert_array_equal(read_mask(pred / "c.tif"), truth)
    assert main(["evaluate", "--pred", str(pred), "--masks", str(ref), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["mean"]["n"] == 3 and data["mean"]["dice"] >= 0.98 - 0.03 / 3


# -- folders that cannot be written ----------------------------------------------------------------
def _raiser(err_no):
    def fail(*args, **kwargs):
        raise (PermissionError if err_no == errno.EACCES else OSError)(err_no, os.strerror(err_no))

    return fail


@pytest.mark.parametrize("err_no, text", [(errno.EACCES, "not writable"), (errno.ENOSPC, "disk is full")])
@pytest.mark.parametrize("where", ["replace", "mkstemp"])
def test_write_errors_core(tmp_path, monkeypatch, err_no, text, where):
    target = tmp_path / "m.png"
    write_mask_png(target, _mask_shape())
    before = target.read_bytes()
    if where == "replace":
        monkeypatch.setattr(os, "replace", _raiser(err_no))
    else:
        monkeypatch.setattr(tempfile, "mkstemp", _raiser(err_no))
    with pytest.raises(WriteError, match=text):
        write_mask_png(target, ~_mask_shape())
    with pytest.raises(WriteError, match=text):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary file left behind


@pytest.mark.parametrize("err_no, text", [(errno.EACCES, "not writable"), (errno.ENOSPC, "disk is full")])
def test_write_errors_cli(tmp_path, monkeypatch, err_no, text, tiny_model_file, make_blob, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(make_blob(20, 30, seed=0)[0]).save(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"previous result")
    fail, replace = _raiser(err_no), os.replace
    # the masks cannot be written (the run record can)
    monkeypatch.setattr(os, "replace", lambda a, b: fail() if str(b).endswith(".png") else replace(a, b))
    code = main(["predict", str(src), "--out", str(out), "--model", str(tiny_model_file), "--overwrite"])
    monkeypatch.undo()
    assert code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nevseg:") and text in lines[0] and "Traceback" not in err
    assert (out / "a.png").read_bytes() == b"previous result"


def test_out_folder_cannot_be_created(tmp_path, monkeypatch, tiny_model_file, make_blob, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(make_blob(20, 30, seed=0)[0]).save(src)
    monkeypatch.setattr(Path, "mkdir", _raiser(errno.EACCES))
    code = main(["predict", str(src), "--out", str(tmp_path / "new" / "out"), "--model", str(tiny_model_file)])
    monkeypatch.undo()
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not writable" in err and "Traceback" not in err


def test_project_review_on_a_full_disk_keeps_the_previous_mask(project_dir, monkeypatch):
    from napari_nevseg.core.project import Project, Status

    project = Project.open(project_dir)
    h, w = project.read_image("case0").shape[:2]
    first = np.zeros((h, w), bool)
    first[2:8, 3:9] = True
    project.review("case0", first)
    monkeypatch.setattr(os, "replace", _raiser(errno.ENOSPC))
    with pytest.raises(WriteError, match="disk is full"):
        project.review("case0", ~first)
    monkeypatch.undo()
    np.testing.assert_array_equal(Project.open(project_dir).read_mask("case0"), first)
    assert Project.open(project_dir).records["case0"].status is Status.CORRECTED


# -- a very large image: bounded memory ----------------------------------------------------------
@pytest.mark.slow
def test_8000x6000_image_peak_memory(tmp_path, blob_model_file, make_blob):
    small, _ = make_blob(150, 200, seed=9)
    big = tmp_path / "big photo.jpg"
    Image.fromarray(small).resize((8000, 6000), Image.BILINEAR).save(big, quality=85)
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np, torch
        torch.set_num_threads(2)
        from PIL import Image
        from napari_nevseg.cli import main
        from napari_nevseg.core.session import ModelSession
        ModelSession.load({str(blob_model_file)!r}, "cpu")  # warm up imports
        with open("/proc/self/statm") as f:
            base = int(f.read().split()[1]) * resource.getpagesize()
        code = main(["predict", {str(big)!r}, "--out", {str(out)!r}, "--model", {str(blob_model_file)!r}, "--quiet"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print("RESULT", code, peak - base)
        sys.stderr.write(f"peak extra RSS {{(peak - base) / 2**20:.0f}} MiB\\n")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT")][0]
    _, code, extra = line.split()
    assert code == "0"
    assert int(extra) < 2 * 1024**3, f"peak extra memory {int(extra) / 2**30:.2f} GiB"
    with Image.open(out / "big photo.png") as im:
        assert im.size == (8000, 6000)
        mask = np.asarray(im.reduce(40)) > 127
    expected = np.asarray(Image.fromarray(small).resize((200, 150)))  # sanity: a lesion was found
    assert 0.03 < mask.mean() < 0.6 and expected.shape[:2] == mask.shape
