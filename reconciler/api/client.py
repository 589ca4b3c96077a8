"""The Clarifai v2 REST client: the request loop (with `transport`, `status`, `paging`, `secrets`,
the httpx users of this package).

Contract:
- `Client(base_url, pat, ...)` sends JSON with ``Authorization: Key <pat>`` and returns the parsed
  JSON body as a dict when the body's ``status.code`` is SUCCESS (10000, or the name "SUCCESS").
  Every ``status.code`` in a body (the response's, a model version's, ...) sent as a name is turned
  into its number here, once (`normalise_status_codes`), so no caller ever sees a name.
  Anything else -- a non-success status, a non-JSON or truncated body, a body of the wrong shape,
  a connection that cannot be made -- raises `errors.ApiError` whose text is one line and whose
  fields carry the code, HTTP status, description, req_id, method and path. The body's status is
  authoritative: Clarifai can answer HTTP 200 with an error status and vice versa.
- Paging (`list_all`): see `paging`.
- Retries: on HTTP 429 / CONN_THROTTLED (11005) -- but never on CONN_EXCEED_HOURLY_LIMIT (11003),
  whose error says when to run again --, other "try again" statuses, HTTP 5xx (not 501)
  and transport failures (connect/read/write errors, timeouts, remote protocol errors), with
  exponential backoff and full jitter, never sooner than a ``Retry-After`` header asks, at most
  `max_retries` times and within `max_retry_seconds` overall. Writes (POST/PATCH/DELETE) are
  retried too although they are not idempotent on the wire: a write whose answer was lost may
  have committed, and its retry then reports "already exists" / "not found" -- which the apply
  layer treats as "read back and compare" / "done". A write whose repeat would duplicate
  (PostModelVersions: new server-assigned id) is sent with ``retry=False``: then only what
  provably never ran is retried (throttled, could not connect). `max_retries=0` turns retries off.
- Rate limit and what is retryable: see `transport`.
- The PAT is never shown: not in `repr`, not in exceptions, not in the ``--debug`` trace (which
  prints ``Authorization: Key ***``); any text echoed from a response is scrubbed of it too.
- `Client.map(fn, items)` runs calls on a thread pool (httpx.Client is thread-safe and the limiter
  holds across threads). With the embedded sandbox, httpx's WSGITransport runs the app in the
  calling thread, so the pool is also where its concurrency comes from.
- Paths: see `transport.path_segment`. Choosing the endpoint (`connect`) is `commands.connect`.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

import httpx

from reconciler.api.paging import MAX_PER_PAGE, list_all
from reconciler.api.secrets import Secret, check_pat
from reconciler.api.status import SUCCESS, interpret, outcome_words
from reconciler.api.transport import (
    RETRY_EXC,
    UNSENT_EXC,
    RateLimiter,
    Stats,
    api_path,
    app_path,
    retry_after,
    retryable,
    unresolvable,
)
from reconciler.core.errors import ApiError
from reconciler.core.status_codes import BY_NAME

__all__ = ["Client", "api_path", "app_path", "MAX_PER_PAGE"]

T = TypeVar("T")
R = TypeVar("R")


class Client:
    """A small synchronous Clarifai REST client. See the module docstring for the contract."""

    def __init__(
        self,
        base_url: str,
        pat: str,
        *,
        user_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        rate_limit: float = 15.0,
        max_retries: int = 5,
        timeout: float = 30.0,
        debug: TextIO | bool | None = None,
        max_retry_seconds: float = 120.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_workers: int = 64,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        label: str | None = None,
        endpoint: str | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        #: where this client writes, as plans record it: the API base, or "local sandbox at PATH"
        self.endpoint = endpoint or self.base_url
        check_pat(pat, "the PAT")
        self._pat = Secret(pat)
        self.user_id = user_id
        self.max_retries = max(0, int(max_retries))
        self.max_retry_seconds = max_retry_seconds
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_workers = max(1, int(max_workers))
        self.debug: TextIO | None = sys.stderr if debug is True else (debug or None)
        self.label = label or self.base_url  # what messages call this endpoint
        #: told one line before each retry's wait ("... retrying (n/5) in Xs"): the CLI prints it
        self.on_retry = on_retry
        #: told the same as data (method, path, attempt, max_retries, code, http_status, wait_s,
        #: reason): `apply --json`'s `retry` events
        self.on_retry_event: Callable[[dict[str, Any]], None] | None = None
        self.stats = Stats()
        #: called with (method, path, params, request body, response) after every response
        #: received, before it is interpreted: `probe` records raw answers through it
        self.observe: Callable[[str, str, dict[str, Any] | None, dict[str, Any] | None, httpx.Response], None] | None = None
        self._sleep, self._clock = sleep, clock
        #: set while an apply runs (`apply.scheduler`): once it is set, a retry's wait ends at once
        #: and the request gives up with its last failure, so a stopping apply never waits on it
        self.stop: threading.Event | None = None
        #: the limit is per user: a project's apps on one credential share it (`for_user`)
        self.limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    # --- lifecycle / identity ------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def for_user(self, user_id: str | None) -> Client:
        """A copy of this client acting for `user_id`, with its own retry callbacks, sharing the
        connection pool, rate limiter, PAT and request counts (several apps of a project on one
        credential share them); closing the original closes it."""
        other = copy.copy(self)
        other.user_id = user_id
        return other

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, user_id={self.user_id!r}, pat='***')"

    def redact(self, text: str) -> str:
        """`text` with the PAT replaced by ***: for anything echoed from a server or an exception."""
        pat = self._pat.reveal()
        return text.replace(pat, "***") if pat else text

    def holds_pat(self, value: Any) -> bool:
        """Whether this client's PAT shows in `value`: a str, or any key or string of a JSON-like
        value (a record must not write an input or concept id a server built from it)."""
        pat = self._pat.reveal()
        if isinstance(value, str):
            return bool(pat) and pat in value
        if isinstance(value, dict):
            return any(self.holds_pat(k) or self.holds_pat(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(self.holds_pat(v) for v in value)
        return False

    def _scrub(self, obj: Any) -> Any:
        """A JSON value with the PAT redacted from every string (error bodies kept for callers)."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self._scrub(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._scrub(v) for v in obj]
        return obj

    def app_path(self, app_id: str, user_id: str | None = None) -> str:
        """``/v2/users/{user}/apps/{app}``; user "me" (the PAT's owner) when none is known."""
        return app_path(app_id, user_id or self.user_id)

    # --- verbs -----------------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return self.request("POST", path, body=body, retry=retry)

    def patch(self, path: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return self.request("PATCH", path, body=body, retry=retry)

    def put(self, path: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """PUT (PutTaskAssignments: "an idempotent action", clarifai-grpc service.proto)."""
        return self.request("PUT", path, body=body, retry=retry)

    def delete(self, path: str, body: dict[str, Any] | None = None, *, retry: bool = True) -> dict[str, Any]:
        return self.request("DELETE", path, body=body, retry=retry)

    def list_all(
        self,
        path: str,
        key: str,
        params: dict[str, Any] | None = None,
        *,
        per_page: int = MAX_PER_PAGE,
        short_page_ends: bool = True,
        pages_hint: int = 1,
    ) -> list[dict[str, Any]]:
        """Every item of a paged listing, in server order (`paging.list_all`)."""
        return list_all(self, path, key, params, per_page=per_page, short_page_ends=short_page_ends, pages_hint=pages_hint)

    def map(self, fn: Callable[[T], R], items: Iterable[T], max_workers: int | None = None) -> list[R]:
        """`[fn(x) for x in items]`, run on a thread pool; results in input order. The first
        exception (in input order) is raised once all started calls have finished; calls not yet
        started are cancelled."""
        items = list(items)
        workers = min(max_workers or self.max_workers, len(items))
        if workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clarifai") as pool:
            futures = [pool.submit(fn, x) for x in items]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    # --- the one request loop -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """Send one logical request (with retries); the parsed success body, or ApiError.
        ``retry=False`` (for writes whose repeat would duplicate, e.g. PostModelVersions) still
        retries what provably never ran: throttling and failures to connect."""
        headers = {"Authorization": f"Key {self._pat.reveal()}", "Accept": "application/json"}
        content = None
        if body is not None:
            try:  # NaN and infinities are not JSON (RFC 8259 section 6); never send them
                content = json.dumps(body, allow_nan=False).encode()
            except ValueError:
                raise self.error(
                    "the request holds a non-finite number (NaN or infinity), which JSON cannot carry; nothing was sent",
                    method,
                    path,
                ) from None
            headers["Content-Type"] = "application/json"
        started = self._clock()
        attempt = 0
        while True:
            self.limiter.acquire()
            self.stats._count(method, retry=attempt > 0)
            t0 = time.perf_counter()
            resp: httpx.Response | None = None
            try:
                resp = self._http.request(method, path, params=params, content=content, headers=headers)
            except RETRY_EXC as exc:
                if unresolvable(exc):  # a host that does not resolve will not resolve in a second either
                    host = urlsplit(self.base_url).hostname or self.base_url
                    raise self.error(
                        f"cannot reach {self.label}: the host name {host!r} does not resolve ({unresolvable(exc)}); "
                        "check --api-base / CLARIFAI_API_BASE and the network (not retried)",
                        method,
                        path,
                    ) from None
                failure: ApiError = self.error(f"cannot reach {self.label}: {type(exc).__name__}: {exc}", method, path)
                unsent = isinstance(exc, UNSENT_EXC)
            except httpx.LocalProtocolError as exc:  # its text can quote our headers: not shown
                raise self.error(
                    f"cannot send the request to {self.label}: {type(exc).__name__} (a header value HTTP cannot carry)",
                    method,
                    path,
                ) from None
            except httpx.HTTPError as exc:  # unsupported protocol, proxy errors
                raise self.error(f"cannot reach {self.label}: {type(exc).__name__}: {exc}", method, path) from None
            else:
                if self.observe is not None:
                    self.observe(method, path, params, body, resp)
                result = interpret(method, path, resp, self.label, self.error)
                if isinstance(result, dict):
                    self._trace(method, path, params, resp, t0, SUCCESS, result)
                    return result
                failure = result
                unsent = False
            self._trace(method, path, params, resp, t0, failure.code, None, failure)
            safe = retry or unsent or failure.http_status == 429 or failure.code == BY_NAME["CONN_THROTTLED"]
            if not safe or not retryable(failure) or attempt >= self.max_retries:
                raise self._final(failure, attempt)
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))
            hint = retry_after(resp)
            if hint is not None:
                delay = max(delay, min(hint, self.backoff_cap * 3))
            if self._clock() - started + delay > self.max_retry_seconds or self._stopping():
                raise self._final(failure, attempt)
            attempt += 1
            why = (
                "throttled"
                if failure.http_status == 429 or failure.code == 11005
                else ("unreachable" if not failure.http_status else f"HTTP {failure.http_status}")
            )
            if self.on_retry is not None:
                self.on_retry(f"  {method} {path}: {why}; retrying ({attempt}/{self.max_retries}) in {delay:.1f}s")
            if self.on_retry_event is not None:
                self.on_retry_event(
                    {
                        "method": method,
                        "path": self.redact(path),
                        "attempt": attempt,
                        "max_retries": self.max_retries,
                        "code": failure.code,
                        "http_status": failure.http_status,
                        "wait_s": round(delay, 3),
                        "reason": why,
                    }
                )
            with self.stats._lock:
                self.stats.slept_s += delay
            if self.stop is not None and self._sleep is time.sleep:
                self.stop.wait(delay)  # ends at once when the apply stops
            else:
                self._sleep(delay)
            if self._stopping():
                raise self._final(failure, attempt - 1)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _final(self, err: ApiError, attempt: int) -> ApiError:
        if attempt:
            err.message = f"{err.message} (gave up after {attempt + 1} attempts)"
            err.args = (err.message,)
        return err

    def error(
        self,
        text: str,
        method: str,
        path: str,
        *,
        code: int = 0,
        http_status: int = 0,
        description: str = "",
        req_id: str = "",
        body: dict[str, Any] | None = None,
    ) -> ApiError:
        line = " ".join(f"{method} {path}: {text}".split())  # one line, whatever the server sent
        if req_id:
            line += f" [req_id {req_id}]"
        details: dict[str, object] = {"response": self._scrub(body)} if body is not None else {}
        # what the server said is recognised before anything is redacted from it
        said = outcome_words(description, body)
        # every field echoed from the server is scrubbed, req_id included (a server can echo anything)
        return ApiError(
            self.redact(line),
            code=code,
            http_status=http_status,
            description=self.redact(description),
            req_id=self.redact(req_id),
            method=method,
            path=self.redact(path),
            details=details,
            said=said,
        )

    def _trace(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        resp: httpx.Response | None,
        t0: float,
        code: int,
        data: dict[str, Any] | None,
        err: ApiError | None = None,
    ) -> None:
        if self.debug is None:
            return
        ms = (time.perf_counter() - t0) * 1000
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        target = f"{path}?{query}" if query else path
        http = resp.status_code if resp is not None else "---"
        req_id = ""
        if data is not None:
            req_id = str((data.get("status") or {}).get("req_id") or "")
        elif err is not None:
            req_id = err.req_id
        line = (
            f"[http] {method} {target} -> {http} code={code} {ms:.1f}ms req_id={req_id or '-'} headers={{Authorization: Key ***}}"
        )
        if err is not None and resp is None:
            line += f" error={err.message}"
        print(self.redact(line), file=self.debug, flush=True)
