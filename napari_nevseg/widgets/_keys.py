"""The review keys as Qt shortcuts of the viewer's window.

A window shortcut fires wherever the focus is in that window (canvas, layer list, the dock and
its queue table, a floating dock too), and Qt itself leaves the key to a text or number field
being edited (they claim it through ``ShortcutOverride``). The queue table would otherwise eat
``N`` and ``Y`` for its type-ahead search. napari's ``bind_key`` only sees keys the canvas gets.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import QWidget

KEYS = {"next": ("N", "PgDown"), "previous": ("Shift+N", "PgUp"), "accept": ("Y",)}


class ReviewKeys:
    """Owns the shortcuts; :meth:`unbind` removes them (the dock was closed)."""

    def __init__(self, window: QWidget, actions: dict[str, Callable[[], None]],
                 bindings: dict[str, tuple[str, ...]] = KEYS) -> None:
        self.shortcuts: list[QShortcut] = []
        for name, keys in bindings.items():
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), window)
                shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
                shortcut.activated.connect(actions[name])
                self.shortcuts.append(shortcut)

    def unbind(self) -> None:
        for shortcut in self.shortcuts:
            shortcut.setEnabled(False)
            shortcut.activated.disconnect()
            shortcut.setParent(None)
            shortcut.deleteLater()
        self.shortcuts.clear()
