"""The one object that owns the loaded model, its device and its version.

Widgets share a ModelSession (the dock widgets get it from the viewer-scoped registry in
``widgets/_shared.py``); nothing here is a global. Prediction is serialised with a lock so two
workers never run the same model at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.device import select_device
from napari_nevseg.core.inference import Prediction, Predictor
from napari_nevseg.core.postprocess import Cleanup

__all__ = ["ModelSession", "default_model_path", "resolve_model_path"]


def default_model_path() -> Path:
    """The shipped default model inside the package."""
    return Path(str(resources.files("napari_nevseg") / "models" / "default.safetensors"))


def resolve_model_path(spec: str | os.PathLike[str]) -> Path:
    """``"default"`` means the shipped model; anything else is a path."""
    return default_model_path() if str(spec) == "default" else Path(spec)


class ModelSession:
    """A loaded model on a device, with its metadata and version name."""

    def __init__(self, model: nn.Module, meta: dict[str, Any], device: torch.device, version: str) -> None:
        self.meta = meta
        self.version = version
        self.predictor = Predictor(model, meta, device)
        self.lock = threading.Lock()

    @classmethod
    def load(cls, spec: str | os.PathLike[str] = "default", device: str = "auto", version: str | None = None) -> ModelSession:
        """Load ``"default"`` or a model file onto ``device`` (``auto``: CUDA, MPS, CPU)."""
        dev = select_device(device)
        path = resolve_model_path(spec)
        model, meta = load_model(path, dev)
        name = version or ("default" if str(spec) == "default" else meta.get("version") or path.stem)
        return cls(model, meta, dev, name)

    @property
    def model(self) -> nn.Module:
        return self.predictor.model

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    def predict(
        self,
        image: np.ndarray,
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
        on_fallback: Callable[[str], None] | None = None,
    ) -> Prediction:
        """Thread-safe :meth:`Predictor.predict`."""
        with self.lock:
            return self.predictor.predict(image, threshold, cleanup, return_probability, on_fallback)

    def cpu_copy(self) -> tuple[nn.Module, dict[str, Any]]:
        """A CPU copy of the model and its metadata, the starting point of a fine-tune."""
        import copy

        with self.lock:
            model = copy.deepcopy(self.predictor.model).to("cpu", memory_format=torch.contiguous_format)
        return model, dict(self.meta, version=self.version)
