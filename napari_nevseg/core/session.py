"""The one object that owns the loaded model, its device and its version.

The widgets' controller holds one ModelSession; nothing here is a global. Prediction is
serialised with a lock so two workers never run the same model at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_nevseg.core.checkpoint import load_model, weights_digest
from napari_nevseg.core.content_hash import file_sha256
from napari_nevseg.core.device import select_device
from napari_nevseg.core.inference import Prediction, Predictor
from napari_nevseg.core.interactive import predict_guided
from napari_nevseg.core.postprocess import Cleanup

__all__ = ["ModelSession", "default_model_path", "resolve_model_path"]

#: after a person last clicked (or armed clicks), a project prediction keeps its network passes
#: short for this many seconds, so the next click waits behind two images, not a whole batch
INTERACTIVE_GRACE_S = 30.0
#: images per network pass of a bulk job while a person is clicking
INTERACTIVE_PASS = 2


def default_model_path() -> Path:
    """The shipped default model inside the package."""
    return Path(str(resources.files("napari_nevseg") / "models" / "default.safetensors"))


def resolve_model_path(spec: str | os.PathLike[str]) -> Path:
    """``"default"`` means the shipped model; anything else is a path."""
    return default_model_path() if str(spec) == "default" else Path(spec)


class ModelSession:
    """A loaded model on a device, with its metadata and version name."""

    def __init__(
        self, model: nn.Module, meta: dict[str, Any], device: torch.device, version: str,
        content_hash: str | None = None,
    ) -> None:
        self.meta = meta
        self.version = version
        self.predictor = Predictor(model, meta, device)
        self.lock = threading.Lock()
        self._content_hash = content_hash
        self._interactive_at = -math.inf

    def note_interaction(self) -> None:
        """A person is clicking, or has just armed clicks: bulk jobs shorten their passes."""
        self._interactive_at = time.monotonic()

    def bulk_pass(self, wanted: int) -> int:
        """How many images the widget's project prediction may send through the network in one
        hold of :attr:`lock`: all ``wanted``, which runs fastest (on 2 CPU cores a project
        predicted 2 images per pass took 1.4x as long as 8 per pass), unless a person clicked or
        armed clicks in the last :data:`INTERACTIVE_GRACE_S` seconds: then
        :data:`INTERACTIVE_PASS`, so while someone is clicking a click waits behind two images
        at most. The first click after a longer pause may wait behind one whole pass."""
        recent = time.monotonic() - self._interactive_at < INTERACTIVE_GRACE_S
        return max(1, min(wanted, INTERACTIVE_PASS) if recent else wanted)

    @property
    def supports_clicks(self) -> bool:
        """Whether the model takes clicks (RGB plus guidance channels); older models do not."""
        return self.predictor.clicks is not None

    @property
    def content_hash(self) -> str:
        """SHA-256 naming the model by its content: of the file's bytes when loaded from a file,
        else of the weights and the metadata (minus its creation date), so a project can record
        which model made a mask even after "default" comes to mean another one."""
        if self._content_hash is None:
            with self.lock:
                state = self.predictor.model.state_dict()
                meta = {k: v for k, v in self.meta.items() if k not in ("created", "weights_sha256")}
                digest = hashlib.sha256(weights_digest(state).encode())
                digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
                self._content_hash = digest.hexdigest()
        return self._content_hash

    @classmethod
    def load(cls, spec: str | os.PathLike[str] = "default", device: str = "auto", version: str | None = None) -> ModelSession:
        """Load ``"default"`` or a model file onto ``device`` (``auto``: CUDA, MPS, CPU)."""
        dev = select_device(device)
        path = resolve_model_path(spec)
        model, meta = load_model(path, dev)
        name = version or ("default" if str(spec) == "default" else meta.get("version") or path.stem)
        return cls(model, meta, dev, name, content_hash=file_sha256(path))

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
        *,
        clicks: Sequence[tuple[float, float, bool]] | None = None,
        box: tuple[float, float, float, float] | None = None,
        prior: np.ndarray | None = None,
    ) -> Prediction:
        """The full-size mask of ``image``, automatic or guided (thread-safe).

        ``clicks``: ``[(row, col, positive), ...]`` in full-image pixels (floats are rounded to
        the nearest pixel; a click outside the image raises ValueError); ``box``:
        ``(row0, col0, row1, col1)``; ``prior``: the mask the user sees (bool or 0/1, the image's
        height and width; ``None``: the automatic mask). No clicks and no box give the
        automatic prediction, or ``prior`` unchanged. Otherwise the network is re-run in a window
        around the clicked object (:mod:`~napari_nevseg.core.interactive`); outside
        ``Prediction.region`` the mask equals the prior. Clicks need :attr:`supports_clicks`.
        """
        guided = not (clicks is None and box is None and prior is None)
        if guided:
            self.note_interaction()
        with self.lock:
            if not guided:
                return self.predictor.predict(image, threshold, cleanup, return_probability, on_fallback)
            return predict_guided(self.predictor, image, clicks, box, prior, threshold, cleanup,
                                  return_probability, on_fallback)

    def warm_clicks(self) -> None:
        """Prepare the click path (its traced network) ahead of the first click; thread-safe."""
        with self.lock:
            self.predictor.warm_guided()

    def cpu_copy(self) -> tuple[nn.Module, dict[str, Any]]:
        """A CPU copy of the model and its metadata, the starting point of a fine-tune."""
        import copy

        with self.lock:
            model = copy.deepcopy(self.predictor.model).to("cpu", memory_format=torch.contiguous_format)
        return model, dict(self.meta, version=self.version)
