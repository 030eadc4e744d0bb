"""Atomic file writes: a crash leaves either the old file or the new one, never half of either.

Modes: on POSIX the file is created owner-only (``mkstemp``) and then given ``mode``. Windows keeps only the
read-only bit of a mode, so there the privacy comes from where the file lives (the user's profile, whose ACL admits
only that user); a mode without the owner's write bit is never asked for, as it would make the next replace fail.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

#: Windows refuses to replace a file another process holds open for a moment (a virus scanner or the search
#: indexer reading the journal just written); the replace is tried again for about this long.
WINDOWS_REPLACE_PATIENCE = 2.0


def replace(src: str | Path, dst: str | Path, *, platform: str = sys.platform) -> None:
    """``os.replace``, patient on Windows with files held open briefly by other processes."""
    deadline = time.monotonic() + WINDOWS_REPLACE_PATIENCE
    delay = 0.02
    while True:
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if platform != "win32" or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(0.25, delay * 2)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        # Make the rename itself durable (POSIX); Windows has no directory handles to sync.
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)
