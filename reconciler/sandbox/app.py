"""The sandbox WSGI application: a local, SQLite-backed, Clarifai-compatible v2 REST API.

Contract:
- `Sandbox(db_path, *, keys=None, latency_ms=0, rate_limit=0, training_delay_s=0.5,
  predictions=None)` is a WSGI callable. `predictions` (a `reconciler.predictions.Predictions` or a
  JSONL path; `set_predictions` changes it) feeds the workflow runner (h_run.py). `keys` maps
  API key -> user id (default {DEFAULT_KEY: DEFAULT_USER}); `add_key` adds one.
- Every response is JSON with `status {code, description, details?, req_id}`; enums are integers;
  the HTTP code follows the status code (`wire.http_for`). No traceback is ever sent: a handler bug
  is INTERNAL_UNCATEGORIZED (500) and its one-line summary is kept in `internal_errors`.
- One request is one SQLite transaction (`Store.transaction`): a failing request writes nothing.
- The request key is never echoed, logged or stored.
- Fault injection (`sandbox.faults`, see faults.py) and the request log (`sandbox.request_log`,
  `sandbox.reset_log()`) cover non-admin requests. Loopback-only admin endpoints, no key needed:
  GET/POST `/_sandbox/faults`, GET `/_sandbox/log`, POST `/_sandbox/reset-log`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from reconciler.predictions import Predictions
from reconciler.sandbox.ctx import Ctx
from reconciler.sandbox.faults import DroppedConnection, Faults, LogEntry
from reconciler.sandbox.routes import match
from reconciler.sandbox.seed import seed_main
from reconciler.sandbox.store import Store
from reconciler.sandbox.wire import (
    CONN_BAD_REQUEST_FORMAT, CONN_DOES_NOT_EXIST, CONN_INSUFFICIENT_SCOPES, CONN_INVALID_REQUEST,
    CONN_KEY_INVALID, CONN_METHOD_NOT_ALLOWED, CONN_THROTTLED, INTERNAL_UNCATEGORIZED,
    RPC_MAX_MESSAGE_SIZE_EXCEEDED, SUCCESS, Fail, http_for, new_id, status,
)

DEFAULT_KEY = "sandbox-key"
DEFAULT_USER = "sandbox"
MAX_BODY = 32 * 1024 * 1024

_REASONS = {200: "OK", 207: "Multi-Status", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error"}

StartResponse = Callable[..., Any]
Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class RequestLog(list[LogEntry]):
    """A list of `LogEntry`; clearing it also restarts the sandbox's request numbering."""

    def __init__(self, on_clear: Callable[[], None]) -> None:
        super().__init__()
        self._on_clear = on_clear

    def clear(self) -> None:
        super().clear()
        self._on_clear()


