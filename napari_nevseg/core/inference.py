"""From RGB images to full-resolution lesion masks.

The network sees the whole field of view at the model's working resolution (a lesion is one
object whose outline needs global context, so no tiles); its probabilities are interpolated
back to the image's own size, thresholded and cleaned up there.

Speed (each choice measured in docs/benchmarks.md, "What the CPU speed work bought"):

- The network runs as an inference copy of the model: BatchNorm folded into the convolution
  before it, channels-last memory layout on the CPU and CUDA, bfloat16 autocast on CUDA and on
  CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX). ``Predictor.model`` stays the
  model as loaded (fine-tuning starts from it).
- The clean-up runs on the lesion's bounding box (plus the smoothing radius) instead of the
  whole image, and holes are filled by labelling the background once. Both give exactly the
  mask the clean-up gives on the whole image, except on masks of millions of pixels (from
  about 1600x1000), cleaned on a coarser grid to within a pixel or two of it
  (:func:`~napari_nevseg.core.postprocess.clean_mask`).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_nevseg.core.clicks import GUIDANCE_CHANNELS, ClickSettings
from napari_nevseg.core.convert import to_rgb_uint8
from napari_nevseg.core.data import resize_rgb
from napari_nevseg.core.postprocess import Cleanup, clean_mask
from napari_nevseg.core.second_look import SecondLook, SecondLookSettings, look_again, paste_second_look
from napari_nevseg.core.traced import TracedNetwork

__all__ = [
    "Prediction", "Predictor", "uncertainty", "fold_batchnorm", "cpu_has_bf16", "prefers_channels_last",
    "TTA_FLIPS", "UPRIGHT_TTA",
]

log = logging.getLogger(__name__)

#: test-time flips (dims of an ``(N, C, H, W)`` batch) in the order a model's ``tta`` count
#: takes them: the identity, left-right, upside down, both
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))
#: the most flips a model with an up (trained without rotations) may use: none upside down
UPRIGHT_TTA = 2
#: on the CPU, flipped copies up to this many go through the network in one pass (few images: a
#: lone image runs faster as one batch of 4 than as 4 batches of 1; more would only cost memory)
_STACKED_FLIPS = 8

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Prediction:
    """A full-size ``mask`` (bool), optionally the full-size ``probability`` (float32 in
    [0, 1]), the working-resolution probability and the model's ``uncertainty`` (see
    :func:`uncertainty`). After clicks or a box, ``region`` ``(row0, col0, row1, col1)`` (ends
    excluded) is the part of the image the prediction changed: outside it the mask is the prior."""

    mask: np.ndarray
    probability: np.ndarray | None
    low_res_probability: np.ndarray
    uncertainty: float
    region: tuple[int, int, int, int] | None = None


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


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where the CPU does bfloat16 arithmetic natively (x86 AVX512-BF16 or AMX-BF16).

    Elsewhere bfloat16 is emulated and slower than float32, so the CPU stays in float32.
    ``NEVSEG_CPU_BF16=0`` (or ``1``) overrides the detection.
    """
    forced = os.environ.get("NEVSEG_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags) and torch.backends.mkldnn.is_available()
    except OSError:
        pass
    return False


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm that directly follows a convolution
    (in the same ``nn.Sequential``) folded into that convolution's weights and bias.

    The same function in fewer operations: one pass over each feature map less.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()

    def walk(module: nn.Module) -> None:
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:], strict=False):
                conv, norm = module._modules[first], module._modules[second]
                if (
                    isinstance(conv, nn.Conv2d)
                    and type(norm) is nn.BatchNorm2d
                    and norm.track_running_stats
                    and norm.running_mean is not None
                ):
                    module._modules[first] = fuse_conv_bn_eval(conv, norm)
                    module._modules[second] = nn.Identity()
        for child in module.children():
            walk(child)

    walk(folded)
    return folded


def prefers_channels_last(device: torch.device, model: nn.Module) -> bool:
    """Whether ``model`` runs faster in channels-last layout on ``device``: on CUDA always; on
    the CPU only for BatchNorm networks, whose folded convolutions the channels-last kernels
    speed up, while instance-normalised ones lose more in the normalisation than they gain
    (docs/benchmarks.md, ``benchmarks/cpu_speed_ab.py``).
    """
    if device.type == "cuda":
        return True
    return device.type == "cpu" and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


