"""The sandbox WSGI application: a local, SQLite-backed, Clarifai-compatible v2 REST API.

Contract:
- `Sandbox(db_path, *, keys=None, latency_ms=0, rate_limit=0, training_delay_s=0.5,
  predictions=None, quirks=None, users=None)` is a WSGI callable. `users` (None: any user id
  exists) lists the users PostCollaborators accepts besides the keys' users. `quirks` (None, "pessimistic" for all, or
  names; see quirks.py) turns on the pessimistic readings of unsettled API behaviour.
  `predictions` (a `reconciler.annotate.predictions.Predictions` or a
  JSONL path; `set_predictions` changes it) feeds the workflow runner (h_run.py). `keys` maps
  PAT -> user id (default {DEFAULT_KEY: DEFAULT_USER}); `add_key` adds one. `add_app_key(key,
  user_id, app_id)` adds an app-specific API key: bound to that one app, it works on the full
  routes of its app and on the app-less ones (`/v2/concepts`, ...), which a PAT may not use
  (CONN_INVALID_REQUEST: a PAT must name the user and app, docs.clarifai.com/control/authentication/pat).
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
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import parse_qs, quote

from reconciler.annotate.predictions import Predictions
from reconciler.sandbox import quirks as Q
from reconciler.sandbox.ctx import Ctx
from reconciler.sandbox.faults import DroppedConnection, Faults, LogEntry
from reconciler.sandbox.routes import match
from reconciler.sandbox.seed import seed_main
from reconciler.sandbox.store import Store
from reconciler.sandbox.wire import (
    CONN_BAD_REQUEST_FORMAT,
    CONN_DOES_NOT_EXIST,
    CONN_INSUFFICIENT_SCOPES,
    CONN_INVALID_REQUEST,
    CONN_KEY_INVALID,
    CONN_METHOD_NOT_ALLOWED,
    CONN_THROTTLED,
    INTERNAL_UNCATEGORIZED,
    RPC_MAX_MESSAGE_SIZE_EXCEEDED,
    SUCCESS,
    Fail,
    http_for,
    new_id,
    parse_stamp,
    status,
)

DEFAULT_KEY = "sandbox-key"
DEFAULT_USER = "sandbox"
MAX_BODY = 32 * 1024 * 1024

_REASONS = {
    200: "OK",
    207: "Multi-Status",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
}

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


def request_path(environ: dict[str, Any]) -> str:
    """The request path still percent-encoded, as the client sent it, so that an encoded '/' in an
    id stays inside its segment (`routes.match` decodes each segment). WSGI's PATH_INFO is
    decoded; servers that keep the raw target pass it as REQUEST_URI (our `sandbox serve`, the
    client's in-process transport) or RAW_URI (gunicorn). Without one, PATH_INFO is re-encoded."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return raw.split("?", 1)[0].split("#", 1)[0]
    return quote(str(environ.get("PATH_INFO", "") or "/"), safe="/:@!$&'()*+,;=~")


class Sandbox:
    def __init__(
        self,
        db_path: str,
        *,
        keys: dict[str, str] | None = None,
        latency_ms: float = 0,
        rate_limit: float = 0,
        training_delay_s: float = 0.5,
        predictions: Predictions | str | None = None,
        quirks: str | Iterable[str] | None = None,
        users: Iterable[str] | None = None,
    ) -> None:
        self.db_path = db_path
        #: the users that exist besides those with a key (PostCollaborators takes only known users);
        #: None: every user id exists (`users()`)
        self.known_users: frozenset[str] | None = frozenset(users) if users is not None else None
        self.quirks: frozenset[str] = Q.parse(quirks)  # ValueError (one line) for an unknown name
        self.keys: dict[str, str] = dict(keys) if keys is not None else {DEFAULT_KEY: DEFAULT_USER}
        self.app_keys: dict[str, tuple[str, str]] = {}
        self.faults = Faults(latency_ms=latency_ms, rate_limit=rate_limit)
        self.training_delay_s = float(training_delay_s)
        self.internal_errors: list[str] = []
        self._log = RequestLog(self._restart_numbering)
        self._count = 0
        self._log_lock = threading.RLock()
        self.predictions: Predictions | None = None
        self.set_predictions(predictions)
        self.store = Store(db_path)
        self._clock = time.time
        if Q.TIMESTAMP_PRECISION in self.quirks:  # continues after what the file already holds
            self._clock = Q.QuirkClock(after=parse_stamp(self.store.latest_stamp())).now
        with self.store.transaction() as tx:
            seed_main(tx)

    # --- public helpers ------------------------------------------------------------------------

    def set_predictions(self, predictions: Predictions | str | None) -> None:
        """Recorded model outputs the workflow runner uses (a `Predictions`, a JSONL path, or None)."""
        if isinstance(predictions, str):
            from reconciler.annotate.predictions import load

            predictions = load(predictions)
        self.predictions = predictions

    def add_key(self, key: str, user_id: str) -> None:
        self.keys[key] = user_id

    def users(self) -> frozenset[str] | None:
        """The users that exist, for PostCollaborators: with `users=` given, those and every user
        one of the sandbox's keys belongs to; without it, None: any user id exists (a sandbox has no
        sign-up; to act as a collaborator a user still needs a key, `add_key`)."""
        if self.known_users is None:
            return None
        return self.known_users | frozenset(self.keys.values()) | frozenset(u for u, _ in self.app_keys.values())

    def add_app_key(self, key: str, user_id: str, app_id: str) -> None:
        """An app-specific API key of `user_id`'s app `app_id` (the app need not exist yet)."""
        self.app_keys[key] = (user_id, app_id)

    @property
    def request_log(self) -> RequestLog:
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
        path = request_path(environ)
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
            resp = _error(Fail(CONN_THROTTLED, f"exceeded limit of {self.faults.rate_limit:g} requests per second"), req_id)
            resp[2].append(("Retry-After", str(max(1, math.ceil(wait)))))
            self._record(method, path, resp)
            return self._send(start_response, self._shaped(resp))
        failure = self.faults.take(n)
        if failure and failure.when == "before":
            return self._fail(start_response, failure.mode, method, path, req_id, 500)
        resp = self._dispatch(environ, method, path, req_id)
        if failure:  # after: the change (if any) has committed
            return self._fail(start_response, failure.mode, method, path, req_id, resp[0])
        self._record(method, path, resp)
        return self._send(start_response, self._shaped(resp))

    def _shaped(self, resp: Response) -> Response:
        """The response as the quirks that are on show it (status names, timestamp digits)."""
        if not self.quirks:
            return resp
        return resp[0], Q.shape_body(self.quirks, resp[1]), resp[2]

    def _fail(
        self, start_response: StartResponse, mode: str, method: str, path: str, req_id: str, would_be: int
    ) -> Iterable[bytes]:
        if mode == "drop":
            with self._log_lock:
                self._log.append(LogEntry(method, path, would_be, 0, dropped=True))
            raise DroppedConnection("sandbox fault injection: connection dropped")
        resp = _error(Fail(INTERNAL_UNCATEGORIZED, "sandbox fault injection: server error"), req_id)
        self._record(method, path, resp)
        return self._send(start_response, self._shaped(resp))

    def _record(self, method: str, path: str, resp: Response) -> None:
        with self._log_lock:
            self._log.append(LogEntry(method, path, resp[0], int(resp[1]["status"]["code"])))

    @staticmethod
    def _send(start_response: StartResponse, resp: Response) -> Iterable[bytes]:
        code, body, headers = resp
        data = json.dumps(body).encode()
        start_response(
            f"{code} {_REASONS.get(code, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
        )
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
        key = key.strip() if scheme == "Key" else ""
        user, key_app = self.keys.get(key), cast("str | None", None)
        if user is None and key in self.app_keys:
            user, key_app = self.app_keys[key]
        if user is None:
            # never say which key: it may be a real PAT pasted into the wrong place
            return _error(Fail(CONN_KEY_INVALID), req_id)
        if route.app_from_key:
            if key_app is None:  # [unverified] the real answer's code; that it fails is documented
                return _error(
                    Fail(
                        CONN_INVALID_REQUEST,
                        f"{route.rpc} without user_app_id needs an "
                        "app-specific API key; with a PAT, name the user and app in the path",
                    ),
                    req_id,
                )
            params = {**params, "user_app_id.user_id": user, "user_app_id.app_id": key_app}
        try:
            body = _read_body(environ, route.rpc if Q.DELETE_BODY_REFUSED in self.quirks else None) if method != "GET" else {}
        except Fail as f:
            return _error(f, req_id)
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        try:
            with self.store.transaction() as tx:
                ctx = Ctx(
                    tx=tx,
                    key_user=user,
                    params=params,
                    body=body,
                    query=query,
                    now=self._clock(),
                    req_id=req_id,
                    training_delay_s=self.training_delay_s,
                    extra={"predictions": self.predictions, "users": self.users()},
                    key_app=key_app,
                    quirks=self.quirks,
                )
                payload = route.handler(ctx)
                if self.quirks:
                    payload = Q.shape_payload(self.quirks, route.rpc, params, ctx.app_id, payload)
        except Fail as f:
            if Q.DUPLICATE_INVALID_REQUEST in self.quirks:
                f = Q.shape_failure(f)
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


def _read_body(environ: dict[str, Any], no_body_rpc: str | None = None) -> dict[str, Any]:
    """The JSON request body ({} if none). `no_body_rpc`: the quirk `delete-body-refused` is on
    and this is that RPC: a body its binding does not declare is refused."""
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
    if no_body_rpc is not None:
        refused = Q.refuse_body(no_body_rpc, raw)
        if refused is not None:
            raise refused
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
