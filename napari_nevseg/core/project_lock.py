"""One process at a time per project: an exclusive lock on ``nevseg/lock`` held while it is open.

Two napari windows writing the same project would each keep their own view of the records and
overwrite each other's, so the second process to open a project is refused with a message that
names the holder. The lock is the operating system's (``flock``), so it goes away with the process
that held it, even after kill -9: no stale lock file to delete by hand. Within one process the
lock is shared (counted), so re-opening a project there, as the widget does, keeps working.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from napari_nevseg.core.errors import ProjectInUseError, WriteError

__all__ = ["ProjectLock"]

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_held: dict[str, tuple[int, int]] = {}  # lock file -> (fd, users in this process)
_guard = threading.Lock()


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    return "another process"


class ProjectLock:
    """The project's lock file, acquired on creation; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, project_root: Path) -> None:
        self.path = path
        self._key = str(path)
        self._released = False
        with _guard:
            if self._key in _held:
                fd, users = _held[self._key]
                _held[self._key] = (fd, users + 1)
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise WriteError(f"cannot create {path}: {exc.strerror or exc}; is the folder writable?") from exc
            if not _try_lock(fd):
                os.close(fd)
                raise ProjectInUseError(
                    f"{project_root} is open in another napari-nevseg window ({_holder(path)}); "
                    "close the project there first"
                )
            os.ftruncate(fd, 0)
            os.write(fd, f"host {socket.gethostname()}, pid {os.getpid()}\n".encode())
            _held[self._key] = (fd, 1)

    def release(self) -> None:
        """Give the lock up (once); the last user in this process closes the file, which frees it."""
        with _guard:
            if self._released or self._key not in _held:
                return
            self._released = True
            fd, users = _held[self._key]
            if users > 1:
                _held[self._key] = (fd, users - 1)
                return
            del _held[self._key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)
