"""Run background work at a lower CPU priority than the GUI, where the OS allows it per thread."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["background_priority"]


@contextlib.contextmanager
def background_priority(niceness: int = 10) -> Iterator[bool]:
    """Raise the calling thread's nice value by ``niceness`` for the duration of the block.

    Linux schedules threads as tasks, so this touches only the calling thread (and threads it
    starts afterwards), not the GUI thread: under contention the scheduler then gives the GUI
    thread (and the OpenGL rasteriser) the cores first, and the background work takes what is
    left; with no contention it runs at full speed. Yields whether the priority was lowered (only
    on Linux). On leaving, the old value is restored where permitted; an unprivileged process may
    not raise priority again, and then the (pooled) thread simply stays a background thread.
    """
    if not sys.platform.startswith("linux") or niceness <= 0:
        yield False
        return
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, before + niceness))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, before)
