"""Fixtures: a local archive server, and pointing a source table entry at it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dgsamp.downloads.sources import SOURCES
from tests.data_download.archive_server import ArchiveServer, start_server

KEEP = object()


@pytest.fixture
def server():
    state = ArchiveServer()
    http = start_server(state)
    yield state
    http.shutdown()
    http.server_close()


@pytest.fixture(autouse=True)
def no_mirror_from_the_environment(monkeypatch):
    monkeypatch.delenv("DGSAMP_MIRROR", raising=False)


@pytest.fixture
def point_at(monkeypatch, server):
    """``point_at(name, {file name: path on the server}, checksum=...)``: the table entry
    ``name`` fetches from the local server (its checksum replaced when one is given)."""

    def point(name: str, paths: dict[str, str], checksum=KEEP) -> None:
        source = SOURCES[name]
        archives = tuple(
            replace(archive, url=server.url(paths[archive.file_name]),
                    **({} if checksum is KEEP else {"checksum": checksum}))
            for archive in source.archives
        )
        monkeypatch.setitem(SOURCES, name, replace(source, archives=archives))

    return point
