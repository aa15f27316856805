"""An exclusive, non-blocking ``flock`` on ``<dir>/.lock``: one process per run directory.

The kernel drops the lock when every descriptor of it is closed, so a killed process never
leaves a stale lock. A process may hand its lock to a child (``pass_fds``) and name the
descriptor in ``DGSAMP_LOCK_FD``: the child then holds it already (:func:`inherited_lock`)
instead of being refused by its own parent.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = ".lock"
INHERITED_FD_VAR = "DGSAMP_LOCK_FD"


class DirLock:
    """``with DirLock(d)`` or ``try_acquire()`` / ``release()``; ``holder()`` names who has it."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock (writing ``host pid`` into the file); False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self.fd = fd
        return True

    def holder(self) -> str:
        """``host pid`` of the process that took the lock, as it wrote it ("" if unreadable)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def inherited_lock(directory: str | Path) -> bool:
    """Whether this process was handed ``directory``'s lock: ``DGSAMP_LOCK_FD`` names an open
    descriptor of that very file (same device and inode)."""
    text = os.environ.get(INHERITED_FD_VAR, "")
    if not text.isdigit():
        return False
    try:
        held, on_disk = os.fstat(int(text)), (Path(directory) / LOCK_FILE).stat()
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
