"""The code cache on disk: compiled modules kept between guest processes.

::

    <directory>/<engine key, 16 hex digits>/<module sha256>.kcode        unmetered code
                                           /<module sha256>.fuel.kcode   metered code

Guests make the entries and use them (``guestproc.codecache``); the host keeps them: it
reads the entry for a module and sends it in ``Load`` (``Boot`` for metered code), and
writes the one a guest sends back in ``Code`` frames after a miss. Guests touch no files.
No locks are needed: an entry is written to a temporary file and renamed into place, so a
reader sees a whole entry or none, and of two writers the last rename wins; an entry
damaged any other way fails its checksum in the guest, which then compiles afresh and sends
a new one. Entries are pruned, least recently used first, past ``DIRECTORY_BUDGET``.

A guest could send a poisoned entry only after its engine had been subverted by the module
itself, and the entry is filed under that module's digest (computed here): it reaches only
later guests of the same module.

The directory is ``$KINDLING_CACHE_DIR``, else ``$XDG_CACHE_HOME/kindling/code``, else
``~/.cache/kindling/code``. It is created private (0700); an existing one is used only if it
is a real directory owned by this user that nobody else can write, since whoever can write
it can put code into guests.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path

from protocol.codeentry import (
    HEADER,
    EntryError,
    engine_key,
    module_digest,
    open_entry,
)
from protocol.messages import MAX_ENTRY_BYTES

ENVIRONMENT_VARIABLE = "KINDLING_CACHE_DIR"

__all__ = ["CacheDirectoryError", "default_directory", "module_digest", "prepare", "read", "write"]


def default_directory() -> Path:
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "kindling" / "code"


class CacheDirectoryError(Exception):
    """The cache directory cannot be used; the text says why."""


def prepare(directory: Path | None = None) -> str:
    """The cache directory's absolute path, created if need be; ``CacheDirectoryError`` when
    it cannot be created or is not safe to use."""
    path = (directory or default_directory()).absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise CacheDirectoryError(f"cannot create {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise CacheDirectoryError(f"{path} is not a directory")
    if info.st_uid != os.geteuid():
        raise CacheDirectoryError(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirectoryError(f"{path} can be written by other users")
    return str(path)


SUFFIX = ".kcode"

DIRECTORY_BUDGET = 1024 * 1024 * 1024
"""Past this many bytes of entries, writing one removes the least recently used."""

STALE_TEMPORARY_SECONDS = 3600
"""A temporary file this old is a writer's leftover (it died mid-write): removed."""


def entry_path(directory: str, digest: bytes, metered: bool) -> Path:
    name = digest.hex() + (".fuel" if metered else "") + SUFFIX
    return Path(directory, engine_key().hex()[:16], name)


def read(directory: str, digest: bytes, metered: bool) -> bytes:
    """The stored entry, or b"" when there is none. It is not checked here: the guest
    checks it before use and says why it rejects it (the host never unmarshals it)."""
    path = entry_path(directory, digest, metered)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        with os.fdopen(fd, "rb") as file:
            entry = file.read(MAX_ENTRY_BYTES + HEADER.size + 1)
    except OSError:
        return b""
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: the last to be pruned
    return entry


def write(directory: str, digest: bytes, metered: bool, entry: bytes) -> str:
    """Store an entry a guest made, if its envelope is sound; ``stored`` or ``not stored:
    why``. Atomic: readers see the old entry, the new one, or none, never a part."""
    try:
        open_entry(entry, metered)
    except EntryError as exc:
        return f"not stored: {exc}"
    path = entry_path(directory, digest, metered)
    temporary = None
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
        with os.fdopen(fd, "wb") as file:
            file.write(entry)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        return f"not stored: {exc.strerror or exc}"
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    prune(directory)
    return "stored"


def prune(directory: str, budget: int = DIRECTORY_BUDGET) -> int:
    """Remove writers' stale leftovers, then the least recently used entries (of any engine
    version) until the rest fit in ``budget``; how many files were removed."""
    now = time.time()
    entries: list[tuple[float, int, Path]] = []
    removed = 0
    with contextlib.suppress(OSError):
        for folder in Path(directory).iterdir():
            if not folder.is_dir() or folder.is_symlink():
                continue
            for path in folder.iterdir():
                try:
                    info = path.lstat()
                except OSError:
                    continue  # removed meanwhile by another writer
                leftover = path.name.startswith(".tmp-")
                if leftover and now - info.st_mtime > STALE_TEMPORARY_SECONDS:
                    removed += _remove(path)
                elif not leftover and path.name.endswith(SUFFIX):
                    entries.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= budget:
            break
        removed += _remove(path)
        total -= size
    return removed


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except OSError:
        return 0
    return 1
