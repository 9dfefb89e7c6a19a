"""Reading images and masks from disk, writing masks; EXIF orientation applied on the way in.

Pillow decodes PNG, JPEG (also CMYK), BMP, palette and grey images and applies the EXIF rotation
(``ImageOps.exif_transpose``), so what is shown, predicted and saved agree. tifffile reads TIFF,
including 16-bit, float and multi-page files.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.convert import mask_to_uint8, to_bool_mask, to_rgb_uint8
from napari_nevseg.core.errors import ImageReadError, MaskError, NoPairsError

__all__ = [
    "IMAGE_SUFFIXES",
    "is_image_file",
    "list_images",
    "read_planes",
    "read_image",
    "read_mask",
    "write_mask_png",
    "encode_png",
    "displayed_shape",
]

# tifffile logs damaged-file details as warnings; the ImageReadError we raise already says what is
# wrong, so keep them off stderr when the application configured no logging (one line per error)
logging.getLogger("tifffile").addHandler(logging.NullHandler())

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_TIFF_SUFFIXES = (".tif", ".tiff")
MAX_PLANES = 512


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for a regular file whose suffix is one of :data:`IMAGE_SUFFIXES`."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise NoPairsError(f"{root} is not a folder")
    return sorted(p for p in root.iterdir() if is_image_file(p))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path} does not exist; check the path")
    if not path.is_file():
        raise ImageReadError(f"{path} is not a file; give an image file or a folder of images")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path} is empty (0 bytes); re-export or copy the image again")


class _LayoutError(Exception):
    pass


def _series_planes(array: np.ndarray, axes: str) -> list[np.ndarray]:
    if array.ndim < 2:
        raise ValueError(f"shape {array.shape}")
    if len(axes) != array.ndim or "Y" not in axes or "X" not in axes:
        axes = "Q" * (array.ndim - 2) + "YX"
    order = [i for i, a in enumerate(axes) if a not in "YXS"] + [axes.index("Y"), axes.index("X")]
    if "S" in axes:
        order.append(axes.index("S"))
    array = np.transpose(array, order)
    picture_ndim = 3 if "S" in axes else 2
    if picture_ndim == 3 and array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{array.shape[-1]} samples per pixel; expected grey, RGB or RGBA")
    return list(array.reshape((-1, *array.shape[array.ndim - picture_ndim :])))


def _tiff_planes(path: Path) -> list[np.ndarray]:
    """The 2-D planes of a TIFF, each ``(H, W)`` or ``(H, W, samples)``.

    The series' axes decide what is a plane: ``S`` (samples: RGB, alpha) is a colour axis
    wherever it is stored (planar RGB files come as ``SYX``), ``Y X`` are the picture, and every
    other axis (``Z``, ``T``, ``C``, ``Q`` pages ...) enumerates planes. Pages stored as separate
    series of the first one's size (files appended page by page) are planes too; series of
    another size (thumbnails, pyramid levels) are not.
    """
    import tifffile

    planes: list[np.ndarray] = []
    try:
        with tifffile.TiffFile(path) as tif:
            first = tif.series[0]
            for series in tif.series:
                if len(planes) >= MAX_PLANES:
                    break
                if series is not first and (series.shape != first.shape or series.axes != first.axes):
                    continue
                array = series.asarray()
                try:
                    planes += _series_planes(array, series.axes)
                except ValueError as exc:
                    raise _LayoutError(str(exc)) from exc
    except _LayoutError as exc:
        raise ImageReadError(
            f"{path} has an unsupported layout ({exc}); expected a 2-D image or a stack of 2-D images"
        ) from exc
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ImageReadError(
            f"{path} is not a readable TIFF ({exc}); the file may be truncated or damaged, re-export it"
        ) from exc
    if not planes:
        raise ImageReadError(f"{path} holds no image; re-export the image")
    return planes[:MAX_PLANES]


def _pillow_frame_to_array(frame: Image.Image) -> np.ndarray:
    if frame.mode == "P":
        frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    elif frame.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA"):
        frame = frame.convert("RGB")
    array = np.asarray(frame)
    if frame.mode in ("I", "I;16B", "I;16L", "I;16N") or array.dtype == np.int32:
        if array.min(initial=0) >= 0 and array.max(initial=0) <= 65535:
            array = array.astype(np.uint16)
    return array


def _pillow_planes(path: Path) -> list[np.ndarray]:
    """The displayed picture (first frame, EXIF orientation applied) as one plane.

    Only the first frame is read: the further frames of PNG and JPEG files (APNG animation,
    the MPO second picture many cameras append) are not part of the picture a user sees.
    """
    try:
        with Image.open(path) as image:
            frame = ImageOps.exif_transpose(image)
            frame.load()
            return [_pillow_frame_to_array(frame)]
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"{path} is not an image (its content is not PNG, JPEG, BMP or TIFF); "
            "check that the file was saved as an image"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path} is too large to open safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(
            f"{path} could not be decoded ({exc}); the file may be truncated or damaged"
        ) from exc


def read_planes(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """All planes of an image file as ``(H, W, 3) uint8`` RGB arrays (one for most files)."""
    p = Path(path)
    _check_file(p)
    raw = _tiff_planes(p) if p.suffix.lower() in _TIFF_SUFFIXES else _pillow_planes(p)
    try:
        return [to_rgb_uint8(plane) for plane in raw]
    except ValueError as exc:
        raise ImageReadError(f"{p}: {exc}") from exc


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The first (usually only) plane of an image file as ``(H, W, 3) uint8`` RGB."""
    return read_planes(path)[0]


def read_mask(
    path: str | os.PathLike[str], expected_shape: Iterable[int] | None = None
) -> np.ndarray:
    """A mask file as ``(H, W) bool``; ``expected_shape`` is the (H, W) of its image."""
    p = Path(path)
    try:
        _check_file(p)
        raw = _tiff_planes(p)[0] if p.suffix.lower() in _TIFF_SUFFIXES else _pillow_planes(p)[0]
        mask = to_bool_mask(raw)
    except (ImageReadError, ValueError) as exc:
        raise MaskError(f"mask {exc}") from exc
    if expected_shape is not None:
        shape = tuple(expected_shape)[:2]
        if mask.shape != shape:
            raise MaskError(
                f"mask {p} is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{shape[1]}x{shape[0]}; masks must have exactly the size of their image"
            )
    return mask


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 array; level 1 is several times faster than the default 6."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def write_mask_png(path: str | os.PathLike[str], mask: np.ndarray) -> Path:
    """Write a mask as an 8-bit 0/255 PNG, atomically (old file or new file, never half)."""
    return atomic_write_bytes(path, encode_png(mask_to_uint8(mask)))


def displayed_shape(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(H, W)`` of an image as displayed (EXIF rotation applied), read from its header only;
    None when the header cannot tell (TIFF stacks, damaged files)."""
    p = Path(path)
    if p.suffix.lower() in _TIFF_SUFFIXES:
        return None
    try:
        with Image.open(p) as image:
            w, h = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError):
        return None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)
