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

__all__ = ["collect_inputs", "FileResult", "map_ahead", "predict_files", "unique_stems", "make_out_dir"]


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


def unique_stems(files: Sequence[Path]) -> list[str]:
    """Output names: the file's stem, with ``-1``, ``-2`` ... where two inputs share it.

    The names depend on the whole list: decide them once on every input of a run, then hand
    parts of the run (shards, Dask chunks) their names, so two parts never write one file.
    """
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


def make_out_dir(out_dir: Path) -> None:
    """Create ``out_dir``, or say in one line why it cannot be."""
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


def map_ahead(pool: ThreadPoolExecutor, fn: Callable, items: Iterable, ahead: int) -> Iterator:
    """``fn(item)`` for each item, in order, computed in ``pool`` with at most ``ahead`` in
    flight: decoding runs ahead of the network, and folders of huge files still fit in memory.
    (The CLI's pipeline and the widget's *Predict project* both read this way.)"""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _chunks(items: Iterator[tuple], planes_per_chunk: int, max_pixels: int = 40_000_000) -> Iterator[list[tuple]]:
    """Group (path, stem, planes) items into chunks of about ``planes_per_chunk`` planes, or
    fewer when they are large (``max_pixels``), so memory stays bounded."""
    chunk: list[tuple] = []
    count = pixels = 0
    for item in items:
        chunk.append(item)
        if not isinstance(item[2], NevsegError):
            count += len(item[2])
            pixels += sum(plane.shape[0] * plane.shape[1] for plane in item[2])
        if count >= planes_per_chunk or pixels >= max_pixels:
            yield chunk
            chunk, count, pixels = [], 0, 0
    if chunk:
        yield chunk


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
    batch_size: int = 8,
    stems: Sequence[str] | None = None,
) -> Iterator[FileResult]:
    """Predict each file and write ``out_dir/<stem>.png`` (0/255, the image's size).

    Three stages overlap: a thread pool decodes the next files; the network runs on batches of
    ``batch_size`` planes taken across files; the pool upsamples, cleans and writes each mask.
    Multi-plane files give ``<stem>_z000.png`` ... per plane. Files that cannot be read give a
    :class:`FileResult` with ``error`` set; the others go on. Results come in input order.
    ``stems`` are the output names (default: :func:`unique_stems` of ``files``). A multi-plane
    file's ``_z000`` mask is written after its other planes, so its presence means the file is
    complete (what a resumed run checks).
    """
    out_dir = Path(out_dir)
    make_out_dir(out_dir)
    stems = list(unique_stems(files) if stems is None else stems)
    if len(stems) != len(files):
        raise ValueError(f"{len(files)} files but {len(stems)} output names")
    predictor = session.predictor

    def finish(name: str, plane: np.ndarray, passes) -> tuple[list[Path], float, float]:
        low, look = passes  # the first pass and its second look (or None)
        pred = predictor.finish(low, plane.shape[:2], threshold, cleanup, probabilities, look)
        outputs = [write_mask_png(out_dir / f"{name}.png", pred.mask)]
        if probabilities and pred.probability is not None:
            prob8 = np.round(pred.probability * 255).astype(np.uint8)
            outputs.append(atomic_write_bytes(out_dir / f"{name}_prob.png", encode_png(prob8)))
        if overlays:
            outputs.append(atomic_write_bytes(out_dir / f"{name}_overlay.png", encode_png(outline_overlay(plane, pred.mask))))
        return outputs, float(pred.mask.mean()), pred.uncertainty

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        items = zip(files, stems, map_ahead(pool, _read, files, max(1, workers) + 1), strict=True)
        for chunk in _chunks(items, batch_size):
            jobs = []  # (file index in chunk, name, plane, finish last)
            for index, (_, stem, planes) in enumerate(chunk):
                if isinstance(planes, NevsegError):
                    continue
                names = [stem] if len(planes) == 1 else [f"{stem}_z{i:03d}" for i in range(len(planes))]
                # the first plane of a multi-plane file is finished last (see _finish_all)
                jobs += [(index, name, plane, i == 0 and len(planes) > 1)
                         for i, (name, plane) in enumerate(zip(names, planes, strict=True))]
            lows: list = []
            looks: list = []
            with session.lock:
                for start in range(0, len(jobs), batch_size):
                    batch = [job[2] for job in jobs[start : start + batch_size]]
                    batch_lows = predictor.low_res_with_fallback(batch, on_fallback)
                    lows += batch_lows
                    looks += predictor.look_again(batch, batch_lows)
            per_file = _finish_all(pool, finish, jobs, list(zip(lows, looks, strict=True)))
            for index, (path, _, planes) in enumerate(chunk):
                if isinstance(planes, NevsegError):
                    yield FileResult(path, error=str(planes))
                    continue
                results = per_file[index]
                outputs = tuple(p for r in results for p in r[0])
                yield FileResult(path, outputs, None, float(np.mean([r[1] for r in results])),
                                 float(np.mean([r[2] for r in results])))


def _finish_all(pool: ThreadPoolExecutor, finish: Callable, jobs: list[tuple], lows: list) -> dict[int, list]:
    """Run ``finish`` on every plane in the pool; the first plane of a multi-plane file goes
    last (a second wave), so ``<stem>_z000.png`` on disk means every plane of it is written."""
    results: list = [None] * len(jobs)
    for wave in (False, True):
        futures = {i: pool.submit(finish, name, plane, lows[i])
                   for i, (_, name, plane, last) in enumerate(jobs) if last is wave}
        for i, future in futures.items():
            results[i] = future.result()
    per_file: dict[int, list] = {}
    for (index, *_), result in zip(jobs, results, strict=True):
        per_file.setdefault(index, []).append(result)
    return per_file
