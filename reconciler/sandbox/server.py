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
- Requests HTTP itself rejects get Clarifai-style JSON errors (``{"status": {"code": 11100,
  "description", "details", "req_id"}}``), never the stdlib's HTML page or a traceback: a request
  line over 64 KiB is 414, a header line over 64 KiB or over 100 headers is 431, bad syntax is
  400, an unsupported HTTP version 505. (Clarifai documents no code for these; 11100 is
  CONN_BAD_REQUEST_FORMAT in clarifai-grpc's clarifai_grpc/grpc/api/status/status_code_pb2.)
- A connection that sends nothing, or stops part-way, for `read_timeout` seconds (default 30) is
  closed; and one whose request (line, headers and body) is not all read within
  `request_deadline` seconds of connecting (default 60) is closed too, however steadily it
  trickles (a slowloris client sending a byte every few seconds never trips the first limit). So
  idle or trickling clients cannot hold server threads forever. Each connection serves one
  request.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from reconciler.core.errors import ReconcilerError
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.sandbox.wire import CONN_BAD_REQUEST_FORMAT, new_id, status

#: Seconds a connection may stay silent while its request is read.
READ_TIMEOUT = 30.0
#: Seconds from connecting by which the whole request must have been read.
REQUEST_DEADLINE = 60.0
#: The longest request line read (the stdlib's own limit for header lines).
MAX_LINE = 65536


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a client opening 16 connections at once (the
    # live reader's thread pool) would see SYNs dropped and wait a full second to retransmit.
    request_queue_size = 128
    read_timeout: float | None = READ_TIMEOUT
    request_deadline: float | None = REQUEST_DEADLINE

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints a traceback here; a client that hangs up or times out is not news,
        # and anything else is one line
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(f"sandbox: error serving {client_address}: {type(exc).__name__}: {exc}", file=sys.stderr)


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each bounded by the silence timeout and by what is left until the
    request's overall deadline (a TimeoutError once it has passed)."""

    def __init__(self, sock: socket.socket, timeout: float | None, deadline: float | None) -> None:
        super().__init__()
        self._sock, self._timeout = sock, timeout
        self._deadline = None if deadline is None else time.monotonic() + deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self._timeout
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request was not read within its deadline")
            wait = left if wait is None else min(wait, left)
        self._sock.settimeout(wait)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._timeout)  # writing the response: the silence timeout only


class _Handler(WSGIRequestHandler):
    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # type: ignore[attr-defined,misc]  # StreamRequestHandler applies it
        super().setup()
        deadline = self.server.request_deadline  # type: ignore[attr-defined]
        self.rfile.close()  # the stdlib's reader: replaced (closing it leaves the socket open)
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.timeout, deadline))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log lives in the sandbox; stderr stays quiet

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env["REQUEST_URI"] = self.path  # the raw target: PATH_INFO is percent-decoded (see app.request_path)
        return env

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's error page, as a Clarifai-style JSON body (parse_request calls this)."""
        reason = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps(
            {"status": status(CONN_BAD_REQUEST_FORMAT, "sandbox-" + new_id(), details=f"HTTP {code}: {message or reason}")}
        ).encode()
        head = (
            f"HTTP/1.0 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        self.close_connection = True
        try:
            self.wfile.write(head + body)
            self.wfile.flush()
        except OSError:
            pass  # the client is gone

    def handle(self) -> None:
        try:
            self._handle_one()
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # a silent, slow or vanished client: just hang up

    def _handle_one(self) -> None:
        # wsgiref's handle(), minus its error page: a dropped connection must send nothing at all.
        self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
        self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
        if not self.raw_requestline:
            return  # connected and left (or timed out) without a request
        if len(self.raw_requestline) > MAX_LINE:
            self.send_error(414, "request line too long")
            return
        if not self.parse_request():
            return
        handler = ServerHandler(
            cast(IO[bytes], self.rfile), cast(IO[bytes], self.wfile), self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if not getattr(handler, "headers_sent", False):
            # the app raised ConnectionResetError (a DroppedConnection): wsgiref returned without
            # writing; close the socket so the client sees a dropped connection, not a hang
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _bind(
    sandbox: Sandbox,
    host: str,
    port: int,
    read_timeout: float | None = READ_TIMEOUT,
    request_deadline: float | None = REQUEST_DEADLINE,
) -> _Server:
    server = _Server((host, port), _Handler)
    server.read_timeout = read_timeout
    server.request_deadline = request_deadline
    server.set_app(sandbox)
    return server


@contextmanager
def running_server(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 0,
    read_timeout: float | None = READ_TIMEOUT,
    request_deadline: float | None = REQUEST_DEADLINE,
) -> Iterator[str]:
    server = _bind(sandbox, host, port, read_timeout, request_deadline)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    db: str = ".reconciler/sandbox.sqlite",
    latency_ms: float = 0.0,
    rate_limit: float = 0.0,
    predictions: str | None = None,
    quirks: str | None = None,
    keys: dict[str, str] | None = None,
) -> int:
    from reconciler.sandbox.quirks import known_names
    from reconciler.sandbox.quirks import parse as parse_quirks

    if quirks is not None and not quirks.replace(",", "").strip():
        raise ReconcilerError(
            f"--quirks {quirks!r} names no quirk; give --quirks alone for all of them, or names: {known_names()}"
        )
    try:
        active = parse_quirks(quirks)
    except ValueError as err:
        raise ReconcilerError(f"--quirks: {err}") from None
    if predictions is not None and not os.path.isfile(predictions):
        what = "not a regular file" if os.path.exists(predictions) else "no such file"
        raise ReconcilerError(f"--predictions: {what}: {predictions}")
    from reconciler.annotate.predictions import load as load_predictions

    recorded = load_predictions(predictions) if predictions is not None else None  # bad lines: file:line
    from reconciler.sandbox.opening import open_sandbox

    parent = os.path.dirname(os.path.abspath(db))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise ReconcilerError(f"cannot open the sandbox database {db}: {err.strerror or err}") from None
    sandbox = open_sandbox(db, latency_ms=latency_ms, rate_limit=rate_limit, predictions=recorded, quirks=active)
    for key, user in (keys or {}).items():
        sandbox.add_key(key, user)
    try:
        server = _bind(sandbox, host, port)
    except OSError as err:
        sandbox.close()
        raise ReconcilerError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: the sandbox is listening on {host}, not only on loopback", file=sys.stderr)
    print(f"sandbox: serving the Clarifai v2 API on http://{host}:{server.server_address[1]}", flush=True)
    print(f"sandbox: API key {DEFAULT_KEY} (user {DEFAULT_USER}); database {db}", flush=True)
    if keys:
        print(f"sandbox: and the keys of {', '.join(sorted(set(keys.values())))}", flush=True)
    if active:
        print(f"sandbox: pessimistic quirks on: {', '.join(sorted(active))}", flush=True)
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
