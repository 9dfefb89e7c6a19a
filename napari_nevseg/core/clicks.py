"""Clicks as network input, and the simulated annotator's next click.

A click model takes three guidance channels after RGB (:data:`GUIDANCE_CHANNELS`): positive
clicks and negative clicks, each drawn as a disk of ``radius`` pixels at the working resolution
(the resolution the network sees, so a click covers the same share of what the network sees at
any image size), and the previous mask (0/1). All three empty is the automatic mode. The model
file records this as ``meta["clicks"] = {"encoding": "disk", "radius": ..., "channels": [...]}``
and ``meta["in_channels"] = 6``.

Disks rather than distance maps: RITM (Sofiiuk et al., 2022) found disks the better encoding,
and a disk is cheap to draw for a batch on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from napari_nevseg.core.errors import ModelFileError

__all__ = [
    "GUIDANCE_CHANNELS", "Click", "ClickSettings", "click_maps", "guidance_tensor", "next_click", "check_clicks",
]

GUIDANCE_CHANNELS = ("positive", "negative", "prior")

#: ``(row, col, positive)``
Click = tuple[int, int, bool]


@dataclass(frozen=True)
class ClickSettings:
    """How a click model encodes its guidance (stored in the model file)."""

    radius: float = 5.0
    encoding: str = "disk"

    def to_meta(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "radius": self.radius, "channels": list(GUIDANCE_CHANNELS)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ClickSettings | None:
        """The settings of a click model, ``None`` for a model without clicks (3 channels)."""
        in_channels = int(meta.get("in_channels", meta.get("arch_params", {}).get("in_channels", 3)))
        clicks = meta.get("clicks")
        if in_channels == 3 and clicks is None:
            return None
        ok = (
            isinstance(clicks, dict) and clicks.get("encoding") == "disk"
            and list(clicks.get("channels", [])) == list(GUIDANCE_CHANNELS)
            and isinstance(clicks.get("radius"), (int, float)) and clicks["radius"] > 0
            and in_channels == 3 + len(GUIDANCE_CHANNELS)
        )
        if not ok:
            raise ModelFileError(
                f"the model has {in_channels} input channels and click settings {clicks!r}: expected 6 channels "
                f"with {{encoding: 'disk', radius: > 0, channels: {list(GUIDANCE_CHANNELS)}}}"
            )
        return cls(radius=float(clicks["radius"]))


def click_maps(points: torch.Tensor, hw: tuple[int, int], radius: float) -> torch.Tensor:
    """Positive and negative disk maps ``(N, 2, H, W)`` float32 from ``points (N, K, 3)`` of
    ``(row, col, sign)`` at the working resolution; sign +1 positive, -1 negative, 0 unused."""
    n = points.shape[0]
    h, w = hw
    device = points.device
    out = torch.zeros(n, 2, h, w, device=device)
    if points.shape[1] == 0:
        return out
    rows = torch.arange(h, device=device, dtype=torch.float32).view(1, 1, h, 1)
    cols = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, 1, w)
    py = points[..., 0].float().view(n, -1, 1, 1)
    px = points[..., 1].float().view(n, -1, 1, 1)
    inside = (rows - py) ** 2 + (cols - px) ** 2 <= radius**2  # (N, K, H, W)
    sign = points[..., 2].view(n, -1, 1, 1)
    out[:, 0] = (inside & (sign > 0)).any(dim=1).float()
    out[:, 1] = (inside & (sign < 0)).any(dim=1).float()
    return out


def _disk_maps(clicks: Sequence[tuple[float, float, bool]], hw: tuple[int, int], radius: float) -> np.ndarray:
    """:func:`click_maps` of one image, ``(2, H, W)`` float32, each disk drawn in its own
    bounding square: the same pixels (the same float32 test) at a few microseconds a click,
    where the batched tensor version costs tens of milliseconds on a busy two-core CPU."""
    h, w = hw
    out = np.zeros((2, h, w), np.float32)
    r2 = np.float32(radius**2)  # as torch compares with radius**2: squared in double, then float32
    reach = int(np.ceil(radius)) + 1
    for row, col, positive in clicks:
        py, px = np.float32(row), np.float32(col)
        r0, r1 = max(0, int(np.floor(py)) - reach), min(h, int(np.ceil(py)) + reach + 1)
        c0, c1 = max(0, int(np.floor(px)) - reach), min(w, int(np.ceil(px)) + reach + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        dy = (np.arange(r0, r1, dtype=np.float32) - py)[:, None] ** 2
        dx = (np.arange(c0, c1, dtype=np.float32) - px)[None, :] ** 2
        out[0 if positive else 1, r0:r1, c0:c1][dy + dx <= r2] = 1.0
    return out


def guidance_tensor(
    clicks: Sequence[tuple[float, float, bool]], prior: np.ndarray | None, hw: tuple[int, int], radius: float
) -> torch.Tensor:
    """The three guidance channels ``(1, 3, H, W)`` of one image at working size ``hw``:
    ``clicks`` already in working coordinates, ``prior`` a float map of size ``hw`` (or None)."""
    channels = np.zeros((3, *hw), np.float32)
    channels[:2] = _disk_maps(clicks, hw, radius)
    if prior is not None:
        channels[2] = np.asarray(prior, np.float32).reshape(hw)
    return torch.from_numpy(channels)[None]


def _deepest(region: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Largest distance to the region's border (the image edge counts as border) and where."""
    if not region.any():
        return 0.0, (0, 0)
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    flat = int(np.argmax(depth))
    return float(depth.flat[flat]), (flat // region.shape[1], flat % region.shape[1])


def next_click(pred: np.ndarray, truth: np.ndarray) -> Click | None:
    """The simulated annotator's next click: the pixel deepest inside whichever error, missed
    lesion or extra skin, is deeper; positive on missed lesion. ``None`` when there is no error."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    missed_depth, missed_at = _deepest(truth & ~pred)
    extra_depth, extra_at = _deepest(pred & ~truth)
    if missed_depth == 0 and extra_depth == 0:
        return None
    if missed_depth >= extra_depth:
        return (*missed_at, True)
    return (*extra_at, False)


def check_clicks(clicks: Sequence[Sequence[Any]] | None, hw: tuple[int, int]) -> list[Click]:
    """Clicks rounded to the nearest pixel; a click outside the ``hw`` image raises ValueError."""
    out: list[Click] = []
    h, w = hw
    for click in clicks or []:
        if len(click) != 3:
            raise ValueError(f"a click is (row, col, positive), not {tuple(click)!r}")
        if not (np.isfinite(float(click[0])) and np.isfinite(float(click[1]))):
            raise ValueError(f"click at (row {click[0]}, col {click[1]}) is not a position in the image")
        row, col = int(np.floor(float(click[0]) + 0.5)), int(np.floor(float(click[1]) + 0.5))
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"click at (row {click[0]}, col {click[1]}) is outside the image ({h} x {w} pixels)")
        out.append((row, col, bool(click[2])))
    return out
