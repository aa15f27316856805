"""Download datasets into ``--data_dir``: check everything, fetch, verify checksums, install.

For each dataset, in order: skip it if ``<data_dir>/<target>`` already exists; refuse when the
disk lacks room for the archives still to fetch plus their extraction (about twice the
archives' size); fetch every archive (resuming ``.part`` files, falling back to the mirror);
check checksums; unpack atomically (``extract.install``); delete the archives unless asked
to keep them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from dgsamp.downloads.extract import install
from dgsamp.downloads.fetch import MIRROR_ENV, Say, check_mirror, fetch_archive
from dgsamp.downloads.sources import SOURCES, DatasetSource, resolve_name
from dgsamp.errors import UserError

GB = 1_000_000_000


def download(names: Sequence[str], data_dir: Path, mirror: str | None = None, quiet: bool = False,
             keep_archives: bool = False, say: Say = print) -> list[Path]:
    """Fetch and install every named dataset; return the folders built (or found in place)."""
    sources: list[DatasetSource] = []
    for name in names:
        source = SOURCES[resolve_name(name)]
        if source not in sources:
            sources.append(source)
    mirror = check_mirror(mirror if mirror is not None else os.environ.get(MIRROR_ENV))
    data_dir = _writable_folder(data_dir)
    tell: Say = (lambda line: None) if quiet else say
    return [_download_one(source, data_dir, mirror, not quiet, keep_archives, tell) for source in sources]


def _download_one(source: DatasetSource, data_dir: Path, mirror: str | None, progress: bool,
                  keep_archives: bool, say: Say) -> Path:
    final = data_dir / source.target
    if final.exists():
        say(f"{source.name}: {final} already exists; check it with `dgsamp data verify {source.name} "
            f"--data_dir {data_dir}` (delete it to download again)")
        return final
    _check_free_space(source, data_dir)
    say(f"{source.name}: from {source.origin}")
    files = [fetch_archive(archive, data_dir, mirror, progress, say) for archive in source.archives]
    install(source, files, data_dir)
    if not keep_archives:
        for path in files:
            path.unlink(missing_ok=True)
    say(f"{source.name}: ready in {final}")
    return final


def _writable_folder(data_dir: Path) -> Path:
    """``data_dir``, created if needed; a path that cannot hold the data is a UserError."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise UserError(f"--data_dir {data_dir} exists and is not a folder; choose a folder") from error
    except OSError as error:
        raise UserError(f"cannot create --data_dir {data_dir} ({error.strerror}); choose a folder you can write to") from error
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise UserError(f"--data_dir {data_dir} is not writable; choose a folder you can write to")
    return data_dir


def _check_free_space(source: DatasetSource, data_dir: Path) -> None:
    """Room for the bytes still to fetch plus the unpacked tree (about the archives' size)."""
    to_fetch = 0
    for archive in source.archives:
        if (data_dir / archive.file_name).is_file():
            continue
        part = data_dir / f"{archive.file_name}.part"
        to_fetch += max(0, archive.size - (part.stat().st_size if part.is_file() else 0))
    needed = to_fetch + source.total_size
    free = shutil.disk_usage(data_dir).free
    if free < needed:
        raise UserError(
            f"not enough free space in {data_dir}: {source.name} needs about {needed / GB:.1f} GB "
            f"(archives and extraction), {free / GB:.1f} GB free; free some space or choose another --data_dir"
        )
