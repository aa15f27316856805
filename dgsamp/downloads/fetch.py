"""HTTP download of one archive: progress bar, resume with ``Range``, mirror fallback, checksum.

Bytes go to ``<folder>/<file>.part``. A dropped connection is resumed from the ``.part``'s
size with ``Range: bytes=<size>-`` (a few times in a row; after that the ``.part`` is kept and
the next run resumes it); a server that ignores ``Range`` (answers 200, not 206) restarts the
file from byte 0. When the file is complete its checksum is compared with the published one
*before* the ``.part`` is renamed to ``<folder>/<file>``; a mismatch deletes the ``.part``.

A mirror serves the archive as ``<mirror>/<file name>`` (``--mirror`` or ``DGSAMP_MIRROR``);
it is tried when the primary host answers an HTTP error (404, 403, 5xx, ...) or cannot be
reached.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from dgsamp import __version__
from dgsamp.downloads.sources import Archive
from dgsamp.errors import UserError

CHUNK_BYTES = 1 << 20
ATTEMPTS = 4  # the first request and up to three resumes after dropped connections
TIMEOUT_S = 60
MIRROR_ENV = "DGSAMP_MIRROR"

Say = Callable[[str], None]


class HostFailed(Exception):
    """The host answered an HTTP error or could not be reached (the next URL may work)."""

    def __init__(self, url: str, what: str) -> None:
        super().__init__(f"{url}: {what}")
        self.url = url
        self.what = what


def mirror_url(mirror: str, file_name: str) -> str:
    """``<mirror>/<file name>``: how a mirror serves every archive."""
    return f"{mirror.rstrip('/')}/{file_name}"


def check_mirror(mirror: str | None) -> str | None:
    """The mirror with a usable scheme, or None; anything else is a UserError."""
    if not mirror:
        return None
    if not re.match(r"^(https?|file)://", mirror):
        raise UserError(f"--mirror must be an http://, https:// or file:// URL, got '{mirror}'")
    return mirror


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read 1 MiB at a time."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def check_checksum(path: Path, checksum: str | None, say: Say) -> None:
    """Compare ``path`` with ``"md5:<hex>"``/``"sha256:<hex>"``; a mismatch deletes it (UserError)."""
    if checksum is None:
        say(f"{path.name.removesuffix('.part')}: no published checksum; not checked")
        return
    algorithm, expected = checksum.split(":", 1)
    found = file_digest(path, algorithm)
    if found != expected.lower():
        path.unlink(missing_ok=True)
        raise UserError(
            f"{algorithm} of {path.name.removesuffix('.part')} is {found}, expected {expected}; "
            "the download was deleted: run again, or use --mirror if the host serves a different file"
        )
    say(f"{path.name.removesuffix('.part')}: {algorithm} checked")


def fetch_archive(archive: Archive, folder: Path, mirror: str | None, progress: bool, say: Say) -> Path:
    """Download ``archive`` into ``folder/<file name>`` (checksum-checked) and return that path.

    A complete file already there (downloaded before, or put there by hand) is only checked.
    """
    target = folder / archive.file_name
    if target.is_file():
        say(f"{archive.file_name}: already downloaded")
        check_checksum(target, archive.checksum, say)
        return target
    part = folder / f"{archive.file_name}.part"
    urls = [archive.url] + ([mirror_url(mirror, archive.file_name)] if mirror else [])
    failures: list[HostFailed] = []
    for url in urls:
        try:
            say(f"{archive.file_name}: downloading {url}")
            _download(url, part, archive.file_name, progress)
            break
        except HostFailed as failure:
            failures.append(failure)
            if url != urls[-1]:
                say(f"{archive.file_name}: {failure.url} failed ({failure.what}); trying the mirror")
    else:
        tried = "; ".join(f"{failure.url} answered {failure.what}" for failure in failures)
        hint = (f"pass --mirror URL (or set {MIRROR_ENV}) to fetch it as <mirror>/{archive.file_name}"
                if mirror is None else f"put {archive.file_name} in {folder} by hand")
        raise UserError(f"cannot download {archive.file_name}: {tried}; {hint}")
    check_checksum(part, archive.checksum, say)
    os.replace(part, target)
    return target


def _download(url: str, part: Path, file_name: str, progress: bool) -> None:
    """Fill ``part`` with the bytes at ``url``, resuming after dropped connections."""
    for _ in range(ATTEMPTS):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": f"dgsamp/{__version__}"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset and _range_total(error.headers.get("Content-Range")) == offset:
                return  # the .part already holds the whole file
            if error.code == 416:
                part.unlink()  # the .part is not a prefix of this file: start again
                continue
            raise HostFailed(url, f"HTTP {error.code} ({error.reason})") from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HostFailed(url, f"no connection ({reason})") from error
        with response:
            if response.headers.get_content_type() == "text/html" and not file_name.endswith(".html"):
                raise HostFailed(url, "a web page instead of the file (a quota, login or virus-scan page)")
            resumed = bool(offset) and response.status == 206
            start = offset if resumed else 0  # a server that ignores Range sends the whole file again
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            if _copy_body(response, part, "ab" if resumed else "wb", start, total, file_name, progress):
                return
    raise UserError(
        f"the connection to {url} dropped {ATTEMPTS} times; {part.stat().st_size} bytes are kept in "
        f"{part}: run the same command again to resume"
    )


def _copy_body(response, part: Path, mode: str, start: int, total: int | None,
               file_name: str, progress: bool) -> bool:
    """Append the response body to ``part``; True when it arrived whole."""
    show = progress and sys.stderr.isatty()
    with open(part, mode) as handle, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
        desc=file_name, disable=not show, file=sys.stderr,
    ) as bar:
        try:
            while block := response.read(CHUNK_BYTES):
                handle.write(block)
                bar.update(len(block))
        except (http.client.IncompleteRead, ConnectionError, TimeoutError):
            return False
        handle.flush()
        os.fsync(handle.fileno())
    return total is None or part.stat().st_size == total


def _range_total(content_range: str | None) -> int | None:
    """N from a ``bytes */N`` Content-Range header."""
    match = re.match(r"bytes \*/(\d+)", content_range or "")
    return int(match.group(1)) if match else None
