"""Small helpers that read and write napari layers (main thread only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels

#: the metadata key that marks a Labels layer as a NevSeg lesion mask (display options follow it)
MASK_KEY = "nevseg_mask"
#: its value on a second opinion shown beside the mask (a new prediction over a reviewed one)
COMPARISON = "comparison"

#: Colours for the mask overlay, Okabe and Ito's colour-blind-safe palette ("Color Universal
#: Design", 2008) plus white. Dermoscopy and clinical photos are red, pink and brown, and the
#: usual overlay green sits on the red-green axis that about 1 man in 12 (protan and deutan
#: vision) cannot tell from those. The default, sky blue, lies far from skin and pigment in hue
#: for normal and red-green-deficient vision alike, and is light enough to stand out on a dark
#: lesion; yellow and white help on very dark lesions, blue and black on pale skin. Vermillion and
#: orange are left out: on red skin they vanish.
MASK_COLOURS: dict[str, str] = {
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
    "bluish green": "#009E73",
    "blue": "#0072B2",
    "reddish purple": "#CC79A7",
    "black": "#000000",
    "white": "#FFFFFF",
}


@dataclass(frozen=True)
class MaskStyle:
    """How lesion masks are drawn: an outline (the skin under it stays visible, which matters
    for judging a border) or a translucent fill (easier to spot holes and stray specks)."""

    colour: str = "sky blue"
    outline: bool = True
    outline_width: int = 3
    fill_opacity: float = 0.45

    @property
    def hex(self) -> str:
        return MASK_COLOURS[self.colour]

    @property
    def opacity(self) -> float:
        return 1.0 if self.outline else self.fill_opacity

    def for_comparison(self) -> MaskStyle:
        """A second mask beside this one: an outline in another palette colour, so the two
        never read as one and the mask under review stays visible."""
        other = "yellow" if self.colour != "yellow" else "sky blue"
        return MaskStyle(colour=other, outline=True, outline_width=self.outline_width, fill_opacity=self.fill_opacity)


def mask_colormap(colour_hex: str):
    """Every non-zero label in ``colour_hex``: a stroke with any label shows as lesion."""
    from napari.utils import DirectLabelColormap

    return DirectLabelColormap(color_dict={0: "transparent", None: colour_hex})


def apply_mask_style(layer: Labels, style: MaskStyle) -> None:
    """Draw ``layer`` in ``style`` (a display change only: the mask data is not touched)."""
    layer.colormap = mask_colormap(style.hex)
    layer.contour = style.outline_width if style.outline else 0
    layer.opacity = style.opacity


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
    """Make ``labels`` equal ``mask`` (label 1) as one undo step; False if nothing changed.

    One ``data_setitem`` with a value per changed pixel (not one per value): napari repaints
    the changed box once, which is what a click's update costs on the GUI thread."""
    old = np.asarray(labels.data)
    new = np.asarray(mask) > 0
    if new.shape != old.shape:
        raise ValueError(f"mask {new.shape} does not fit layer {labels.name!r} {old.shape}")
    changed = (old > 0) != new
    indices = np.nonzero(changed)
    if indices[0].size == 0:
        return False
    with labels.block_history():
        labels.data_setitem(indices, new[indices].astype(old.dtype))
    return True


def add_mask_layer(
    viewer: napari.Viewer,
    mask: np.ndarray,
    name: str,
    like: Labels | None = None,
    style: MaskStyle | None = None,
    comparison: bool = False,
) -> Labels:
    """Add an editable Labels layer for a lesion mask, drawn like ``like`` (keeping its tool
    settings) or in ``style``; a ``comparison`` (shown beside the mask under review) is drawn in
    :meth:`MaskStyle.for_comparison`. The layer is marked (:data:`MASK_KEY`) before it is added,
    so a listener on the viewer's inserted layers can restyle it."""
    from napari.layers import Labels

    data = (np.asarray(mask) > 0).astype(np.uint8)
    layer = Labels(data, name=name, metadata={MASK_KEY: COMPARISON if comparison else True})
    style = style or MaskStyle()
    apply_mask_style(layer, style.for_comparison() if comparison else style)
    layer.selected_label = 1
    if like is not None:
        if not comparison:
            layer.colormap = like.colormap
            layer.opacity = like.opacity
            layer.contour = like.contour
        layer.brush_size = like.brush_size
    viewer.add_layer(layer)
    return layer


def set_or_add_probability(viewer: napari.Viewer, probability: np.ndarray, name: str) -> None:
    """Show a probability map as a hidden-by-default magma image, re-using a layer of that name."""
    if name in viewer.layers:
        viewer.layers[name].data = probability
        return
    viewer.add_image(probability, name=name, colormap="magma", opacity=0.5, contrast_limits=(0, 1), visible=False)
