"""Model files: one safetensors file, its metadata as JSON in the header.

Loading never unpickles anything: a pickle-based ``.pt``/``.pth`` file is recognised by its
first bytes and refused before any of it is interpreted.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
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

__all__ = ["FORMAT", "save_model", "load_model", "read_metadata", "model_bytes", "weights_digest"]

FORMAT = "napari-nevseg-model/1"
_META_KEY = "nevseg"
_MAX_HEADER = 100 * 1024 * 1024
_REQUIRED = ("arch", "arch_params", "work_size", "normalization")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, types, shapes and bytes (independent of the file layout).

    Stored in the metadata as ``weights_sha256``; safetensors itself has no checksum, so this is
    what detects weights altered or damaged after saving.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_bytes(model: nn.Module, metadata: dict[str, Any]) -> bytes:
    """The safetensors bytes of ``model`` with ``metadata`` (format, date, version and the
    weights' checksum filled in)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "created": _now(), "package_version": __version__, **metadata}
    meta["weights_sha256"] = weights_digest(tensors)
    return save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


def save_model(path: str | os.PathLike[str], model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write a self-contained model file atomically."""
    return atomic_write_bytes(path, model_bytes(model, metadata))


def _check_container(path: Path) -> None:
    """Refuse anything that is not a safetensors container before any parser sees it.

    The safetensors layout (8-byte little-endian header length, then a JSON object) is checked
    first: a header length whose low byte happens to be 0x80 or 0x50 0x4B must not be taken for
    a pickle or zip signature.
    """
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 2 <= header_len <= min(_MAX_HEADER, size - 8):
            return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise ModelFileError(
            f"{path} is a pickle-based PyTorch file; it was not opened because loading it could "
            "run code. Use a napari-nevseg .safetensors model file"
        )
    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes); download or export the model again")
    if len(head) < 9:
        raise ModelFileError(f"{path} is too short to be a model file (truncated?)")
    raise ModelFileError(f"{path} is not a safetensors model file (or it is truncated)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_fields(p: Path, meta: Any) -> None:
    if not isinstance(meta, dict):
        raise ModelFileError(f"{p} has metadata that is not a JSON object; re-export the model")
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise ModelFileError(f"{p} metadata lacks {', '.join(missing)}; re-export the model")
    if not isinstance(meta["arch"], str):
        raise ModelFileError(f"{p} metadata: 'arch' must be a name such as 'unet'")
    if not isinstance(meta["arch_params"], dict):
        raise ModelFileError(f"{p} metadata: 'arch_params' must be a JSON object of constructor arguments")
    size = meta["work_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 8 <= v <= 8192 for v in size)):
        raise ModelFileError(f"{p} metadata: 'work_size' must be [height, width] in pixels, got {size!r}")
    norm = meta["normalization"]
    ok = isinstance(norm, dict) and all(
        isinstance(norm.get(k), list) and len(norm[k]) == 3 and all(_is_number(v) for v in norm[k])
        for k in ("mean", "std")
    )
    if not ok or not all(v > 0 for v in norm["std"]):
        raise ModelFileError(
            f"{p} metadata: 'normalization' must be {{mean: [3 numbers], std: [3 positive numbers]}}"
        )


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
    _check_fields(p, meta)
    if meta["arch"] not in ARCHITECTURES:
        raise ModelFileError(
            f"{p} names architecture {meta['arch']!r}, which this version does not have "
            f"({', '.join(sorted(ARCHITECTURES))}); update napari-nevseg or use another model"
        )
    return meta


def _header_shapes(p: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as handle:
            return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{p} is damaged or not a safetensors file ({exc})") from exc


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a model file describes and load its weights (eval mode).

    The architecture is first built without memory (``meta`` device) and its tensor shapes
    compared with the file's, so absurd metadata cannot allocate gigabytes; the weights'
    checksum (``weights_sha256``, written by :func:`model_bytes`) is verified when present.
    """
    from safetensors.torch import load_file

    p = Path(path)
    meta = read_metadata(p)
    try:
        with torch.device("meta"):
            skeleton = build_model(meta["arch"], meta["arch_params"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p} has architecture parameters this version cannot build ({exc})") from exc
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = _header_shapes(p)
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise ModelFileError(
            f"{p}: the weights do not match the architecture in its metadata "
            f"({meta['arch']} {meta['arch_params']}; {detail})"
        )
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:
        raise ModelFileError(f"{p} has damaged weights ({exc}); download or export it again") from exc
    stored = meta.get("weights_sha256")
    if stored is not None and stored != weights_digest(state):
        raise ModelFileError(
            f"{p} has damaged weights (their checksum does not match the one saved with them); "
            "download or export the model again"
        )
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise ModelFileError(f"{p} has weights that are NaN or infinite; it cannot be used")
    try:
        model = build_model(meta["arch"], meta["arch_params"])
        model.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(f"{p}: the weights do not match the architecture in its metadata ({first})") from exc
    return model.to(device).eval(), meta
