"""The wait the viewer benchmarks share: run Qt's event loop, as napari does, until a condition
holds or a timeout passes. Never a sleep in the GUI thread, which would itself delay the
timers the benchmarks measure stalls and frames with.

    from _qt_loop import wait_until   # a script in benchmarks/ has this folder on sys.path
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], bool], timeout: float = 300.0, poll_ms: int = 20) -> bool:
    """Run the event loop until ``cond()`` or ``timeout`` seconds; whether ``cond()`` held.
    ``cond`` is polled every ``poll_ms`` by a precise timer."""
    from qtpy.QtCore import QEventLoop, Qt, QTimer

    loop, t0, poll = QEventLoop(), time.perf_counter(), QTimer()
    poll.setTimerType(Qt.TimerType.PreciseTimer)
    poll.timeout.connect(lambda: (cond() or time.perf_counter() - t0 > timeout) and loop.quit())
    poll.start(poll_ms)
    loop.exec()  # at least one poll, so events just posted are handled
    poll.stop()
    return bool(cond())
