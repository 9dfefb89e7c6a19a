"""The clicks and box layers of the click tool: how they are made, named, placed and coloured.

Only napari calls here, no click-set state: ``click_tool.ClickTool`` owns the layers and
connects their events.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POSITIVE_COLOR, NEGATIVE_COLOR, BOX_COLOR = "#33ff33", "#ff3355", "#ffd400"


def marker_size(image: Any) -> float:
    """Point size in image pixels: about 1% of the image's diagonal, at least 6."""
    h, w = image.data.shape[:2]
    return max(6.0, round(0.012 * math.hypot(h, w)))


def add_box_layer(viewer: Any, name: str, size: float) -> Any:
    return viewer.add_shapes(ndim=2, name=f"{name} box", shape_type="rectangle", edge_color=BOX_COLOR,
                             face_color="transparent", edge_width=max(2.0, size / 4))


def add_points_layer(viewer: Any, name: str, size: float) -> Any:
    return viewer.add_points(ndim=2, name=f"{name} clicks", features={"positive": np.zeros(0, bool)},
                             border_color="white", border_width=0.15, size=size)


def place_above(viewer: Any, image: Any, layers: dict[str, Any]) -> None:
    """Name each layer ``<image> <kind>`` (napari may have added " [1]" to a duplicate), give it
    the image's scale and translation and move it to the top, above the mask."""
    for kind, layer in layers.items():
        if not layer.name.startswith(f"{image.name} {kind}"):
            layer.name = f"{image.name} {kind}"
        layer.scale, layer.translate = image.scale, image.translate
        viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))


def arm_kind(points: Any, negative: bool) -> None:
    """The next points' kind and colour; the selected points keep theirs."""
    with points.block_update_properties():
        points.feature_defaults = {"positive": not negative}
        points.current_face_color = NEGATIVE_COLOR if negative else POSITIVE_COLOR


def colour_by_kind(points: Any, indices: list[int]) -> None:
    """Paint the points ``indices`` the colour of their kind (``features['positive']``)."""
    from napari.utils.colormaps.standardize_color import transform_color

    kinds = points.features["positive"].iloc[indices]
    face = np.array(points.face_color)
    face[indices] = transform_color([POSITIVE_COLOR if p else NEGATIVE_COLOR for p in kinds])
    points.face_color = face
