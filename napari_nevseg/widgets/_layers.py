"""Small helpers that read and write napari layers (main thread only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels

#: every non-zero label is lesion (napari's M starts label 2): all are drawn as label 1, so what
#: is saved is what is seen
MASK_COLOR = {0: "transparent", 1: "#00ff66", None: "#00ff66"}


def image_rgb(layer: Image) -> np.ndarray:
    """A copy of a 2-D image layer's pixels as RGB uint8 (the worker gets this copy)."""
    from napari_nevseg.core.convert import to_rgb_uint8

    data = np.asarray(layer.data)
    if data.ndim == 3 and not layer.rgb:
        raise ValueError(
            f"layer {layer.name!r} is a stack of {data.shape[0]} planes; predict one plane at a "
            "time (open it as separate images)"
        )
    if data.ndim not in (2, 3):
        raise ValueError(f"layer {layer.name!r} has shape {data.shape}; expected a 2-D image")
    return to_rgb_uint8(data).copy()


def apply_mask_undoable(labels: Labels, mask: np.ndarray) -> bool:
    """Make ``labels`` equal ``mask`` (label 1) as one undo step; False if nothing changed."""
    old = np.asarray(labels.data)
    new = (np.asarray(mask) > 0).astype(old.dtype)
    if new.shape != old.shape:
        raise ValueError(f"mask {new.shape} does not fit layer {labels.name!r} {old.shape}")
    changed = (old > 0) != (new > 0)
    if not changed.any():
        return False
    turn_on = np.nonzero(changed & (new > 0))
    turn_off = np.nonzero(changed & (new == 0))
    with labels.block_history():
        if turn_on[0].size:
            labels.data_setitem(turn_on, 1)
        if turn_off[0].size:
            labels.data_setitem(turn_off, 0)
    return True


def add_mask_layer(viewer: napari.Viewer, mask: np.ndarray, name: str, like: Labels | None = None) -> Labels:
    """Add an editable Labels layer for a lesion mask, keeping the tool settings of ``like``."""
    from napari.utils import DirectLabelColormap

    data = (np.asarray(mask) > 0).astype(np.uint8)
    layer = viewer.add_labels(data, name=name, opacity=0.45, colormap=DirectLabelColormap(color_dict=MASK_COLOR))
    layer.selected_label = 1
    if like is not None:
        layer.opacity = like.opacity
        layer.contour = like.contour
        layer.brush_size = like.brush_size
    else:
        layer.contour = 2
    return layer


def set_or_add_probability(viewer: napari.Viewer, probability: np.ndarray, name: str) -> None:
    """Show a probability map as a hidden-by-default magma image, re-using a layer of that name."""
    if name in viewer.layers:
        viewer.layers[name].data = probability
        return
    viewer.add_image(probability, name=name, colormap="magma", opacity=0.5, contrast_limits=(0, 1), visible=False)
