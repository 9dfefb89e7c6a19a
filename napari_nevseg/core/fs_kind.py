"""Is a folder on a network file system? SQLite's WAL journal must not be used there.

WAL keeps its index in shared memory (``-shm``), which only works when every process that opens
the database shares the same machine's memory; on NFS, SMB/CIFS and similar file systems two
machines would each see their own index and corrupt the database. ``os.statvfs`` does not say
which file system a path is on, so on Linux the mount table (``/proc/mounts``) is read: the
longest mount point that contains the folder names its type. Elsewhere the answer is "local".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["NETWORK_FS_TYPES", "network_fs_type", "mount_type"]

NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "coda", "9p", "ceph",
    "glusterfs", "lustre", "gpfs", "ocfs2", "gfs2", "davfs", "beegfs", "orangefs", "pvfs2",
    "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "fuse.rclone", "fuse.davfs2", "fuse.cephfs",
    "fuse.gcsfuse", "fuse.juicefs", "fuse.lizardfs", "fuse.moosefs",
})

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs, newlines and backslashes as octal escapes (``\\040``)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_type(path: str | os.PathLike[str], mounts_text: str | None = None) -> str | None:
    """The file-system type of the mount holding ``path`` (Linux), or None when unknown."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


def network_fs_type(path: str | os.PathLike[str], mounts_text: str | None = None) -> str | None:
    """The network file-system type ``path`` lies on (``"nfs4"``, ``"cifs"``, ...), else None."""
    kind = mount_type(path, mounts_text)
    if kind is None:
        return None
    return kind if kind in NETWORK_FS_TYPES or kind.startswith(("nfs", "smb")) else None
