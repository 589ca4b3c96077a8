"""The Clarifai v2 REST client: the only module that imports httpx.

Contract:
- `Client(base_url, pat, ...)` sends JSON with ``Authorization: Key <pat>`` and returns the parsed
  JSON body as a dict when the body's ``status.code`` is SUCCESS (10000, or the name "SUCCESS").
  Every ``status.code`` in a body (the response's, a model version's, ...) sent as a name is turned
  into its number here, once (`normalise_status_codes`), so no caller ever sees a name.
  Anything else -- a non-success status, a non-JSON or truncated body, a body of the wrong shape,
  a connection that cannot be made -- raises `errors.ApiError` whose text is one line and whose
  fields carry the code, HTTP status, description, req_id, method and path. The body's status is
  authoritative: Clarifai can answer HTTP 200 with an error status and vice versa.
- Paging (`list_all`) follows ``page``/``per_page`` to the end. The API documents "iterate until an
  empty page"; a page shorter than ``per_page`` proves the end just as well (the server would
  otherwise have filled it), so the loop stops there and saves one request per listing. That relies
  on the server honouring ``per_page`` up to the documented maximum of 1000, so `per_page` is
  clamped to 1000; pass ``short_page_ends=False`` to insist on the empty page. When pages read
  together (``pages_hint``) show a short page followed by a non-empty one, the server pages with
  less than it was asked, and that listing is read to its empty page. A server that
  ignores paging -- a page longer than ``per_page``, a page repeating the previous one, more than
  `MAX_PAGES` pages -- is an ApiError, not an endless or wrong read.
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
- Rate limit: a thread-safe fixed-spacing limiter (default 15 requests/s, Clarifai's documented
  per-user limit; 0 = off) spaces every attempt, retries included, so a big apply is not
  throttled in the first place. Spacing rather than a bursty token bucket keeps every one-second
  window within the limit.
- The PAT is never shown: not in `repr`, not in exceptions, not in the ``--debug`` trace (which
  prints ``Authorization: Key ***``); any text echoed from a response is scrubbed of it too.
- `Client.map(fn, items)` runs calls on a thread pool (httpx.Client is thread-safe and the limiter
  holds across threads). With the embedded sandbox, httpx's WSGITransport runs the app in the
  calling thread, so the pool is also where its concurrency comes from.
- Paths: every id that goes into a URL goes through `path_segment` (`api_path`, `app_path` build
  paths from segments), so an id can never leave its segment: '/', '?', '#', '%', spaces and any
  non-ASCII are percent-encoded, and the dot segments '.' and '..' are sent as %2E / %2E%2E, which
  no client or server removes as RFC 3986 dot segments would be.
- `connect(...)` resolves credentials and endpoint from flags and environment, falling back to the
  embedded in-process sandbox (see its docstring).
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from reconciler.errors import ApiError, ReconcilerError
from reconciler.fileio import read_regular_text
from reconciler.status_codes import BY_NAME, NAME_OF

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_API_BASE = "https://api.clarifai.com"
SUCCESS = BY_NAME["SUCCESS"]
MAX_PER_PAGE = 1000
#: Paging stops with an error past this many pages (10 million items at 1000 a page).
MAX_PAGES = 10_000

#: Every status code by name (clarifai-grpc's StatusCode enum, kept in `reconciler.status_codes`):
#: a server may send `code` as a name ("CONN_THROTTLED") -- one docs example does, and protobuf's
#: JSON mapping allows enum names -- in the top-level status and in any nested one (a model
#: version's "MODEL_TRAINED"). `_interpret` turns every one into its number once, so nothing
#: downstream ever sees a name. Unknown names read as code 0 and keep their name in messages.
STATUS_CODES: dict[str, int] = BY_NAME
STATUS_NAMES: dict[int, str] = NAME_OF
CONN_EXCEED_HOURLY_LIMIT = BY_NAME["CONN_EXCEED_HOURLY_LIMIT"]

#: Statuses that mean "the same request may succeed later".
RETRY_CODES = frozenset(
    BY_NAME[name]
    for name in ("TRY_AGAIN", "CONN_THROTTLED", "RPC_REQUEST_QUEUE_FULL", "RPC_SERVER_UNAVAILABLE", "RPC_REQUEST_TIMEOUT")
)
#: Transport failures worth retrying (local protocol errors / bad URLs are bugs, not weather).
#: ConnectionError: a transport that runs the app in process (httpx's WSGITransport, used for the
#: embedded sandbox) lets the app's own "connection reset" through unwrapped.
_RETRY_EXC = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)
#: ... of which these mean the request never reached the server (safe to repeat any write).
_UNSENT_EXC = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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


def status_code_of(raw: Any) -> int:
    """A status code sent as 10000, "10000" or "SUCCESS" -> 10000; anything unknown -> 0."""
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        s = raw.strip()
        if s.isdigit():
            return int(s)
        return STATUS_CODES.get(s.upper(), 0)
    return 0


def normalise_status_codes(obj: Any) -> None:
    """Turn every ``status.code`` in a response body that is a name or a numeric string into its
    number, in place, at any depth (the response's own status, a model version's, an input's...).
    Unknown names become 0, which matches no code the tool acts on."""
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            st = cur.get("status")
            if isinstance(st, dict) and isinstance(st.get("code"), str):
                st["code"] = status_code_of(st["code"])
            stack.extend(v for v in cur.values() if isinstance(v, (dict, list)))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))


def _hourly_limit_hint(resp: httpx.Response | None) -> str:
    """CONN_EXCEED_HOURLY_LIMIT (11003): the account's hourly quota is spent, so retrying within
    seconds (as for CONN_THROTTLED) only burns more of it. Say when to come back: the server's
    Retry-After if it sends one, else an hour from now (the limit is per hour)."""
    wait = _retry_after(resp)
    seconds = wait if wait is not None and wait > 0 else 3600.0
    when = time.strftime("%H:%M UTC", time.gmtime(time.time() + seconds))
    return (
        f"the hourly request limit of this Clarifai account is used up; not retried: run again "
        f"after {when} (in about {max(1, round(seconds / 60))} minutes)"
    )


#: The PATs `connect` resolved in this process: `mask_secrets` masks them in anything the CLI
#: prints or writes (values the API returns are shown as they are, except for a PAT in them).
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()


def mask_secrets(text: str) -> str:
    """`text` with every PAT in use replaced by ***."""
    with _IN_USE_LOCK:
        secrets = sorted(_IN_USE, key=len, reverse=True)
    for s in secrets:
        text = text.replace(s, "***")
    return text


def _remember_secret(pat: str) -> None:
    with _IN_USE_LOCK:
        _IN_USE.add(pat)


class _Secret:
    """Holds the PAT; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


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


def _retry_after(resp: httpx.Response | None) -> float | None:
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
        self._pat = _Secret(pat)
        self.user_id = user_id
        self.max_retries = max(0, int(max_retries))
        self.max_retry_seconds = max_retry_seconds
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_workers = max(1, int(max_workers))
        self.debug: TextIO | None = sys.stderr if debug is True else (debug or None)
        self.label = label or self.base_url  # what messages call this endpoint
        #: told one line before each retry's wait ("... retrying (n/5) in Xs"): the CLI prints it
        self.on_retry = on_retry
        self.stats = Stats()
        self._sleep, self._clock = sleep, clock
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

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, user_id={self.user_id!r}, pat='***')"

    def redact(self, text: str) -> str:
        """`text` with the PAT replaced by ***: for anything echoed from a server or an exception."""
        pat = self._pat.reveal()
        return text.replace(pat, "***") if pat else text

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
        """Every item of a paged listing, in server order: pages 1, 2, ... until an empty page (or
        a short one, see the module docstring). ``pages_hint`` pages are asked for at once (the
        caller's guess of the listing's length, e.g. from the manifest): a right guess costs one
        round trip instead of one per page, a wrong one only the extra (empty) pages, and past the
        guess the pages are read one after another as usual."""
        per_page = max(1, min(int(per_page), MAX_PER_PAGE))
        items: list[dict[str, Any]] = []
        page = 1
        previous: list[dict[str, Any]] | None = None

        def fetch(n: int) -> dict[str, Any]:
            return self.get(path, {**(params or {}), "page": n, "per_page": per_page})

        while True:
            first = max(1, min(int(pages_hint), MAX_PAGES)) if page == 1 else 1
            bodies = self.map(fetch, range(page, page + first)) if first > 1 else [fetch(page)]
            chunks = [self._page_items(body, key, path) for body in bodies]
            for at, chunk in enumerate(chunks):
                # A server that ignores paging would otherwise be read forever (or misread): refuse.
                if len(chunk) > per_page:
                    raise self._error(
                        f"unexpected response: page {page} has {len(chunk)} {key}, more than the "
                        f"per_page={per_page} asked for (the server ignores paging)",
                        "GET",
                        path,
                        http_status=200,
                    )
                if chunk and chunk == previous:
                    raise self._error(
                        f"unexpected response: page {page} repeats page {page - 1} (the server ignores the page parameter)",
                        "GET",
                        path,
                        http_status=200,
                    )
                if page >= MAX_PAGES and chunk:
                    raise self._error(f"more than {MAX_PAGES} pages of {key}; giving up", "GET", path, http_status=200)
                items.extend(chunk)
                if not chunk:
                    return items
                if short_page_ends and len(chunk) < per_page:
                    if not any(chunks[at + 1 :]):
                        return items
                    # a later page, already read, is not empty: this server's pages are shorter than
                    # the per_page asked for, so a short page proves nothing here; read to the empty one
                    short_page_ends = False
                previous = chunk
                page += 1

    def _page_items(self, body: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        """The items of one listing page (a missing or null list is empty); any other shape is an error."""
        chunk = body.get(key, [])
        if chunk is None:
            return []
        if not isinstance(chunk, list) or not all(isinstance(i, dict) for i in chunk):
            what = f"unexpected response shape: '{key}' is not a list of objects"
            raise self._error(what, "GET", path, http_status=200, body=body)
        return chunk

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
                raise self._error(
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
            except _RETRY_EXC as exc:
                failure: ApiError = self._error(f"cannot reach {self.label}: {type(exc).__name__}: {exc}", method, path)
                unsent = isinstance(exc, _UNSENT_EXC)
            except httpx.LocalProtocolError as exc:  # its text can quote our headers: not shown
                raise self._error(
                    f"cannot send the request to {self.label}: {type(exc).__name__} (a header value HTTP cannot carry)",
                    method,
                    path,
                ) from None
            except httpx.HTTPError as exc:  # unsupported protocol, proxy errors
                raise self._error(f"cannot reach {self.label}: {type(exc).__name__}: {exc}", method, path) from None
            else:
                result = self._interpret(method, path, resp)
                if isinstance(result, dict):
                    self._trace(method, path, params, resp, t0, SUCCESS, result)
                    return result
                failure = result
                unsent = False
            self._trace(method, path, params, resp, t0, failure.code, None, failure)
            safe = retry or unsent or failure.http_status == 429 or failure.code == BY_NAME["CONN_THROTTLED"]
            if not safe or not self._retryable(failure) or attempt >= self.max_retries:
                raise self._final(failure, attempt)
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))
            hint = _retry_after(resp)
            if hint is not None:
                delay = max(delay, min(hint, self.backoff_cap * 3))
            if self._clock() - started + delay > self.max_retry_seconds:
                raise self._final(failure, attempt)
            attempt += 1
            if self.on_retry is not None:
                why = (
                    "throttled"
                    if failure.http_status == 429 or failure.code == 11005
                    else ("unreachable" if not failure.http_status else f"HTTP {failure.http_status}")
                )
                self.on_retry(f"  {method} {path}: {why}; retrying ({attempt}/{self.max_retries}) in {delay:.1f}s")
            with self.stats._lock:
                self.stats.slept_s += delay
            self._sleep(delay)

    def _retryable(self, err: ApiError) -> bool:
        if err.http_status == 0:  # transport failure
            return True
        if err.code == CONN_EXCEED_HOURLY_LIMIT:  # an hour away, whatever the HTTP code (429 too)
            return False
        if err.http_status == 429 or err.code in RETRY_CODES:
            return True
        return err.http_status >= 500 and err.http_status != 501

    def _final(self, err: ApiError, attempt: int) -> ApiError:
        if attempt:
            err.message = f"{err.message} (gave up after {attempt + 1} attempts)"
            err.args = (err.message,)
        return err

    def _interpret(self, method: str, path: str, resp: httpx.Response) -> dict[str, Any] | ApiError:
        """The success body, or the ApiError this response means (to raise or to retry)."""
        http_status = resp.status_code
        try:
            data = json.loads(resp.content)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            ctype = resp.headers.get("content-type", "no content type").split(";")[0]
            kind = (
                "an empty"
                if not resp.content
                else ("a truncated or invalid JSON" if "json" in ctype else f"a non-JSON ({ctype})")
            )
            return self._error(f"{kind} response (HTTP {http_status}) from {self.label}", method, path, http_status=http_status)
        if not isinstance(data, dict):
            return self._error(
                f"unexpected response shape (HTTP {http_status}): a JSON {type(data).__name__}, not an object",
                method,
                path,
                http_status=http_status,
            )
        status = data.get("status")
        if not isinstance(status, dict) or "code" not in status:
            return self._error(
                f"unexpected response shape (HTTP {http_status}): no status.code",
                method,
                path,
                http_status=http_status,
                body=data,
            )
        raw = status.get("code")
        code = status_code_of(raw)
        normalise_status_codes(data)
        if code == SUCCESS and http_status < 400:
            return data
        name = STATUS_NAMES.get(code) or (raw if isinstance(raw, str) and raw else "")
        desc = str(status.get("description") or "")
        details = str(status.get("details") or "")
        if code == SUCCESS:  # success body on an HTTP error: believe neither, report the HTTP side
            name, desc = "HTTP error", desc or resp.reason_phrase
        what = f"{name} ({code})" if name and code else (name or f"status {code}")
        text = f"{what}, HTTP {http_status}"
        if desc:
            text += f": {desc}"
        if details and details != desc:
            text += f" ({details[:200]})"
        if code == CONN_EXCEED_HOURLY_LIMIT:
            text += "; " + _hourly_limit_hint(resp)
        return self._error(
            text,
            method,
            path,
            code=code,
            http_status=http_status,
            description=desc,
            req_id=str(status.get("req_id") or ""),
            body=data,
        )

    def _error(
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


# --- connect: flags + environment -> Client ------------------------------------------------------


def _is_loopback(base: str) -> bool:
    host = urlsplit(base).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _read_pat_file(pat_file: str) -> str:
    try:
        text = read_regular_text(pat_file, 64 * 1024)  # a FIFO or device is refused, not waited on
    except OSError as exc:
        raise ReconcilerError(f"cannot read PAT file {pat_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReconcilerError(f"cannot read PAT file {pat_file}: not UTF-8 text") from None
    pat = text.strip()
    if pat and _pat_flaw(pat) not in (None, "a space"):  # NUL, line break, ...: say which
        check_pat(pat, f"the PAT in {pat_file}")
    if not pat or len(pat.split()) != 1:
        raise ReconcilerError(f"PAT file {pat_file} must contain exactly one token")
    return pat


def _pat_flaw(pat: str) -> str | None:
    """What makes `pat` unsendable as ``Authorization: Key <pat>``, or None. HTTP header values
    are visible ASCII (RFC 9110 section 5.5 allows obs-text and spaces too, but httpx and most
    servers refuse them, and a Clarifai PAT is 32 hex digits); a NUL or line break could also
    split the header. Named by kind, never by value."""
    for ch in pat:
        if ch == "\0":
            return "a NUL byte"
        if ch in "\r\n":
            return "a line break"
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "a control character"
        if ord(ch) > 0x7F:
            return "a non-ASCII character"
        if ch == " ":
            return "a space"
    return None


def check_pat(pat: str, source: str) -> None:
    """Refuse, before any request, a PAT that an HTTP header cannot carry: otherwise the HTTP
    library's own error (which quotes the header, PAT included) would be what the user sees."""
    flaw = _pat_flaw(pat)
    if flaw:
        raise ReconcilerError(
            f"{source} contains {flaw}: a PAT is one token of visible ASCII, the "
            "only kind an HTTP header carries safely; check the value (not shown here)"
        )


#: Where the embedded sandbox keeps its data inside a `.reconciler/` directory.
SANDBOX_DIR, SANDBOX_FILE = ".reconciler", "sandbox.sqlite"


def find_sandbox(start: Path | None = None) -> tuple[Path, str]:
    """Where the embedded sandbox keeps its data, and how it was found (for the note).

    ``$RECONCILER_SANDBOX_DB`` if set; else the nearest ``.reconciler/`` directory in `start` or
    one of its parents -- the way git finds ``.git`` -- so a plan run from a subfolder (or on a
    manifest kept in one) sees the same sandbox as one run at the top; else a new ``.reconciler/``
    in `start` itself. `start` is the manifest's folder; None means the current directory.
    """
    env = os.environ.get("RECONCILER_SANDBOX_DB")
    if env:
        return Path(env).absolute(), "set by RECONCILER_SANDBOX_DB"
    where = "the manifest" if start is not None else "the current directory"
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / SANDBOX_DIR).is_dir():
            how = f"the {SANDBOX_DIR}/ next to {where}" if folder == here else f"the nearest {SANDBOX_DIR}/ above {where}"
            return folder / SANDBOX_DIR / SANDBOX_FILE, how
    return (here / SANDBOX_DIR / SANDBOX_FILE, f"a new {SANDBOX_DIR}/ next to {where}: none was found there or above it")


def sandbox_db_path(start: Path | None = None) -> Path:
    """`find_sandbox`'s path alone."""
    return find_sandbox(start)[0]


#: How plans name the embedded sandbox as their endpoint: this, then the sandbox file's path.
SANDBOX_ENDPOINT_PREFIX = "local sandbox at "


def sandbox_endpoint(db: Path) -> str:
    """How plans name the embedded sandbox as their endpoint."""
    return f"{SANDBOX_ENDPOINT_PREFIX}{db}"


def sandbox_of_endpoint(endpoint: str) -> str | None:
    """The embedded sandbox file an endpoint names (`sandbox_endpoint`'s inverse), or None when it
    names an API base."""
    return endpoint[len(SANDBOX_ENDPOINT_PREFIX) :] if endpoint.startswith(SANDBOX_ENDPOINT_PREFIX) else None


def credentials_required(flag: bool = False) -> str | None:
    """Why a missing PAT is an error rather than a reason to use the embedded sandbox, or None.

    Fail closed where a silent local sandbox could hurt: in CI (``CI`` set and non-empty, as GitHub
    Actions, GitLab CI and most others set it) a job whose PAT secret is empty (a fork, a typo)
    must fail, not plan and "apply" against a throwaway local file and exit 0.
    """
    if flag:
        return "--require-credentials is given"
    if os.environ.get("RECONCILER_REQUIRE_CREDENTIALS", "").strip() not in ("", "0"):
        return "RECONCILER_REQUIRE_CREDENTIALS is set"
    if os.environ.get("CI", "").strip():
        return "CI is set"
    return None


def connect(
    *,
    api_base: str | None = None,
    pat_file: str | None = None,
    user_id: str | None = None,
    manifest_user_id: str | None = None,
    rate_limit: float | None = None,
    debug: bool = False,
    stderr: TextIO | None = None,
    max_retries: int = 5,
    timeout: float = 30.0,
    require_credentials: bool = False,
    sandbox_from: Path | None = None,
    sandbox_db: Path | None = None,
) -> Client:
    """A Client for the CLI.

    - PAT: `pat_file` (``--pat-file``) if given, else ``CLARIFAI_PAT``.
    - Base URL: `api_base` (``--api-base``), else ``CLARIFAI_API_BASE``, else api.clarifai.com when
      a PAT is set. No PAT and no base URL: the embedded sandbox, in process, with its data in
      `sandbox_db` if given (a saved plan's own sandbox), else `find_sandbox(sandbox_from)`
      (`sandbox_from`: the manifest's folder); one line on stderr says so, names the file and
      says how it was found. Refused (one line) when `credentials_required(require_credentials)`.
    - The Client's `endpoint` names where it writes: the API base, or "local sandbox at PATH".
    - A base URL on loopback with no PAT (``reconciler sandbox serve``) uses the sandbox's default key.
    - User: `user_id` (a flag), else the manifest's ``app.user_id``, else ``CLARIFAI_USER_ID``; the
      manifest wins over the environment because it names the owner of this particular app, the
      environment only a default. Unknown: "me" in paths, which Clarifai resolves to the PAT's
      owner -- but some calls with a PAT want an explicit user id, so set one for real use.
    - Rate limit: `rate_limit` requests/s; None means 15 (Clarifai's default per-user limit). The
      embedded sandbox does not throttle (and runs in process), so it never gets a limit.
    """
    err = stderr if stderr is not None else sys.stderr
    pat = _read_pat_file(pat_file) if pat_file else (os.environ.get("CLARIFAI_PAT") or "").strip()
    if pat and not pat_file:
        check_pat(pat, "the CLARIFAI_PAT environment variable")
    base = (api_base or os.environ.get("CLARIFAI_API_BASE") or "").strip()
    user = user_id or manifest_user_id or os.environ.get("CLARIFAI_USER_ID") or None
    trace: TextIO | None = err if debug else None

    def say(line: str) -> None:
        print(line, file=err, flush=True)

    if not pat and not base:
        from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER
        from reconciler.sandbox.opening import open_sandbox

        why = credentials_required(require_credentials)
        if why:
            raise ReconcilerError(
                f"no Clarifai credentials: CLARIFAI_PAT is empty and no --pat-file was "
                f"given, and {why}, so the embedded local sandbox is not used; set "
                "CLARIFAI_PAT (or --pat-file), or name a server with --api-base"
            )
        if sandbox_db is not None:
            db, how = sandbox_db.absolute(), "the saved plan's sandbox"
        else:
            db, how = find_sandbox(sandbox_from)
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot create {db.parent} for the embedded sandbox: {exc.strerror}") from None
        print(f"note: CLARIFAI_PAT and --api-base are not set: using the embedded local sandbox (data in {db}; {how})", file=err)
        transport = sandbox_transport(open_sandbox(str(db)))
        return Client(
            "http://sandbox.local",
            DEFAULT_KEY,
            user_id=user or DEFAULT_USER,
            transport=transport,
            rate_limit=0,
            max_retries=max_retries,
            timeout=timeout,
            debug=trace,
            label=f"the embedded sandbox ({db})",
            endpoint=sandbox_endpoint(db),
            on_retry=say,
        )
    base = base or DEFAULT_API_BASE
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise ReconcilerError(f"API base {base!r} must be an http:// or https:// URL")
    base = base.rstrip("/").removesuffix("/v2")
    if not pat:
        if not _is_loopback(base):
            raise ReconcilerError(f"no PAT for {base}: set CLARIFAI_PAT or pass --pat-file")
        from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

        pat, user = DEFAULT_KEY, user or DEFAULT_USER
    else:
        _remember_secret(pat)
    return Client(
        base,
        pat,
        user_id=user,
        rate_limit=15.0 if rate_limit is None else rate_limit,
        max_retries=max_retries,
        timeout=timeout,
        debug=trace,
        on_retry=say,
    )
