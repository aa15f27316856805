"""A real HTTP server on 127.0.0.1 for the download tests, with ways to misbehave.

``ArchiveServer.files`` maps a URL path to the bytes served there. Per path the server can be
told to drop the connection after N body bytes (once), answer an HTTP status instead, serve
only the first N bytes as if they were the whole file, or ignore ``Range``. Every request's
path and headers are recorded in ``requests``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Misbehaviour:
    drop_after: int | None = None  # send this many body bytes, then close (once)
    status: int | None = None  # answer with this HTTP status
    truncate_to: int | None = None  # serve only the first bytes, announced as the whole file
    ignore_range: bool = False  # always answer 200 with the whole file


@dataclass
class ArchiveServer:
    files: dict[str, bytes] = field(default_factory=dict)
    misbehaviour: dict[str, Misbehaviour] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [headers for requested, headers in self.requests if requested == path]


def _handler(state: ArchiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers.items())))
            rule = state.misbehaviour.get(self.path, Misbehaviour())
            if rule.status is not None or self.path not in state.files:
                self.send_error(rule.status or 404)
                return
            data = state.files[self.path]
            if rule.truncate_to is not None:
                data = data[: rule.truncate_to]
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if match and not rule.ignore_range:
                start = int(match.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if rule.drop_after is not None:
                self.wfile.write(body[: rule.drop_after])
                self.wfile.flush()
                rule.drop_after = None  # only the first response is cut
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def start_server(state: ArchiveServer) -> ThreadingHTTPServer:
    """Serve ``state`` from a daemon thread; the caller shuts the server down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
