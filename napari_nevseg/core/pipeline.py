"""Batch prediction of image files into mask files (the engine of ``nevseg predict``).

Decoding runs in a small thread pool ahead of the network (Pillow and tifffile release the GIL),
so reading the next files overlaps with predicting the current ones.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.errors import ImageReadError, NevsegError, NoPairsError, WriteError
from napari_nevseg.core.image_io import encode_png, list_images, read_planes, write_mask_png
from napari_nevseg.core.overlay import outline_overlay
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession

__all__ = ["collect_inputs", "FileResult", "predict_files"]


def collect_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Image files named directly plus the image files directly inside named folders."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise NoPairsError(f"folder {path} holds no image files (PNG, JPEG, BMP or TIFF)")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ImageReadError(f"{path} does not exist; check the path")
    if not files:
        raise NoPairsError("no input images given")
    return files


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file: ``outputs`` written, or ``error`` (one line)."""

    source: Path
    outputs: tuple[Path, ...] = ()
    error: str | None = None
    lesion_fraction: float | None = None
    uncertainty: float | None = None


def _unique_stems(files: Sequence[Path]) -> list[str]:
    """Output names: the file's stem, with ``-1``, ``-2`` ... where two inputs share it."""
    taken: set[str] = set()
    stems = []
    for f in files:
        stem, count = f.stem, 0
        while stem in taken:
            count += 1
            stem = f"{f.stem}-{count}"
        taken.add(stem)
        stems.append(stem)
    return stems


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise WriteError(f"cannot write into {out_dir}: it is a file, not a folder; choose a folder") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise WriteError(f"cannot create {out_dir}: the disk is full; free some space and try again") from exc
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise WriteError(f"cannot create {out_dir}: the folder is not writable; choose another folder") from exc
        raise WriteError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    if not out_dir.is_dir():
        raise WriteError(f"cannot write into {out_dir}: it is not a folder; choose a folder")


def _read(path: Path) -> list[np.ndarray] | NevsegError:
    try:
        return read_planes(path)
    except NevsegError as exc:
        return exc


def predict_files(
    files: Sequence[Path],
    out_dir: Path,
    session: ModelSession,
    threshold: float | None = None,
    cleanup: Cleanup = Cleanup(),
    probabilities: bool = False,
    overlays: bool = False,
    workers: int = 2,
    on_fallback: Callable[[str], None] | None = None,
) -> Iterator[FileResult]:
    """Predict each file and write ``out_dir/<stem>.png`` (0/255, the image's size).

    Multi-plane files give ``<stem>_z000.png`` ... per plane. Files that cannot be read give a
    :class:`FileResult` with ``error`` set; the others go on.
    """
    out_dir = Path(out_dir)
    _make_out_dir(out_dir)
    stems = _unique_stems(files)
    ahead = max(1, workers) + 1  # decoded images held at once: bounded, so folders of huge files fit
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        queue = iter(files)

        def decoded() -> Iterator[list[np.ndarray] | NevsegError]:
            for path in queue:
                pending.append(pool.submit(_read, path))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        for path, stem, planes in zip(files, stems, decoded(), strict=True):
            if isinstance(planes, NevsegError):
                yield FileResult(path, error=str(planes))
                continue
            names = [stem] if len(planes) == 1 else [f"{stem}_z{i:03d}" for i in range(len(planes))]
            outputs: list[Path] = []
            fractions, uncertainties = [], []
            with session.lock:  # planes one batch at a time: a 512-plane stack never holds 512 full-size maps
                preds = session.predictor.predict_many(planes, 8, threshold, cleanup, probabilities, on_fallback)
                for name, plane, pred in zip(names, planes, preds, strict=True):
                    outputs.append(write_mask_png(out_dir / f"{name}.png", pred.mask))
                    if probabilities and pred.probability is not None:
                        prob8 = np.round(pred.probability * 255).astype(np.uint8)
                        outputs.append(atomic_write_bytes(out_dir / f"{name}_prob.png", encode_png(prob8)))
                    if overlays:
                        over = outline_overlay(plane, pred.mask)
                        outputs.append(atomic_write_bytes(out_dir / f"{name}_overlay.png", encode_png(over)))
                    fractions.append(float(pred.mask.mean()))
                    uncertainties.append(pred.uncertainty)
            yield FileResult(path, tuple(outputs), None, float(np.mean(fractions)), float(np.mean(uncertainties)))

