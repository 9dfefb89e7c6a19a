"""Model versions: the shipped default, then v1, v2, ... with parent, data, metrics and date.

Versions live in one folder (a project's ``nevseg/models``) as ``<version>.safetensors`` files,
each carrying its own metadata; ``registry.json`` lists them and names the active one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from napari_nevseg.core.atomic import atomic_write_bytes, atomic_write_text
from napari_nevseg.core.checkpoint import load_model, model_bytes, read_metadata
from napari_nevseg.core.errors import ModelFileError
from napari_nevseg.core.session import default_model_path

__all__ = ["ModelRegistry", "DEFAULT"]

DEFAULT = "default"


class ModelRegistry:
    """The versions in ``folder``; the default model is always listed first."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.entries: list[dict[str, Any]] = []
        self.active = DEFAULT
        index = self.folder / "registry.json"
        if index.exists():
            try:
                data = json.loads(index.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelFileError(f"{index} is unreadable ({exc}); move it away to rebuild it") from exc
            self.entries = [e for e in data.get("versions", []) if (self.folder / e["file"]).exists()]
            self.active = data.get("active", DEFAULT)
        if self.active not in self.versions():
            self.active = DEFAULT

    def versions(self) -> list[str]:
        return [DEFAULT] + [e["version"] for e in self.entries]

    def entry(self, version: str) -> dict[str, Any]:
        if version == DEFAULT:
            return {"version": DEFAULT, "file": str(default_model_path()), "parent": None}
        for e in self.entries:
            if e["version"] == version:
                return e
        raise ModelFileError(f"no model version {version!r}; choose one of {', '.join(self.versions())}")

    def path(self, version: str) -> Path:
        return default_model_path() if version == DEFAULT else self.folder / self.entry(version)["file"]

    def _next_version(self) -> str:
        numbers = [int(e["version"][1:]) for e in self.entries if e["version"][1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def _save(self) -> None:
        data = {"active": self.active, "versions": self.entries}
        atomic_write_text(self.folder / "registry.json", json.dumps(data, indent=1))

    def add(self, model: nn.Module, metadata: dict[str, Any], summary: dict[str, Any] | None = None) -> str:
        """Store a new version (atomically) and make it active; returns its name."""
        version = self._next_version()
        meta = {**metadata, "version": version}
        atomic_write_bytes(self.folder / f"{version}.safetensors", model_bytes(model, meta))
        self.entries.append({
            "version": version,
            "file": f"{version}.safetensors",
            "parent": metadata.get("parent"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **(summary or {}),
        })
        self.active = version
        self._save()
        return version

    def set_active(self, version: str) -> None:
        self.entry(version)
        self.active = version
        self._save()

    def import_file(self, source: str | os.PathLike[str]) -> str:
        """Check a model file fully (never unpickling), then copy it in as a new version."""
        model, meta = load_model(source, "cpu")
        return self.add(model, {**meta, "imported_from": str(source)}, {"imported_from": str(source)})

    def export(self, version: str, destination: str | os.PathLike[str]) -> Path:
        dest = Path(destination)
        if dest.suffix != ".safetensors":
            dest = dest.with_suffix(".safetensors")
        read_metadata(self.path(version))
        atomic_write_bytes(dest, self.path(version).read_bytes())
        return dest


