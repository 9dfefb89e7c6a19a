"""napari reader for dermoscopy images: EXIF orientation applied, any pixel type made RGB.

What napari shows is exactly the array the model predicts on and the mask is saved against.
A file that cannot be read gets a napari notification, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

from napari_nevseg.core.image_io import IMAGE_SUFFIXES


def napari_get_reader(path):
    """Return a reader for one image file (or a list of them), else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(Path(p).suffix.lower() not in IMAGE_SUFFIXES for p in paths):
        return None
    return _read


def _read(path) -> list[tuple]:
    from napari.utils.notifications import show_error

    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import read_planes

    layers = []
    for item in [path] if isinstance(path, (str, Path)) else path:
        p = Path(item)
        try:
            planes = read_planes(p)
        except NevsegError as exc:
            show_error(str(exc))
            continue
        data = planes[0] if len(planes) == 1 else __import__("numpy").stack(planes)
        layers.append((data, {"name": p.stem, "rgb": True, "metadata": {"path": str(p)}}, "image"))
    return layers or [(None,)]
