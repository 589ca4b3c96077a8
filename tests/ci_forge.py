"""A fake code forge on loopback for the CI recipe tests: the few GitHub and GitLab REST routes the
scripts under examples/ci/scripts call, answered from a table the test fills, every request
recorded. Not a model of either API beyond the shapes the scripts read (each route's real
documentation is cited where the script calls it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: str
    body: Any
    headers: dict[str, str]


@dataclass
class Forge:
    url: str = ""
    #: (method, path) -> (status, body: JSON-able, or bytes for a download)
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def route(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.routes[(method, path)] = (status, body)

    def called(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            forge.calls.append(Call(self.command, parts.path, parts.query, body, dict(self.headers)))
            status, answer = forge.routes.get((self.command, parts.path), (404, {"message": "Not Found"}))
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/zip" if isinstance(answer, bytes) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


@contextmanager
def running_forge() -> Iterator[Forge]:
    forge = Forge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    forge.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
