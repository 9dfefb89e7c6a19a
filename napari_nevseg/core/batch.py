"""Resumable batch prediction: what an output folder holds, what made it, what failed.

An output folder records in ``nevseg-run.json`` the model (the SHA-256 of its file) and the
settings that made its masks. A later run into the folder predicts only the images whose
outputs are missing, and refuses to mix in masks of another model or other settings unless it
is told to overwrite. A run that overwrites rewrites the record first; a mask counts as done
only when it is at least as new as the record, so the masks of the earlier settings that an
interrupted overwrite did not reach are redone by the next run, never kept as if new.

The work list is sorted and its output names decided on the whole list before it is cut into
shards (``--shard I/N``), so every shard of a job array agrees on who writes which file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from napari_nevseg import __version__
from napari_nevseg.core.atomic import atomic_write_text
from napari_nevseg.core.checkpoint import read_metadata
from napari_nevseg.core.content_hash import file_sha256
from napari_nevseg.core.errors import NevsegError, WriteError
from napari_nevseg.core.pipeline import make_out_dir, unique_stems
from napari_nevseg.core.postprocess import Cleanup

__all__ = [
    "RECORD_NAME", "FAILURES_NAME", "RunSettings", "RunMismatchError", "Plan", "parse_shard", "plan_run",
    "log_failure",
]

RECORD_NAME = "nevseg-run.json"
FAILURES_NAME = "nevseg-failures.jsonl"
_FORMAT = "napari-nevseg predict run 1"


class RunMismatchError(NevsegError):
    """The output folder holds masks of another model or other settings."""


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a mask's pixels: the model's bytes and the prediction settings."""

    model_sha256: str
    model_version: str
    threshold: float
    cleanup: Cleanup
    precision: str
    tta: int

    @classmethod
    def for_model(cls, model_path: Path, version: str | None, threshold: float | None, cleanup: Cleanup,
                  precision: str, tta: int | None) -> RunSettings:
        """Settings with the model's own threshold and flips where none are given (as
        :class:`~napari_nevseg.core.inference.Predictor` takes them); ``version`` defaults to
        the one in the model file, else the file's name."""
        meta = read_metadata(model_path)
        return cls(
            file_sha256(model_path), version or meta.get("version") or Path(model_path).stem,
            float(meta.get("threshold", 0.5)) if threshold is None else float(threshold),
            cleanup, precision, int(meta.get("tta", 1)) if tta is None else int(tta),
        )

    def record(self) -> dict[str, Any]:
        return {
            "model": {"sha256": self.model_sha256, "version": self.model_version},
            "settings": {"threshold": self.threshold, "cleanup": asdict(self.cleanup),
                         "precision": self.precision, "tta": self.tta},
        }


