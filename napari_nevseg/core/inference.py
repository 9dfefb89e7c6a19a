"""From RGB images to full-resolution lesion masks.

The network sees the whole field of view at the model's working resolution (a lesion is one
object whose outline needs global context, so no tiles); its probabilities are interpolated
back to the image's own size, thresholded and cleaned up there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_nevseg.core.convert import to_rgb_uint8
from napari_nevseg.core.data import resize_rgb
from napari_nevseg.core.postprocess import Cleanup, clean_mask

__all__ = ["Prediction", "Predictor", "uncertainty"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """A full-size ``mask`` (bool), optionally the full-size ``probability`` (float32 in
    [0, 1]), the working-resolution probability and the model's ``uncertainty`` (see
    :func:`uncertainty`)."""

    mask: np.ndarray
    probability: np.ndarray | None
    low_res_probability: np.ndarray
    uncertainty: float


def uncertainty(prob: np.ndarray | torch.Tensor, threshold: float = 0.5) -> float:
    """1 - soft Dice between the probabilities and their own thresholded mask.

    0 when every pixel is certain (p is 0 or 1); it grows with the share of the lesion whose
    probability is far from 0 and 1, so it does not depend on the lesion's size. An image with
    no pixel above the threshold scores its mean probability times 2 (capped at 1).
    """
    p = torch.as_tensor(prob, dtype=torch.float32)
    hard = (p > threshold).float()
    denom = float(p.sum() + hard.sum())
    if hard.sum() == 0:
        return float(min(1.0, 2.0 * p.mean()))
    return float(1.0 - 2.0 * float((p * hard).sum()) / denom)


class Predictor:
    """Runs one model on images; the core of ``nevseg predict`` and the widgets.

    Not thread-safe by itself: :class:`~napari_nevseg.core.session.ModelSession` serialises use.
    """

    def __init__(self, model: nn.Module, meta: dict[str, Any], device: torch.device) -> None:
        self.device = device
        self.meta = meta
        self.work_hw: tuple[int, int] = tuple(meta["work_size"])  # type: ignore[assignment]
        norm = meta["normalization"]
        self._mean = torch.tensor(norm["mean"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(norm["std"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.threshold: float = float(meta.get("threshold", 0.5))
        self.tta: int = int(meta.get("tta", 1))
        self.model = model.to(device).eval()
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    def _batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        arrays = np.stack([resize_rgb(to_rgb_uint8(im), self.work_hw) for im in images])
        tensor = torch.from_numpy(arrays)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        x = tensor.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def low_res_probabilities(self, images: Sequence[np.ndarray], tta: int | None = None) -> torch.Tensor:
        """``(N, H_work, W_work)`` float32 CPU probabilities, averaged over ``tta`` flips
        (1: none, 2: + horizontal flip, 4: + vertical and both)."""
        x = self._batch(images)
        flips: list[tuple[int, ...]] = [(), (3,), (2,), (2, 3)][: max(1, tta or self.tta)]
        use_amp = self.device.type == "cuda"
        total = None
        for dims in flips:
            xin = torch.flip(x, dims) if dims else x
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = self.model(xin)
            prob = torch.sigmoid(logits.float())
            prob = torch.flip(prob, dims) if dims else prob
            total = prob if total is None else total + prob
        assert total is not None
        return (total / len(flips))[:, 0].to("cpu")

    def finish(
        self,
        low_res: np.ndarray | torch.Tensor,
        out_hw: tuple[int, int],
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
    ) -> Prediction:
        """Upsample a working-resolution probability map to ``out_hw``, threshold, clean up."""
        t = self.threshold if threshold is None else float(threshold)
        low = torch.as_tensor(low_res, dtype=torch.float32)
        full = F.interpolate(low[None, None], size=tuple(out_hw), mode="bilinear", align_corners=False)[0, 0]
        mask = clean_mask((full > t).numpy(), cleanup)
        prob = full.numpy() if return_probability else None
        return Prediction(mask, prob, low.numpy(), uncertainty(low, t))

    def predict(
        self,
        image: np.ndarray,
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
    ) -> Prediction:
        """Full-size mask of one image (any size, grey or colour, any pixel type)."""
        rgb = to_rgb_uint8(image)
        low = self.low_res_probabilities([rgb])[0]
        return self.finish(low, rgb.shape[:2], threshold, cleanup, return_probability)

    def predict_many(
        self,
        images: Sequence[np.ndarray] | Iterator[np.ndarray],
        batch_size: int = 8,
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
        on_fallback: Callable[[str], None] | None = None,
    ) -> Iterator[Prediction]:
        """Predictions for many images, ``batch_size`` at a time through the network.

        On a GPU out-of-memory error the batch is halved, then the CPU takes over;
        ``on_fallback`` is told each time (the widget turns it into a notification).
        """
        pending: list[np.ndarray] = []
        for image in images:
            pending.append(to_rgb_uint8(image))
            if len(pending) >= batch_size:
                yield from self._run(pending, batch_size, threshold, cleanup, return_probability, on_fallback)
                pending = []
        if pending:
            yield from self._run(pending, batch_size, threshold, cleanup, return_probability, on_fallback)

    def _run(self, batch, batch_size, threshold, cleanup, return_probability, on_fallback):
        lows = self._low_res_with_fallback(batch, on_fallback)
        for rgb, low in zip(batch, lows):
            yield self.finish(low, rgb.shape[:2], threshold, cleanup, return_probability)

    def _low_res_with_fallback(self, batch: list[np.ndarray], on_fallback) -> list[torch.Tensor]:
        try:
            return list(self.low_res_probabilities(batch))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(batch) > 1:
                half = len(batch) // 2
                if on_fallback:
                    on_fallback(f"GPU memory is short: predicting {half} images at a time")
                return self._low_res_with_fallback(batch[:half], on_fallback) + self._low_res_with_fallback(
                    batch[half:], on_fallback
                )
            if on_fallback:
                on_fallback("GPU memory is short: this image is predicted on the CPU")
            self.to_device(torch.device("cpu"))
            return list(self.low_res_probabilities(batch))

    def to_device(self, device: torch.device) -> None:
        """Move the model (used by the out-of-memory fallback)."""
        self.device = device
        self.model = self.model.to(device)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
