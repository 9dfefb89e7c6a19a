"""Network file systems are recognised from the mount table, so WAL is not used on them."""

from __future__ import annotations

from napari_nevseg.core.fs_kind import mount_type, network_fs_type

MOUNTS = """\
overlay / overlay rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
/dev/sda1 /home ext4 rw,relatime 0 0
server:/export/clinic /home/ana/clinic nfs4 rw,vers=4.2 0 0
//nas/share /mnt/nas\\040photos cifs rw,vers=3.0 0 0
ana@host:/data /mnt/ssh fuse.sshfs rw 0 0
tmpfs /mnt/nas/tmp tmpfs rw 0 0
"""


def test_the_longest_mount_point_decides():
    assert network_fs_type("/home/ana/clinic/project/nevseg", MOUNTS) == "nfs4"
    assert network_fs_type("/home/ana/clinic", MOUNTS) == "nfs4"
    assert network_fs_type("/home/ana/clinic-local/project", MOUNTS) is None  # ext4 /home, not the NFS
    assert mount_type("/home/ana/clinic-local", MOUNTS) == "ext4"
    assert network_fs_type("/mnt/nas photos/p", MOUNTS) == "cifs"  # \\040 is a space
    assert network_fs_type("/mnt/ssh/p", MOUNTS) == "fuse.sshfs"
    assert network_fs_type("/mnt/nas/tmp/p", MOUNTS) is None
    assert network_fs_type("/srv/x", MOUNTS) is None  # overlay /


def test_no_mount_table_means_local(tmp_path):
    assert network_fs_type(tmp_path, "") is None
