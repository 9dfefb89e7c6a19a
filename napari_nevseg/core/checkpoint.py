"""Model files: one safetensors file, its metadata as JSON in the header.

Loading never unpickles anything: a pickle-based ``.pt``/``.pth`` file is recognised by its
first bytes and refused before any of it is interpreted.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from napari_nevseg import __version__
from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.errors import ModelFileError
from napari_nevseg.core.model import ARCHITECTURES, build_model

__all__ = ["FORMAT", "save_model", "load_model", "read_metadata", "model_bytes"]

FORMAT = "napari-nevseg-model/1"
_META_KEY = "nevseg"
_MAX_HEADER = 100 * 1024 * 1024
_REQUIRED = ("arch", "arch_params", "work_size", "normalization")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def model_bytes(model: nn.Module, metadata: dict[str, Any]) -> bytes:
    """The safetensors bytes of ``model`` with ``metadata`` (format, date, version filled in)."""
    from safetensors.torch import save

    meta = {"format": FORMAT, "created": _now(), "package_version": __version__, **metadata}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


def save_model(path: str | os.PathLike[str], model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write a self-contained model file atomically."""
    return atomic_write_bytes(path, model_bytes(model, metadata))


def _check_container(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise ModelFileError(
            f"{path} is a pickle-based PyTorch file; it was not opened because loading it could "
            "run code. Use a napari-nevseg .safetensors model file"
        )
    if len(head) < 9:
        raise ModelFileError(f"{path} is too short to be a model file (truncated?)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > min(_MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise ModelFileError(f"{path} is not a safetensors model file (or it is truncated)")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a model file, without loading its weights."""
    from safetensors import safe_open

    p = Path(path)
    _check_container(p)
    try:
        with safe_open(str(p), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_META_KEY)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{p} is damaged or not a safetensors file ({exc})") from exc
    if raw is None:
        raise ModelFileError(f"{p} is a safetensors file but not a napari-nevseg model (no metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{p} has unreadable metadata ({exc})") from exc
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise ModelFileError(f"{p} metadata lacks {', '.join(missing)}; re-export the model")
    if meta["arch"] not in ARCHITECTURES:
        raise ModelFileError(
            f"{p} names architecture {meta['arch']!r}, which this version does not have "
            f"({', '.join(sorted(ARCHITECTURES))}); update napari-nevseg or use another model"
        )
    return meta


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a model file describes and load its weights (eval mode)."""
    from safetensors.torch import load_file

    p = Path(path)
    meta = read_metadata(p)
    try:
        model = build_model(meta["arch"], meta["arch_params"])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{p} has architecture parameters this version cannot build ({exc})") from exc
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:
        raise ModelFileError(f"{p} has damaged weights ({exc}); download or export it again") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(f"{p}: the weights do not match the architecture in its metadata ({first})") from exc
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise ModelFileError(f"{p} has weights that are NaN or infinite; it cannot be used")
    return model.to(device).eval(), meta