class Predictor:
    """Runs one model on images; the core of ``nevseg predict`` and the widgets.

    ``precision``: ``"auto"`` (bfloat16 autocast on CUDA and on CPUs with native bfloat16,
    float32 elsewhere), ``"fp32"`` or ``"bf16"``.

    Not thread-safe by itself: :class:`~napari_nevseg.core.session.ModelSession` serialises use.
    """

    def __init__(
        self, model: nn.Module, meta: dict[str, Any], device: torch.device, *, precision: str = "auto"
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.device = torch.device(device)
        self.meta = meta
        self.work_hw: tuple[int, int] = tuple(meta["work_size"])  # type: ignore[assignment]
        norm = meta["normalization"]
        self._mean = torch.tensor(norm["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(norm["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        #: how the model takes clicks (``None``: a model without clicks, 3 input channels)
        self.clicks: ClickSettings | None = ClickSettings.from_meta(meta)
        self.threshold: float = float(meta.get("threshold", 0.5))
        self.tta: int = int(meta.get("tta", 1))
        #: whether and when automatic masks get a second pass around their lesion (``None``: never)
        self.second_look: SecondLookSettings | None = SecondLookSettings.from_meta(meta)
        self.precision = precision
        #: channels-last layout for the network (see :func:`prefers_channels_last`)
        self.channels_last: bool = prefers_channels_last(self.device, model)
        #: the network a click runs, traced on the CPU (see :mod:`~napari_nevseg.core.traced`)
        self._guided_net = TracedNetwork()
        self.model = model

    # the model as loaded, and the inference copy the network actually runs
    @property
    def model(self) -> nn.Module:
        return self._model

    @model.setter
    def model(self, model: nn.Module) -> None:
        self._model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self._model = self._model.to(memory_format=torch.channels_last)
        self._net = self._inference_copy(self._model)

    def _inference_copy(self, model: nn.Module) -> nn.Module:
        net = fold_batchnorm(model)  # the same function in one pass less over each feature map
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast type the network runs in (``None``: float32)."""
        if self.device.type not in ("cpu", "cuda"):
            return None
        if self.precision == "bf16":
            return torch.bfloat16
        if self.precision == "fp32":
            return None
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The normalised network input ``(N, 3, H, W)`` of RGB images at the working size, on
        the model's device, in the layout the network runs fastest in: what :meth:`forward`
        takes (public so that benchmarks time the network alone on exactly this input)."""
        arrays = np.stack([resize_rgb(to_rgb_uint8(im), self.work_hw) for im in images])
        tensor = torch.from_numpy(arrays)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        x = tensor.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        if self.clicks is not None:  # automatic mode: every guidance channel empty
            x = torch.cat([x, x.new_zeros(x.shape[0], len(GUIDANCE_CHANNELS), *x.shape[-2:])], dim=1)
        # the permute above leaves the pixels in channels-last order: choose the layout here
        # (an NCHW network fed channels-last strides runs much slower: docs/benchmarks.md)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised ``(N, 3, H, W)`` batch, through the inference copy."""
        dtype = self.amp_dtype
        if dtype is None:
            return self._net(x).float()
        with torch.autocast(self.device.type, dtype=dtype):
            return self._net(x).float()

    @torch.inference_mode()
    def low_res_probabilities(self, images: Sequence[np.ndarray], tta: int | None = None) -> torch.Tensor:
        """``(N, H_work, W_work)`` float32 CPU probabilities, averaged over ``tta`` flips
        (1: none, 2: + horizontal flip, 4: + vertical and both)."""
        x = self.batch(images)
        flips = TTA_FLIPS[: max(1, tta or self.tta)]
        if self.device.type == "cpu" and len(flips) > 1 and len(x) * len(flips) <= _STACKED_FLIPS:
            # one pass over every flip: a lone PH2 image took 39 ms as a batch of 4 against
            # 57 ms as 4 batches of 1 (2 CPU cores), the same probabilities. On the CPU only,
            # where it was measured: on a GPU, a lone image's out-of-memory fallback must still
            # be able to try a pass of one before moving the model to the CPU
            layout = torch.channels_last if self.channels_last else torch.contiguous_format
            xin = torch.cat([torch.flip(x, dims) if dims else x for dims in flips]).contiguous(memory_format=layout)
            probs = torch.sigmoid(self.forward(xin)).split(len(x))
        else:
            probs = tuple(torch.sigmoid(self.forward(torch.flip(x, dims) if dims else x)) for dims in flips)
        total = None
        for dims, prob in zip(flips, probs, strict=True):
            prob = torch.flip(prob, dims) if dims else prob
            total = prob if total is None else total + prob
        assert total is not None
        return (total / len(flips))[:, 0].to("cpu").contiguous()

    @torch.inference_mode()
    def guided_probability(self, rgb_work: np.ndarray, guidance: torch.Tensor | None) -> torch.Tensor:
        """``(H_work, W_work)`` probabilities of one uint8 RGB image already at working size,
        with guidance channels ``(1, 3, H_work, W_work)`` for a click model (no flips: a click's
        answer must come fast)."""
        x = torch.from_numpy(np.array(rgb_work, dtype=np.uint8, order="C")).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        x = (x - self._mean) / self._std
        if self.clicks is not None:
            g = guidance if guidance is not None else x.new_zeros(1, len(GUIDANCE_CHANNELS), *x.shape[-2:])
            x = torch.cat([x, g.to(self.device, torch.float32)], dim=1)
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        if self.device.type == "cpu":  # one call without the GIL, beside a viewer's painting
            logits = self._guided_net(self._net, x, self.amp_dtype).float()
        else:
            logits = self.forward(x)
        return torch.sigmoid(logits)[0, 0].to("cpu")

    def warm_guided(self) -> None:
        """Make the click path's traced network now (a third of a second on 2 cores), so that
        the first click does not pay for it."""
        if self.clicks is not None:
            self.guided_probability(np.zeros((*self.work_hw, 3), np.uint8), None)

    def finish(
        self,
        low_res: np.ndarray | torch.Tensor,
        out_hw: tuple[int, int],
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
        look: SecondLook | None = None,
    ) -> Prediction:
        """Upsample a working-resolution probability map to ``out_hw`` (with a second look's
        probabilities inside its box, from :meth:`look_again`), threshold, clean up."""
        t = self.threshold if threshold is None else float(threshold)
        low = torch.as_tensor(low_res, dtype=torch.float32)
        full = F.interpolate(low[None, None], size=tuple(out_hw), mode="bilinear", align_corners=False)[0, 0]
        if look is not None:
            full = paste_second_look(full, look)
        mask = clean_mask((full > t).numpy(), cleanup)
        prob = full.numpy() if return_probability else None
        return Prediction(mask, prob, low.numpy(), uncertainty(low, t))

    def predict(
        self,
        image: np.ndarray,
        threshold: float | None = None,
        cleanup: Cleanup = Cleanup(),
        return_probability: bool = False,
        on_fallback: Callable[[str], None] | None = None,
    ) -> Prediction:
        """Full-size mask of one image (any size, grey or colour, any pixel type).

        A GPU out-of-memory error moves the model to the CPU and tells ``on_fallback``.
        """
        rgb = to_rgb_uint8(image)
        low = self.low_res_with_fallback([rgb], on_fallback)[0]
        look = self.look_again([rgb], [low])[0]
        return self.finish(low, rgb.shape[:2], threshold, cleanup, return_probability, look)

    def look_again(self, images: Sequence[np.ndarray], lows: Sequence[torch.Tensor]) -> list[SecondLook | None]:
        """The second looks (:func:`~napari_nevseg.core.second_look.look_again`) of ``images``
        whose first pass gave ``lows``. Run it where the first pass runs (under the session's
        lock): it is a pass of the network too."""
        return look_again(self, images, lows)

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
        lows = self.low_res_with_fallback(batch, on_fallback)
        looks = self.look_again(batch, lows)
        for rgb, low, look in zip(batch, lows, looks, strict=True):
            yield self.finish(low, rgb.shape[:2], threshold, cleanup, return_probability, look)

    def low_res_with_fallback(self, batch: list[np.ndarray], on_fallback=None) -> list[torch.Tensor]:
        """:meth:`low_res_probabilities`, halving the batch, then using the CPU, when the GPU
        runs out of memory; ``on_fallback`` receives a sentence for the user each time."""
        try:
            return list(self.low_res_probabilities(batch))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(batch) > 1:
                half = len(batch) // 2
                if on_fallback:
                    on_fallback(f"GPU memory is short: predicting {half} images at a time")
                return self.low_res_with_fallback(batch[:half], on_fallback) + self.low_res_with_fallback(
                    batch[half:], on_fallback
                )
            if on_fallback:
                on_fallback("GPU memory is short: this image is predicted on the CPU")
            self.to_device(torch.device("cpu"))
            return list(self.low_res_probabilities(batch))

    def to_device(self, device: torch.device) -> None:
        """Move the model (used by the out-of-memory fallback)."""
        self.device = torch.device(device)
        self.channels_last = prefers_channels_last(self.device, self._model)
        self._mean, self._std = self._mean.to(self.device), self._std.to(self.device)
        self.model = self._model.to("cpu", memory_format=torch.contiguous_format)
