"""A second look at the lesion an automatic mask found: the network run once more in a window
around it, as a click's focus step does (:mod:`~napari_nevseg.core.window`), with no click.

The first pass sees the whole photo at the working resolution, where a lesion that is a few per
cent of a large photo is a few dozen pixels wide. The window around the first pass's lesion
(its bounding box widened by ``margin`` of its size on each side, then as a box's focus window)
is resampled to the working resolution too, so the second pass draws the outline from several
times more of the lesion's pixels. It runs only where the window sees the lesion at
``min_gain`` times the first pass's linear resolution or more: an image already at the working
size (the shared ISIC copies) has no more pixels to show, and a second pass there only costs.
Inside the widened box the second pass's probabilities replace the first's; then the mask is
thresholded and cleaned up as always.

On the 137 DermQuest photos the shipped model's automatic Dice went from 0.855 to 0.872 with
it, PH2 and ISIC validation unchanged (docs/experiments.md, "A second look at small lesions
in big photos"). A model takes the second look only where its metadata says so
(``"second_look": {"margin": ..., "min_gain": ...}``), so older model files predict as before,
and a fine-tuned version inherits its parent's setting with the rest of its metadata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from napari_nevseg.core.errors import ModelFileError
from napari_nevseg.core.window import Window, focus_window, resolution_gain

__all__ = ["SecondLookSettings", "SecondLook", "plan_second_look", "look_again", "paste_second_look"]


@dataclass(frozen=True)
class SecondLookSettings:
    """How far the box around the first pass's lesion is widened, and the least resolution
    gain that earns a second pass (values chosen in docs/experiments.md)."""

    margin: float = 0.1
    min_gain: float = 1.5

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> SecondLookSettings | None:
        """The model's setting (``None``: the model takes no second look)."""
        raw = meta.get("second_look")
        if not raw:
            return None
        try:
            settings = cls(float(raw["margin"]), float(raw["min_gain"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"the model file's second_look setting {raw!r} is not readable: {exc}") from None
        if not (0.0 <= settings.margin <= 1.0 and 1.0 <= settings.min_gain <= 100.0):
            raise ModelFileError(f"the model file's second_look setting {raw!r} is out of range")
        return settings

    def to_meta(self) -> dict[str, float]:
        return {"margin": self.margin, "min_gain": self.min_gain}

    @classmethod
    def parse(cls, text: str) -> SecondLookSettings | None:
        """A command line's ``"0.1,1.5"`` (margin, least gain), or ``"none"``: without."""
        if text == "none":
            return None
        margin, min_gain = (float(v) for v in text.split(","))
        return cls(margin, min_gain)


@dataclass(frozen=True)
class SecondLook:
    """Where a second pass looked (``window``, full-image pixels, ends excluded), the region
    whose pixels it decides (``box``) and its working-resolution probabilities (``low``)."""

    window: Window
    box: Window
    low: torch.Tensor | None = None


def plan_second_look(
    low: torch.Tensor | np.ndarray, hw: tuple[int, int], threshold: float, settings: SecondLookSettings
) -> SecondLook | None:
    """The window and box of a second look at the first pass's largest region, or ``None``
    when there is no region or the window would not see it at ``settings.min_gain`` times the
    first pass's resolution."""
    first = np.asarray(torch.as_tensor(low, dtype=torch.float32) > threshold)
    labels, count = ndimage.label(first)
    if count == 0:
        return None
    largest = 1 + int(np.argmax(ndimage.sum_labels(first, labels, index=range(1, count + 1))))
    rows, cols = ndimage.find_objects(labels)[largest - 1]
    (work_h, work_w), (h, w) = first.shape, hw
    r0, r1 = rows.start * h / work_h, rows.stop * h / work_h
    c0, c1 = cols.start * w / work_w, cols.stop * w / work_w
    dr, dc = (r1 - r0) * settings.margin, (c1 - c0) * settings.margin
    box = (max(0, math.floor(r0 - dr)), max(0, math.floor(c0 - dc)), min(h, math.ceil(r1 + dr)), min(w, math.ceil(c1 + dc)))
    window = focus_window(hw, (work_h, work_w), None, [], box)
    if resolution_gain(hw, (work_h, work_w), window) < settings.min_gain:
        return None
    return SecondLook(window, box)


def look_again(predictor, images: Sequence[np.ndarray], lows: Sequence[torch.Tensor]) -> list[SecondLook | None]:
    """The second looks for RGB ``images`` whose first pass through ``predictor`` (a
    :class:`~napari_nevseg.core.inference.Predictor`) gave ``lows``: one batch through the
    network for those that earn one, ``None`` for the others (and for every image when the model
    takes no second look). The lesion is located at the model's threshold. On a GPU out of
    memory the first pass's masks stand."""
    looks: list[SecondLook | None] = [None] * len(images)
    settings = predictor.second_look
    if settings is None:
        return looks
    for i, (rgb, low) in enumerate(zip(images, lows, strict=True)):
        looks[i] = plan_second_look(low, rgb.shape[:2], predictor.threshold, settings)
    chosen = [(i, look) for i, look in enumerate(looks) if look is not None]
    if not chosen:
        return looks
    crops = [np.ascontiguousarray(images[i][look.window[0] : look.window[2], look.window[1] : look.window[3]])
             for i, look in chosen]
    try:
        seen = predictor.low_res_probabilities(crops, tta=1)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return [None] * len(images)
    for (i, look), low in zip(chosen, seen, strict=True):
        looks[i] = replace(look, low=low)
    return looks


def paste_second_look(full: torch.Tensor, look: SecondLook) -> torch.Tensor:
    """``full`` (the first pass's probabilities at the image's size) with the second look's
    probabilities inside its box."""
    assert look.low is not None
    top, left, bottom, right = look.window
    seen = F.interpolate(torch.as_tensor(look.low, dtype=torch.float32)[None, None], size=(bottom - top, right - left),
                         mode="bilinear", align_corners=False)[0, 0]
    r0, c0, r1, c1 = look.box
    out = full.clone()
    out[r0:r1, c0:c1] = seen[r0 - top : r1 - top, c0 - left : c1 - left]
    return out
