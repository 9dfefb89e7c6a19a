"""Counts the clicks a reviewer places on an image, for the effort recorded with each review.

The click tool (another module) puts them on a Points layer named ``<image> clicks``; this
module only watches the viewer's Points layers whose name says ``clicks`` and reports how many
points each gained, so it needs nothing from that tool.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import napari


class ClickCount:
    """Calls ``on_clicks(layer_name, added)`` each time a ``clicks`` Points layer gains points."""

    def __init__(self, viewer: napari.Viewer, on_clicks: Callable[[str, int], None]) -> None:
        self.viewer = viewer
        self.on_clicks = on_clicks
        self._sizes: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        viewer.layers.events.inserted.connect(self._on_inserted)
        for layer in viewer.layers:
            self._watch(layer)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)

    def _watch(self, layer) -> None:
        from napari.layers import Points

        if isinstance(layer, Points) and layer not in self._sizes:
            self._sizes[layer] = len(layer.data)
            layer.events.data.connect(self._on_data)

    def _on_data(self, event) -> None:
        layer = event.source
        before, now = self._sizes.get(layer, 0), len(layer.data)
        self._sizes[layer] = now  # a removal lowers the mark, so a point placed again counts again
        if now > before and "clicks" in layer.name:
            self.on_clicks(layer.name, now - before)

    def teardown(self) -> None:
        self.viewer.layers.events.inserted.disconnect(self._on_inserted)
        for layer in list(self._sizes):
            layer.events.data.disconnect(self._on_data)
        self._sizes.clear()
