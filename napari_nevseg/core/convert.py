"""Conversion of any array a user can produce into what the model and the masks need.

Rules (documented in the README):

* Images become ``(H, W, 3) uint8`` RGB. Grey is repeated to three channels; a trailing alpha
  channel is dropped (grey+alpha and RGBA); channel-first ``(C, H, W)`` arrays with C in
  {1, 2, 3, 4} are moved to channel-last. Integers wider than 8 bits are scaled by their type's
  full range (16-bit: ``v / 257``); signed integers are clipped at 0 first. Floats in [0, 1] are
  scaled by 255; other floats are min-max stretched to [0, 255]; NaN and inf become 0.
* Masks become ``(H, W) bool``. A pixel is foreground when its value is at least half of the
  mask's full scale: full scale is 1 for bool data and data whose maximum is at most 1 (0/1 masks,
  probabilities), the type's maximum for integers (255 for 8-bit, so 0/255 masks work and JPEG
  noise around 0 and 255 is ignored), and 255 for other floats. Colour masks are made grey first
  (any channel at or above half scale counts).
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_rgb_uint8", "to_bool_mask", "mask_to_uint8"]


def _channel_last(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[-1] > 4:
        return np.moveaxis(array, 0, -1)
    return array


def _to_uint8_values(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        clipped = np.clip(array, 0, None).astype(np.float32)
        return np.round(clipped * (255.0 / info.max)).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, then 0
            values = array.astype(np.float32)
        values = np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
        if low >= 0.0 and high <= 1.0:
            scaled = values * np.float32(255.0)
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        else:
            # (v - low) * k as v * k - low * k: never overflows, even for a range near float32's max
            k = 255.0 / max(high - low, 1e-12)
            scaled = values * np.float32(k) - np.float32(low * k)
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported pixel type {array.dtype}: use integer or float pixels")


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a contiguous ``(H, W, 3) uint8`` RGB array (rules in the module doc)."""
    array = _channel_last(np.asarray(image))
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"expected a 2-D grey or RGB(A) image, got an array of shape {array.shape}; "
            "open one plane of a stack at a time"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"the image is empty (shape {array.shape})")
    channels = array.shape[-1]
    if channels in (2, 4):
        array = array[..., : channels - 1]
    array = _to_uint8_values(array)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def to_bool_mask(mask: np.ndarray) -> np.ndarray:
    """Return ``mask`` as an ``(H, W) bool`` array (rules in the module doc)."""
    array = _channel_last(np.asarray(mask))
    if array.ndim == 3:
        if array.shape[-1] in (2, 4):
            array = array[..., : array.shape[-1] - 1]
        array = array.max(axis=-1)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got an array of shape {array.shape}")
    if array.dtype == bool:
        return array.copy()
    if np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array, nan=0.0)
    peak = array.max(initial=0)
    if peak <= 1:
        full_scale = 1.0
    elif np.issubdtype(array.dtype, np.integer):
        full_scale = float(np.iinfo(array.dtype).max)
    else:
        full_scale = 255.0
    return array >= full_scale / 2.0


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Return a bool or label mask as ``uint8`` 0/255 (any non-zero label is foreground)."""
    return (np.asarray(mask) > 0).astype(np.uint8) * 255
