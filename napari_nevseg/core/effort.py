"""What reviewing one image cost the person: seconds on screen, strokes, clicks.

The meter runs for the image on screen: it starts when the image is shown and is read (and
started again) each time a change to that image is saved, so an image reviewed in two visits,
or saved twice in one, records each stretch once and the project sums them per image.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from napari_nevseg.core.records import Effort

__all__ = ["EffortMeter"]


class EffortMeter:
    """Counts for one image at a time; ``clock`` is injectable so tests need no sleeping."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.stem: str | None = None
        self._since = clock()
        self.strokes = 0
        self.clicks = 0

    def start(self, stem: str | None) -> None:
        """``stem`` is on screen from now (None: nothing is)."""
        self.stem = stem
        self._since = self._clock()
        self.strokes = self.clicks = 0

    def stroke(self) -> None:
        self.strokes += 1

    def click(self, count: int = 1) -> None:
        self.clicks += max(0, count)

    def peek(self, stem: str) -> Effort:
        """The effort on ``stem`` since it was shown or last saved (zero for another image)."""
        if stem != self.stem:
            return Effort()
        return Effort(round(self._clock() - self._since, 3), self.strokes, self.clicks)

    def take(self, stem: str) -> Effort:
        """:meth:`peek`, then start counting again for the same image (it was saved)."""
        effort = self.peek(stem)
        if stem == self.stem:
            self.start(stem)
        return effort
