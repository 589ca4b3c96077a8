"""Serving the sandbox over HTTP with the stdlib's threading WSGI server.

Contract:
- `serve(host, port, db, latency_ms, rate_limit, predictions) -> int` is `reconciler sandbox
  serve`: binds (loopback by default), prints the base URL and the API key on stdout, serves until
  Ctrl-C, then stops cleanly and returns 0. A port in use or a bad db path is a ReconcilerError.
  `predictions` (a JSONL of recorded model outputs, see reconciler/predictions.py) feeds the
  workflow runner; a bad line is a ReconcilerError `file:line: message`.
- `running_server(sandbox, host="127.0.0.1", port=0)` is a context manager for tests: it serves
  `sandbox` from a background thread and yields the base URL (no trailing slash, no /v2); it shuts
  the server down on exit.
- A `DroppedConnection` raised by the app (fault injection) closes the socket with no response.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Iterator
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from reconciler.errors import ReconcilerError
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a client opening 16 connections at once (the
    # live reader's thread pool) would see SYNs dropped and wait a full second to retransmit.
    request_queue_size = 128


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log lives in the sandbox; stderr stays quiet

    def handle(self) -> None:
        # wsgiref's handle(), minus its error page: a dropped connection must send nothing at all.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
                                multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if not handler.headers_sent:
            # the app raised ConnectionResetError (a DroppedConnection): wsgiref returned without
            # writing; close the socket so the client sees a dropped connection, not a hang
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _bind(sandbox: Sandbox, host: str, port: int) -> _Server:
    server = _Server((host, port), _Handler)
    server.set_app(sandbox)
    return server


@contextmanager
def running_server(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    server = _bind(sandbox, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(host: str = "127.0.0.1", port: int = 8080, db: str = ".reconciler/sandbox.sqlite",
          latency_ms: float = 0.0, rate_limit: float = 0.0, predictions: str | None = None) -> int:
    if predictions is not None and not os.path.isfile(predictions):
        raise ReconcilerError(f"--predictions: no such file: {predictions}")
    from reconciler.predictions import load as load_predictions

    recorded = load_predictions(predictions) if predictions is not None else None  # bad lines: file:line
    from reconciler.client import open_sandbox

    parent = os.path.dirname(os.path.abspath(db))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise ReconcilerError(f"cannot open the sandbox database {db}: {err.strerror or err}") from None
    sandbox = open_sandbox(db, latency_ms=latency_ms, rate_limit=rate_limit, predictions=recorded)
    try:
        server = _bind(sandbox, host, port)
    except OSError as err:
        sandbox.close()
        raise ReconcilerError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: the sandbox is listening on {host}, not only on loopback", file=sys.stderr)
    print(f"sandbox: serving the Clarifai v2 API on http://{host}:{server.server_address[1]}", flush=True)
    print(f"sandbox: API key {DEFAULT_KEY} (user {DEFAULT_USER}); database {db}", flush=True)
    print("sandbox: press Ctrl-C to stop", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("sandbox: stopped", flush=True)
    finally:
        server.server_close()
        sandbox.close()
    return 0
