"""What one dock shows in its viewer: the image and mask layers under review.

One instance per dock (so per viewer); no module-level state. The layers stay the source of
truth for what is on screen; the project, model and review position live in the controller.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels


class ViewState:
    """The layers of the image under review, and the mask as last loaded or saved."""

    mask_edited = Signal()

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.image_layer: Image | None = None
        self.mask_layer: Labels | None = None
        self.baseline: np.ndarray | None = None
        self._labels_for: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # -- layers --------------------------------------------------------------------------
    def labels_for(self, image_layer: Image) -> Labels | None:
        """The prediction layer tied to ``image_layer``, if it is still in the viewer."""
        labels = self._labels_for.get(image_layer)
        return labels if labels is not None and labels in self.viewer.layers else None

    def tie(self, image_layer: Image, labels: Labels) -> None:
        self._labels_for[image_layer] = labels

    def layer_in_viewer(self, layer: Any) -> bool:
        return layer is not None and layer in self.viewer.layers

    def active_mask_layer(self) -> Labels | None:
        """The selected Labels layer, else the current project mask (what tools act on)."""
        from napari.layers import Labels

        active = self.viewer.layers.selection.active
        if isinstance(active, Labels):
            return active
        return self.mask_layer if self.layer_in_viewer(self.mask_layer) else None

    def current_mask(self) -> np.ndarray | None:
        """A copy of the mask on screen for the current project image (main thread)."""
        if not self.layer_in_viewer(self.mask_layer):
            return None
        return np.asarray(self.mask_layer.data) > 0

    def is_dirty(self) -> bool:
        """True when the mask on screen differs from what was loaded or last saved."""
        mask = self.current_mask()
        if mask is None or self.baseline is None:
            return False
        return mask.shape != self.baseline.shape or bool(np.any(mask != self.baseline))
