"""Atomic file writes: a temp file in the same directory, flushed, fsynced, renamed.

A reader (or a run resumed after SIGKILL) sees either the old file or the new one,
never a torn mix.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    buffer = io.StringIO()
    for record in records:
        buffer.write(json.dumps(record, sort_keys=True) + "\n")
    atomic_write_text(path, buffer.getvalue())


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temp files that a process killed mid-write left in ``directory``.

    Only names ``atomic_write`` creates (``.NAME.XXXX.tmp``) are touched; call it only when
    no other process writes to ``directory`` (a run directory, on resume).
    """
    removed = []
    for temp in Path(directory).glob(".*.tmp"):
        if temp.is_file():
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