class Sandbox:
    def __init__(self, db_path: str, *, keys: dict[str, str] | None = None, latency_ms: float = 0,
                 rate_limit: float = 0, training_delay_s: float = 0.5,
                 predictions: "Predictions | str | None" = None) -> None:
        self.db_path = db_path
        self.keys: dict[str, str] = dict(keys) if keys is not None else {DEFAULT_KEY: DEFAULT_USER}
        self.faults = Faults(latency_ms=latency_ms, rate_limit=rate_limit)
        self.training_delay_s = float(training_delay_s)
        self.internal_errors: list[str] = []
        self._log = RequestLog(self._restart_numbering)
        self._count = 0
        self._log_lock = threading.RLock()
        self.predictions: Predictions | None = None
        self.set_predictions(predictions)
        self.store = Store(db_path)
        with self.store.transaction() as tx:
            seed_main(tx)

    # --- public helpers ------------------------------------------------------------------------

    def set_predictions(self, predictions: "Predictions | str | None") -> None:
        """Recorded model outputs the workflow runner uses (a `Predictions`, a JSONL path, or None)."""
        if isinstance(predictions, str):
            from reconciler.predictions import load

            predictions = load(predictions)
        self.predictions = predictions

    def add_key(self, key: str, user_id: str) -> None:
        self.keys[key] = user_id

    @property
    def request_log(self) -> "RequestLog":
        """The live log of non-admin requests, oldest first; `.clear()` empties it and restarts
        request numbering (fault `request` k counts from there)."""
        return self._log

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _restart_numbering(self) -> None:
        with self._log_lock:
            self._count = 0

    def close(self) -> None:
        self.store.close()

    # --- WSGI ----------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        req_id = "sandbox-" + new_id()
        if path.startswith("/_sandbox/"):
            return self._send(start_response, self._admin(environ, method, path, req_id))
        with self._log_lock:
            self._count += 1
            n = self._count
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000.0)
        wait = self.faults.throttle()
        if wait is not None:
            resp = _error(Fail(CONN_THROTTLED, f"exceeded limit of {self.faults.rate_limit:g} requests per second"),
                          req_id)
            resp[2].append(("Retry-After", str(max(1, math.ceil(wait)))))
            self._record(method, path, resp)
            return self._send(start_response, resp)
        failure = self.faults.take(n)
        if failure and failure.when == "before":
            return self._fail(start_response, failure.mode, method, path, req_id, 500)
        resp = self._dispatch(environ, method, path, req_id)
        if failure:  # after: the change (if any) has committed
            return self._fail(start_response, failure.mode, method, path, req_id, resp[0])
        self._record(method, path, resp)
        return self._send(start_response, resp)

    def _fail(self, start_response: StartResponse, mode: str, method: str, path: str, req_id: str,
              would_be: int) -> Iterable[bytes]:
        if mode == "drop":
            with self._log_lock:
                self._log.append(LogEntry(method, path, would_be, 0, dropped=True))
            raise DroppedConnection("sandbox fault injection: connection dropped")
        resp = _error(Fail(INTERNAL_UNCATEGORIZED, "sandbox fault injection: server error"), req_id)
        self._record(method, path, resp)
        return self._send(start_response, resp)

    def _record(self, method: str, path: str, resp: Response) -> None:
        with self._log_lock:
            self._log.append(LogEntry(method, path, resp[0], int(resp[1]["status"]["code"])))

    @staticmethod
    def _send(start_response: StartResponse, resp: Response) -> Iterable[bytes]:
        code, body, headers = resp
        data = json.dumps(body).encode()
        start_response(f"{code} {_REASONS.get(code, 'Error')}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers])
        return [data]

    # --- dispatch ------------------------------------------------------------------------------------

    def _dispatch(self, environ: dict[str, Any], method: str, path: str, req_id: str) -> Response:
        route, params, known = match(method, path)
        if route is None:
            if known:
                return _error(Fail(CONN_METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}"), req_id)
            return _error(Fail(CONN_DOES_NOT_EXIST, f"no route for {method} {path}", http=404), req_id)
        auth = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, key = auth.partition(" ")
        user = self.keys.get(key.strip()) if scheme == "Key" else None
        if user is None:
            # never say which key: it may be a real PAT pasted into the wrong place
            return _error(Fail(CONN_KEY_INVALID, "Invalid API key or Invalid API key/application pair"), req_id)
        try:
            body = _read_body(environ) if method != "GET" else {}
        except Fail as f:
            return _error(f, req_id)
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        try:
            with self.store.transaction() as tx:
                ctx = Ctx(tx=tx, key_user=user, params=params, body=body, query=query, now=time.time(),
                          req_id=req_id, training_delay_s=self.training_delay_s,
                          extra={"predictions": self.predictions})
                payload = route.handler(ctx)
        except Fail as f:
            return _error(f, req_id)
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            # almost always a request with a field of the wrong shape that slipped past the checks
            self.internal_errors.append(f"{route.rpc}: {type(err).__name__}: {err}")
            return _error(Fail(CONN_INVALID_REQUEST, f"invalid request for {route.rpc}"), req_id)
        except Exception as err:  # noqa: BLE001 - a bug must still give a Clarifai-shaped 500
            self.internal_errors.append(f"{route.rpc}: {type(err).__name__}: {err}")
            return _error(Fail(INTERNAL_UNCATEGORIZED, "internal error"), req_id)
        return http_for(ctx.code), {"status": status(ctx.code, req_id), **payload}, []

    # --- admin ----------------------------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], method: str, path: str, req_id: str) -> Response:
        remote = str(environ.get("REMOTE_ADDR", "127.0.0.1"))
        if not (remote.startswith("127.") or remote in ("::1", "localhost")):
            return _error(Fail(CONN_INSUFFICIENT_SCOPES, "admin endpoints answer loopback clients only"), req_id)
        ok = {"status": status(SUCCESS, req_id)}
        try:
            if path == "/_sandbox/faults" and method == "GET":
                return 200, {**ok, **self.faults.snapshot()}, []
            if path == "/_sandbox/faults" and method == "POST":
                try:
                    self.faults.configure(_read_body(environ))
                except (ValueError, KeyError, TypeError) as err:
                    raise Fail(CONN_INVALID_REQUEST, f"bad fault settings: {err}") from None
                return 200, {**ok, **self.faults.snapshot()}, []
            if path == "/_sandbox/log" and method == "GET":
                with self._log_lock:
                    entries, count = [e.as_dict() for e in self._log], self._count
                return 200, {**ok, "requests": entries, "count": count}, []
            if path == "/_sandbox/reset-log" and method == "POST":
                self.reset_log()
                return 200, ok, []
        except Fail as f:
            return _error(f, req_id)
        return _error(Fail(CONN_DOES_NOT_EXIST, f"no admin route {method} {path}", http=404), req_id)


def _error(f: Fail, req_id: str) -> Response:
    return f.http, {"status": status(f.code, req_id, f.details)}, []


def _read_body(environ: dict[str, Any]) -> dict[str, Any]:
    raw_len = str(environ.get("CONTENT_LENGTH", "") or "0")
    if not (raw_len.isascii() and raw_len.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise Fail(CONN_BAD_REQUEST_FORMAT, "bad Content-Length")
    length = int(raw_len)
    if length > MAX_BODY:
        raise Fail(RPC_MAX_MESSAGE_SIZE_EXCEEDED, f"request body over {MAX_BODY} bytes")
    try:
        raw = environ["wsgi.input"].read(length) if length else b""
    except TimeoutError:  # the server's read timeout: the client stopped sending part-way
        raise Fail(CONN_BAD_REQUEST_FORMAT, "the request body did not arrive in time", http=408) from None
    if len(raw) < length:
        raise Fail(CONN_BAD_REQUEST_FORMAT, f"the request body ended after {len(raw)} of {length} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Fail(CONN_BAD_REQUEST_FORMAT, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Fail(CONN_BAD_REQUEST_FORMAT, "the request body must be a JSON object")
    return body


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity could not be sent back as JSON