@dataclass(frozen=True)
class Plan:
    """The (source, output name) pairs still to predict, in order; ``total`` counts this shard's
    inputs, ``done`` those skipped because their outputs are there."""

    todo: list[tuple[Path, str]]
    total: int
    done: int


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` with ``0 <= I < N`` as ``(I, N)``."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise NevsegError(f"--shard {text!r} must look like I/N, e.g. 0/4 (I from 0 to N-1)") from None
    if count < 1 or not 0 <= index < count:
        raise NevsegError(f"--shard {text!r}: I must be from 0 to N-1 and N at least 1, e.g. 0/4")
    return index, count


def plan_run(
    files: Sequence[Path],
    out_dir: Path,
    settings: RunSettings,
    *,
    overwrite: bool = False,
    shard: tuple[int, int] = (0, 1),
    extras: Sequence[str] = (),
) -> Plan:
    """Sort ``files``, name their outputs, keep shard ``I`` of ``N`` (every N-th file from the
    I-th), check or write the folder's record, and leave out the files already done.

    ``extras`` are the suffixes of further outputs asked for (``"_prob"``, ``"_overlay"``):
    a file counts as done only with all of them. Raises :class:`RunMismatchError` when the
    folder's masks were made otherwise and ``overwrite`` is not set.
    """
    ordered = sorted(files, key=str)
    index, count = shard
    pairs = list(zip(ordered, unique_stems(ordered), strict=True))[index::count]
    out_dir = Path(out_dir)
    make_out_dir(out_dir)
    since = _open_record(out_dir, settings, overwrite, [stem for _, stem in pairs], extras)
    todo = pairs if overwrite else [p for p in pairs if not _is_done(out_dir, p[1], extras, since)]
    return Plan(todo, len(pairs), len(pairs) - len(todo))


def _outputs(out_dir: Path, name: str, extras: Sequence[str]) -> list[Path]:
    return [out_dir / f"{name}{suffix}.png" for suffix in ("", *extras)]


def _is_done(out_dir: Path, stem: str, extras: Sequence[str], since_ns: int) -> bool:
    """All outputs of ``stem`` (one plane, or the ``_z000`` plane written last) exist and are
    no older than the record."""
    for name in (stem, f"{stem}_z000"):
        try:
            if all(p.stat().st_mtime_ns >= since_ns for p in _outputs(out_dir, name, extras)):
                return True
        except FileNotFoundError:
            continue
    return False


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("format") != _FORMAT or "model" not in record or "settings" not in record:
            raise ValueError("unknown layout")
        return record
    except (OSError, ValueError, AttributeError) as exc:
        raise RunMismatchError(
            f"{path} is not a record of a nevseg predict run ({exc}); add --overwrite to redo the masks, "
            "or choose another --out"
        ) from exc


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    said = []
    if old["model"].get("sha256") != new["model"]["sha256"]:
        said.append(f"model {old['model'].get('version')} (sha256 {str(old['model'].get('sha256'))[:12]}), "
                    f"this run {new['model']['version']} ({new['model']['sha256'][:12]})")
    for key, value in new["settings"].items():
        if old["settings"].get(key) != value:
            said.append(f"{key} {_brief(old['settings'].get(key))}, this run {_brief(value)}")
    return said


def _brief(value: Any) -> str:
    if isinstance(value, dict):  # the clean-up steps
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _open_record(out_dir: Path, settings: RunSettings, overwrite: bool, stems: list[str],
                 extras: Sequence[str]) -> int:
    """Check the folder's record against ``settings`` (or write it); its mtime in ns."""
    path = out_dir / RECORD_NAME
    new = settings.record()
    if path.exists() and not overwrite:
        said = _differences(_read_record(path), new)
        if said:
            raise RunMismatchError(f"{out_dir} holds masks made with {'; '.join(said)}; add --overwrite to redo "
                                   "them, or choose another --out")
        return path.stat().st_mtime_ns
    if not path.exists() and not overwrite:
        found = next((n for s in stems for n in (s, f"{s}_z000") if (out_dir / f"{n}.png").exists()), None)
        if found is not None:
            raise RunMismatchError(f"{out_dir} already holds {found}.png and other files that no recorded nevseg "
                                   "predict run made; add --overwrite to replace them, or choose another --out")
    atomic_write_text(path, json.dumps({"format": _FORMAT, **new, "written_by": f"napari-nevseg {__version__}",
                                        "started": _now()}, indent=1) + "\n")
    return path.stat().st_mtime_ns


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def log_failure(out_dir: Path, source: Path, error: str) -> None:
    """Append one JSON line to ``out_dir/nevseg-failures.jsonl``.

    The log is appended to, never rewritten: shards of a job array write to it at once, and
    each line is one ``write`` to a file opened for appending. An image that failed once and
    was predicted by a later run keeps its line here and has its mask beside it.
    """
    line = json.dumps({"time": _now(), "source": str(source), "error": error}) + "\n"
    try:
        fd = os.open(Path(out_dir) / FAILURES_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise WriteError(f"cannot write {Path(out_dir) / FAILURES_NAME}: {exc.strerror or exc}") from exc
