"""Reading images and masks, writing masks, listing folders."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nevseg.core.errors import ImageReadError, MaskError, NoPairsError
from napari_nevseg.core.image_io import (
    encode_png,
    is_image_file,
    list_images,
    read_image,
    read_mask,
    read_planes,
    write_mask_png,
)


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_round_trip(tmp_path, suffix):
    rgb = _rgb()
    path = tmp_path / f"x{suffix}"
    if suffix.startswith(".tif"):
        tifffile.imwrite(path, rgb, photometric="rgb")
    else:
        Image.fromarray(rgb).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, rgb)


def test_jpeg_uppercase_suffix(tmp_path):
    path = tmp_path / "PHOTO.JPG"
    Image.fromarray(np.full((16, 24, 3), 120, np.uint8)).save(path, format="JPEG", quality=95)
    assert is_image_file(path)
    out = read_image(path)
    assert out.shape == (16, 24, 3) and abs(int(out.mean()) - 120) <= 2


def test_exif_orientation_applied(tmp_path):
    rgb = _rgb(20, 30)
    rgb[:5, :5] = 255  # a marker in the stored top-left corner
    for orientation, expected in ((6, np.rot90(rgb, -1)), (8, np.rot90(rgb, 1)), (3, np.rot90(rgb, 2))):
        path = tmp_path / f"o{orientation}.png"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(rgb).save(path, exif=exif)
        out = read_image(path)
        np.testing.assert_array_equal(out, expected)


def test_multi_page_tiff_gives_planes(tmp_path):
    stack = np.stack([np.full((10, 12), v, np.uint8) for v in (0, 100, 200)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    planes = read_planes(path)
    assert [p.shape for p in planes] == [(10, 12, 3)] * 3
    assert [int(p[0, 0, 0]) for p in planes] == [0, 100, 200]
    np.testing.assert_array_equal(read_image(path), planes[0])


def test_pages_appended_one_by_one_are_planes(tmp_path):
    path = tmp_path / "pages.tif"
    for v in (10, 20):
        tifffile.imwrite(path, np.full((8, 9), v, np.uint8), append=True)
    assert [int(p[0, 0, 0]) for p in read_planes(path)] == [10, 20]


def test_planar_rgb_tiff_is_one_picture(tmp_path):
    rgb = _rgb(10, 12)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    planes = read_planes(path)
    assert len(planes) == 1
    np.testing.assert_array_equal(planes[0], rgb)


def test_rgb_stack_tiff(tmp_path):
    stack = np.stack([_rgb(10, 12, s) for s in range(4)])
    path = tmp_path / "rgbstack.tif"
    tifffile.imwrite(path, stack, photometric="rgb")
    planes = read_planes(path)
    assert len(planes) == 4
    np.testing.assert_array_equal(planes[2], stack[2])


def test_png_reads_only_the_displayed_frame(tmp_path):
    """An animated PNG (like an MPO JPEG's second picture) is one picture, not a stack."""
    path = tmp_path / "anim.png"
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (50, 150)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    planes = read_planes(path)
    assert len(planes) == 1 and int(planes[0][0, 0, 0]) == 50


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"hello, this is text\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "not an image|could not be decoded"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        read_image(path)


def test_truncated_png_and_tiff(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_rgb(60, 80)).save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or damaged"):
        read_image(cut)
    tif = tmp_path / "cut.tif"
    tifffile.imwrite(tif, _rgb(60, 80), photometric="rgb")
    tif.write_bytes(tif.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="TIFF"):
        read_image(tif)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="not a file"):
        read_image(tmp_path)


def test_read_mask_rules_and_shape(tmp_path):
    mask = np.zeros((10, 14), np.uint8)
    mask[2:6, 3:9] = 255
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    out = read_mask(path, expected_shape=(10, 14, 3))
    assert out.dtype == bool
    np.testing.assert_array_equal(out, mask > 0)
    Image.fromarray((mask > 0).astype(np.uint8)).save(path)  # 0/1 mask
    np.testing.assert_array_equal(read_mask(path), mask > 0)
    with pytest.raises(MaskError, match=r"is 14x10 but its image is 15x10"):
        read_mask(path, expected_shape=(10, 15))


def test_read_mask_errors_are_mask_errors(tmp_path):
    path = tmp_path / "m.png"
    path.write_text("not a mask")
    with pytest.raises(MaskError, match="mask .*not an image"):
        read_mask(path)
    with pytest.raises(MaskError, match="does not exist"):
        read_mask(tmp_path / "none.png")


def test_write_mask_png(tmp_path):
    mask = np.zeros((7, 9), bool)
    mask[1:4, 2:5] = True
    path = write_mask_png(tmp_path / "sub" / "m.png", mask)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (9, 7)
        arr = np.asarray(im)
    assert set(np.unique(arr)) == {0, 255}
    np.testing.assert_array_equal(arr > 0, mask)
    labels = mask.astype(np.int32) * 3
    np.testing.assert_array_equal(read_mask(write_mask_png(path, labels)), mask)


def test_encode_png_round_trip():
    import io

    arr = _rgb(5, 6)
    with Image.open(io.BytesIO(encode_png(arr))) as im:
        np.testing.assert_array_equal(np.asarray(im), arr)


def test_list_images(tmp_path):
    for name in ("b.png", "a.JPG", "c.tif", ".hidden.png", "notes.txt", "d.jpeg.bak"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tif"]
    with pytest.raises(NoPairsError, match="not a folder"):
        list_images(tmp_path / "b.png")
