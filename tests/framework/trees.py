"""What a directory tree holds, to show an operation changed nothing in it."""

from __future__ import annotations

import os
from pathlib import Path

# Every field but the access time: listing a directory to take this snapshot may itself
# move its atime (relatime updates it on the first read after a change), and a read is not
# a change.
Entry = tuple[int, int, int, int, int, int, int, int, bytes]


def tree_state(root: Path) -> dict[Path, Entry]:
    """Each path under ``root``: its lstat (less the atime) and its content or link target."""
    state: dict[Path, Entry] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            content = os.fsencode(os.readlink(path))
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = b""
        state[path.relative_to(root)] = (
            info.st_mode,
            info.st_ino,
            info.st_nlink,
            info.st_uid,
            info.st_gid,
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            content,
        )
    return state
