"""One ``dgsamp train`` per run directory: the directory is created and locked first.

    with hold_run_dir(output_dir):      # UserError (exit 2) when another process holds it
        ...check, build, train...

The lock is the same ``<dir>/.lock`` a sweep worker takes for its job (a worker hands its
lock to the ``dgsamp train`` it starts, see ``dgsamp.utils.dir_lock``). When the run is
refused before anything was written, the lock file and the directories this call created
are removed again, so a refused run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from dgsamp.errors import UserError
from dgsamp.utils.dir_lock import LOCK_FILE, DirLock, inherited_lock


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _create_and_lock(run_dir: Path) -> DirLock | None:
    """Create ``run_dir`` and take its lock; None when this process was handed the lock."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output dir {run_dir} is not writable: it is a file; pick another --output_dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if inherited_lock(run_dir):
            return None
        lock = DirLock(run_dir)
        taken = lock.try_acquire()
    except OSError as error:
        raise UserError(f"output dir {run_dir} is not writable: {error.strerror}; pick another --output_dir") \
            from None
    if not taken:
        holder = lock.holder()
        by = f" (host and pid: {holder})" if holder else ""
        raise UserError(f"another dgsamp train is running in {run_dir}{by}; wait for it to finish "
                        "or pick another --output_dir")
    return lock


@contextlib.contextmanager
def hold_run_dir(output_dir: str | Path) -> Iterator[Path]:
    """Create ``output_dir``, hold its lock for the block; when the block fails, remove the
    lock file and the directories this call created again, as far as they are empty."""
    run_dir = Path(output_dir)
    created = _missing_dirs(run_dir.absolute())
    had_lock_file = (run_dir / LOCK_FILE).exists()
    lock = _create_and_lock(run_dir)
    try:
        yield run_dir
    except BaseException:
        if not had_lock_file:
            (run_dir / LOCK_FILE).unlink(missing_ok=True)
        for directory in created:  # deepest first; only empty ones go
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        if lock is not None:
            lock.release()
