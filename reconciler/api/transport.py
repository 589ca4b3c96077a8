"""Transport and retry: URL paths, the in-process WSGI transport, the rate limiter, and what is
worth retrying.

Contract:
- Paths: every id that goes into a URL goes through `path_segment` (`api_path`, `app_path` build
  paths from segments), so an id can never leave its segment: '/', '?', '#', '%', spaces and any
  non-ASCII are percent-encoded, and the dot segments '.' and '..' are sent as %2E / %2E%2E, which
  no client or server removes as RFC 3986 dot segments would be.
- Rate limit: a thread-safe fixed-spacing limiter (default 15 requests/s, Clarifai's documented
  per-user limit; 0 = off) spaces every attempt, retries included, so a big apply is not
  throttled in the first place. Spacing rather than a bursty token bucket keeps every one-second
  window within the limit.
- `retryable(err)`: transport failures (but not a host name that does not resolve:
  `unresolvable`), HTTP 429 / CONN_THROTTLED and the other "try again" statuses, HTTP 5xx but
  501; never CONN_EXCEED_HOURLY_LIMIT (an hour away).
"""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.core.errors import ApiError
from reconciler.core.status_codes import BY_NAME

CONN_EXCEED_HOURLY_LIMIT = BY_NAME["CONN_EXCEED_HOURLY_LIMIT"]

#: Statuses that mean "the same request may succeed later".
RETRY_CODES = frozenset(
    BY_NAME[name]
    for name in ("TRY_AGAIN", "CONN_THROTTLED", "RPC_REQUEST_QUEUE_FULL", "RPC_SERVER_UNAVAILABLE", "RPC_REQUEST_TIMEOUT")
)
#: Transport failures worth retrying (local protocol errors / bad URLs are bugs, not weather).
#: ConnectionError: a transport that runs the app in process (httpx's WSGITransport, used for the
#: embedded sandbox) lets the app's own "connection reset" through unwrapped.
RETRY_EXC = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)
#: ... of which these mean the request never reached the server (safe to repeat any write).
UNSENT_EXC = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def path_segment(value: str) -> str:
    """One URL path segment holding `value` and nothing else (see the module docstring)."""
    encoded = quote(str(value), safe="")  # leaves only A-Z a-z 0-9 _ . - ~ unencoded
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def api_path(*segments: str) -> str:
    """``/seg1/seg2/...`` with every segment encoded by `path_segment`."""
    return "".join("/" + path_segment(s) for s in segments)


def app_path(app_id: str, user_id: str | None = None) -> str:
    """``/v2/users/{user}/apps/{app}``; user "me" (the PAT's owner) when none is given."""
    return api_path("v2", "users", user_id or "me", "apps", app_id)


def sandbox_transport(app: Callable[..., Any]) -> httpx.BaseTransport:
    """httpx's WSGITransport for an in-process app, also passing the request's raw path as
    ``REQUEST_URI`` (WSGI's PATH_INFO is percent-decoded, so an encoded '/' inside an id would
    otherwise reach the app as a segment separator)."""
    return _RawPathWSGITransport(app=app)


class _RawPathWSGITransport(httpx.WSGITransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode("ascii")
        app = self.app

        def with_raw(environ: dict[str, Any], start_response: Any) -> Any:
            environ["REQUEST_URI"] = raw
            return app(environ, start_response)

        inner = httpx.WSGITransport(
            app=with_raw,
            raise_app_exceptions=self.raise_app_exceptions,
            script_name=self.script_name,
            remote_addr=self.remote_addr,
            wsgi_errors=self.wsgi_errors,
        )
        return inner.handle_request(request)


@dataclass
class Stats:
    """Counters for benchmarks and tests. `requests` counts every attempt sent, retries included."""

    requests: int = 0
    retries: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    slept_s: float = 0.0  # time spent in backoff sleeps
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _count(self, method: str, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            self.by_method[method] += 1
            if retry:
                self.retries += 1

    def reset(self) -> None:
        with self._lock:
            self.requests = self.retries = 0
            self.by_method.clear()
            self.slept_s = 0.0


class RateLimiter:
    """Fixed spacing of `1/rate` seconds between request starts, shared by all threads. Each caller
    reserves the next free slot under the lock and sleeps outside it, so waiters queue in order."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


def retry_after(resp: httpx.Response | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/garbled."""
    if resp is None:
        return None
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retryable(err: ApiError) -> bool:
    """Whether the same request may succeed later (see the module docstring)."""
    if err.http_status == 0:  # transport failure
        return True
    if err.code == CONN_EXCEED_HOURLY_LIMIT:  # an hour away, whatever the HTTP code (429 too)
        return False
    if err.http_status == 429 or err.code in RETRY_CODES:
        return True
    return err.http_status >= 500 and err.http_status != 501


def unresolvable(exc: BaseException) -> str | None:
    """The resolver's words when `exc` is a failure to resolve the host name (socket.gaierror
    anywhere in its chain: "Name or service not known", "Temporary failure in name resolution"),
    else None. Retrying those only delays the error: a wrong or offline host fails at once."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, socket.gaierror):
            return cur.strerror or str(cur)
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None
