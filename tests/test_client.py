"""The API client against httpx.MockTransport: success/error mapping, paging, retries, rate limit,
redaction, malformed bodies, concurrency, counters."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client
from reconciler.api.status import status_code_of
from reconciler.api.transport import RateLimiter
from reconciler.core.errors import ApiError

#: The client's mechanics are tested on made-up paths ("/v2/a"), which are no V2 requests: this
#: file opts out of conftest's request check (tests/requestcheck.py).
pytestmark = pytest.mark.raw_requests

PAT = "PAT-SECRET-xyz123"
OK = {"status": {"code": 10000, "description": "Ok", "req_id": "r-ok"}}


class FakeTime:
    """A clock that only moves when someone sleeps: retries and spacing are checked exactly."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        with self.lock:
            self.sleeps.append(s)
            self.now += s


def make(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Client:
    kw.setdefault("rate_limit", 0)
    return Client("http://api.test", PAT, transport=httpx.MockTransport(handler), **kw)


def ok(**payload: Any) -> httpx.Response:
    return httpx.Response(200, json={**OK, **payload})


def fail(http: int, code: Any, desc: str = "", **kw: Any) -> httpx.Response:
    return httpx.Response(http, json={"status": {"code": code, "description": desc, "req_id": "r-1"}}, **kw)


# --- request basics ----------------------------------------------------------------------------

def test_sends_key_auth_and_json_and_returns_body() -> None:
    seen: list[httpx.Request] = []

    def h(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return ok(concepts=[{"id": "a"}])

    c = make(h, user_id="alice")
    assert c.post(c.app_path("my-app") + "/concepts", {"concepts": [{"id": "a"}]})["concepts"] == [{"id": "a"}]
    r = seen[0]
    assert r.headers["authorization"] == f"Key {PAT}"
    assert r.headers["content-type"] == "application/json"
    assert r.url.path == "/v2/users/alice/apps/my-app/concepts"
    assert json.loads(r.content) == {"concepts": [{"id": "a"}]}
    c.delete("/v2/x", {"ids": ["1"]})
    assert seen[1].method == "DELETE" and json.loads(seen[1].content) == {"ids": ["1"]}


def test_app_path_defaults_to_me_and_quotes() -> None:
    c = make(lambda r: ok())
    assert c.app_path("app") == "/v2/users/me/apps/app"
    assert c.app_path("a b", user_id="u/x") == "/v2/users/u%2Fx/apps/a%20b"


@pytest.mark.parametrize("code", [10000, "10000", "SUCCESS"])
def test_success_code_as_int_or_name(code: Any) -> None:
    c = make(lambda r: httpx.Response(200, json={"status": {"code": code}, "app": {"id": "x"}}))
    assert c.get("/v2/a")["app"] == {"id": "x"}


def test_status_code_parsing() -> None:
    assert status_code_of("CONN_THROTTLED") == 11005
    assert status_code_of("conn_does_not_exist") == 11101
    assert status_code_of("NOPE") == 0 and status_code_of(None) == 0 and status_code_of(True) == 0


def test_error_status_raises_api_error_with_fields() -> None:
    c = make(lambda r: fail(404, 21200, "Model does not exist"), user_id="u")
    with pytest.raises(ApiError) as ei:
        c.get("/v2/users/u/apps/a/models/m")
    e = ei.value
    assert (e.code, e.http_status, e.description, e.req_id, e.method, e.path) == (
        21200, 404, "Model does not exist", "r-1", "GET", "/v2/users/u/apps/a/models/m")
    assert "MODEL_DOES_NOT_EXIST (21200)" in str(e) and "\n" not in str(e)
    assert e.details["response"]["status"]["code"] == 21200


def test_error_code_as_name_string() -> None:
    c = make(lambda r: fail(400, "CONN_DOES_NOT_EXIST", "Resource does not exist"))
    with pytest.raises(ApiError) as ei:
        c.get("/v2/a")
    assert ei.value.code == 11101


def test_http_200_with_error_status_is_an_error() -> None:
    c = make(lambda r: fail(200, 40010, "duplicate"))
    with pytest.raises(ApiError) as ei:
        c.post("/v2/a", {})
    assert ei.value.code == 40010 and ei.value.http_status == 200


@pytest.mark.parametrize("resp,needle", [
    (httpx.Response(200, text="<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}),
     "non-JSON (text/html)"),
    (httpx.Response(200, content=b'{"status": {"code": 10000}, "concepts": [{"id"',
                    headers={"content-type": "application/json"}), "truncated or invalid JSON"),
    (httpx.Response(200, content=b""), "empty response"),
    (httpx.Response(200, json=[1, 2]), "JSON list, not an object"),
    (httpx.Response(200, json={"concepts": []}), "no status.code"),
])
def test_malformed_bodies_are_one_line_api_errors(resp: httpx.Response, needle: str) -> None:
    c = make(lambda r: resp)
    with pytest.raises(ApiError) as ei:
        c.get("/v2/a")
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg and msg.startswith("GET /v2/a:")


def test_wrong_list_shape_is_an_api_error() -> None:
    c = make(lambda r: ok(concepts={"id": "a"}))
    with pytest.raises(ApiError, match="not a list of objects"):
        c.list_all("/v2/a/concepts", "concepts")


# --- paging -------------------------------------------------------------------------------------

def paged(total: int, calls: list[dict[str, str]], key: str = "concepts",
          cap: int | None = None) -> Callable[[httpx.Request], httpx.Response]:
    """A listing of `total` items; `cap`: the server's own page size limit, below what is asked."""
    items = [{"id": f"c{i}"} for i in range(total)]

    def h(req: httpx.Request) -> httpx.Response:
        q = dict(req.url.params)
        calls.append(q)
        page, per = int(q["page"]), min(int(q["per_page"]), cap or 10**9)
        return ok(**{key: items[(page - 1) * per: page * per]})
    return h


def test_a_short_page_followed_by_items_already_read_does_not_end_the_listing() -> None:
    """pages_hint pages are read at once; when a short one is followed by a non-empty one, the
    server pages with less than per_page, so the listing is read to its empty page instead."""
    calls: list[dict[str, str]] = []
    c = make(paged(10, calls, cap=4))
    got = c.list_all("/v2/a/concepts", "concepts", per_page=10, pages_hint=2)
    assert [i["id"] for i in got] == [f"c{i}" for i in range(10)]
    assert sorted(q["page"] for q in calls) == ["1", "2", "3", "4"]  # page 4 is the empty one
    # the same listing on an honest server: a short page with nothing after it still ends it
    calls.clear()
    assert len(make(paged(10, calls)).list_all("/v2/a/concepts", "concepts", per_page=8, pages_hint=3)) == 10
    assert sorted(q["page"] for q in calls) == ["1", "2", "3"]


def test_list_all_stops_on_short_page() -> None:
    calls: list[dict[str, str]] = []
    c = make(paged(25, calls))
    got = c.list_all("/v2/a/concepts", "concepts", per_page=10)
    assert [i["id"] for i in got] == [f"c{i}" for i in range(25)]
    assert [q["page"] for q in calls] == ["1", "2", "3"]  # page 3 is short: no 4th request


def test_list_all_exact_multiple_needs_the_empty_page() -> None:
    calls: list[dict[str, str]] = []
    c = make(paged(20, calls))
    assert len(c.list_all("/v2/a/concepts", "concepts", per_page=10)) == 20
    assert [q["page"] for q in calls] == ["1", "2", "3"]


def test_list_all_until_empty_when_short_pages_are_not_trusted() -> None:
    calls: list[dict[str, str]] = []
    c = make(paged(5, calls))
    assert len(c.list_all("/v2/a", "concepts", per_page=10, short_page_ends=False)) == 5
    assert [q["page"] for q in calls] == ["1", "2"]


def test_list_all_keeps_params_clamps_per_page_and_handles_missing_key() -> None:
    calls: list[dict[str, str]] = []

    def h(req: httpx.Request) -> httpx.Response:
        calls.append(dict(req.url.params))
        return ok()  # proto3 JSON omits an empty list
    c = make(h)
    assert c.list_all("/v2/a", "models", {"sort_ascending": "true"}, per_page=5000) == []
    assert calls == [{"sort_ascending": "true", "page": "1", "per_page": "1000"}]


# --- retries -------------------------------------------------------------------------------------

def scripted(*responses: Any) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def h(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        r = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(r, Exception):
            raise r
        return r
    return h, seen


def test_retries_429_honouring_retry_after() -> None:
    ft = FakeTime()
    h, seen = scripted(fail(429, 11005, "Making too many requests", headers={"Retry-After": "3"}), ok(x=1))
    c = make(h, sleep=ft.sleep, clock=ft.clock)
    assert c.get("/v2/a")["x"] == 1
    assert len(seen) == 2 and ft.sleeps and ft.sleeps[0] >= 3.0
    assert c.stats.requests == 2 and c.stats.retries == 1


def test_retries_throttle_status_even_on_http_200_and_5xx() -> None:
    ft = FakeTime()
    h, seen = scripted(fail(200, "CONN_THROTTLED"), fail(503, 90500), httpx.Response(502, text="<html>"), ok())
    c = make(h, sleep=ft.sleep, clock=ft.clock)
    c.post("/v2/a", {"concepts": []})
    assert len(seen) == 4 and all(r.method == "POST" for r in seen)
    # exponential, full jitter: each delay within [0, base * 2**attempt]
    assert all(0 <= s <= 0.5 * 2 ** i for i, s in enumerate(ft.sleeps))


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadError("reset"),
                                 httpx.RemoteProtocolError("closed"), httpx.ReadTimeout("slow")])
def test_retries_connection_errors(exc: Exception) -> None:
    ft = FakeTime()
    h, seen = scripted(exc, ok(y=2))
    c = make(h, sleep=ft.sleep, clock=ft.clock)
    assert c.get("/v2/a")["y"] == 2 and len(seen) == 2


def test_retries_are_bounded() -> None:
    ft = FakeTime()
    h, seen = scripted(fail(500, 90500, "boom"))
    c = make(h, sleep=ft.sleep, clock=ft.clock, max_retries=3)
    with pytest.raises(ApiError) as ei:
        c.get("/v2/a")
    assert len(seen) == 4 and "gave up after 4 attempts" in str(ei.value)
    assert ei.value.http_status == 500


def test_retry_time_cap() -> None:
    ft = FakeTime()
    h, seen = scripted(fail(429, 11005, headers={"Retry-After": "50"}))
    c = make(h, sleep=ft.sleep, clock=ft.clock, max_retries=10, max_retry_seconds=120)
    with pytest.raises(ApiError):
        c.get("/v2/a")
    assert sum(ft.sleeps) <= 120 and len(seen) < 10


def test_no_retry_for_client_errors_or_when_disabled() -> None:
    h, seen = scripted(fail(400, 21202, "bad"))
    with pytest.raises(ApiError):
        make(h).get("/v2/a")
    assert len(seen) == 1
    h, seen = scripted(fail(503, 90500))
    with pytest.raises(ApiError) as ei:
        make(h, max_retries=0).get("/v2/a")
    assert len(seen) == 1 and "gave up" not in str(ei.value)


def test_connection_failure_reports_the_endpoint_not_the_pat() -> None:
    h, _ = scripted(httpx.ConnectError(f"refused while sending Key {PAT}"))
    with pytest.raises(ApiError) as ei:
        make(h, max_retries=0).get("/v2/a")
    assert ei.value.http_status == 0 and "cannot reach http://api.test" in str(ei.value)
    assert PAT not in str(ei.value) and PAT not in repr(ei.value)


# --- rate limit -----------------------------------------------------------------------------------

def test_rate_limiter_spaces_requests_exactly() -> None:
    ft = FakeTime()
    lim = RateLimiter(10, clock=ft.clock, sleep=ft.sleep)
    starts = []
    for _ in range(5):
        lim.acquire()
        starts.append(ft.now)
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps == [0.1] * 4


def test_rate_limiter_off() -> None:
    ft = FakeTime()
    lim = RateLimiter(0, clock=ft.clock, sleep=ft.sleep)
    for _ in range(100):
        lim.acquire()
    assert ft.sleeps == []


def test_rate_limit_holds_across_threads_real_clock() -> None:
    stamps: list[float] = []
    lock = threading.Lock()

    def h(req: httpx.Request) -> httpx.Response:
        with lock:
            stamps.append(time.monotonic())
        return ok()
    c = make(h, rate_limit=50)
    c.map(lambda i: c.get("/v2/a"), range(12), max_workers=6)
    stamps.sort()
    # 12 requests at 50/s need at least 11 gaps of 20 ms; allow scheduling slack, never faster.
    assert stamps[-1] - stamps[0] >= 11 * 0.02 * 0.9


# --- redaction ------------------------------------------------------------------------------------

def test_pat_never_in_repr_errors_or_debug_trace() -> None:
    buf = io.StringIO()
    ft = FakeTime()
    h, _ = scripted(fail(429, 11005, f"echo {PAT}"), fail(401, 11008, f"Invalid API key {PAT}"))
    c = make(h, debug=buf, sleep=ft.sleep, clock=ft.clock, max_retries=1)
    captured = [repr(c), str(c), repr(c._pat), str(c.__dict__)]
    with pytest.raises(ApiError) as ei:
        c.get("/v2/a", {"page": 1})
    e = ei.value
    captured += [str(e), repr(e), e.description, json.dumps(e.details.get("response", {})), buf.getvalue()]
    assert e.code == 11008
    for text in captured:
        assert PAT not in text
    trace = buf.getvalue().splitlines()
    assert len(trace) == 2
    assert "GET /v2/a?page=1 -> 429" in trace[0] and "Key ***" in trace[0]
    assert "-> 401 code=11008" in trace[1] and "req_id=r-1" in trace[1]


def test_debug_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    make(lambda r: ok()).get("/v2/a")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# --- concurrency and counters -----------------------------------------------------------------------

def test_map_keeps_order_and_overlaps() -> None:
    active, peak = [0], [0]
    lock = threading.Lock()

    def h(req: httpx.Request) -> httpx.Response:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return ok(n=int(req.url.params["n"]))
    c = make(h)
    assert c.map(lambda i: c.get("/v2/a", {"n": i})["n"], range(16), max_workers=8) == list(range(16))
    assert peak[0] > 1
    assert c.stats.requests == 16 and c.stats.by_method["GET"] == 16


def test_map_raises_first_error() -> None:
    def h(req: httpx.Request) -> httpx.Response:
        return fail(404, 21200, "nope") if req.url.params["n"] == "3" else ok()
    c = make(h)
    with pytest.raises(ApiError, match="21200"):
        c.map(lambda i: c.get("/v2/a", {"n": i}), range(8))


def test_stats_count_by_method_and_reset() -> None:
    c = make(lambda r: ok())
    c.get("/v2/a")
    c.post("/v2/a", {})
    c.patch("/v2/a", {})
    assert c.stats.requests == 3 and dict(c.stats.by_method) == {"GET": 1, "POST": 1, "PATCH": 1}
    c.stats.reset()
    assert c.stats.requests == 0 and not c.stats.by_method


def test_retry_false_repeats_only_what_never_ran() -> None:
    ft = FakeTime()
    # throttled and refused connections never ran: repeated even for a non-idempotent write
    h, seen = scripted(fail(429, 11005), httpx.ConnectError("refused"), ok(model={"id": "m"}))
    c = make(h, sleep=ft.sleep, clock=ft.clock)
    assert c.post("/v2/a/models/m/versions", {}, retry=False)["model"] == {"id": "m"}
    assert len(seen) == 3
    # a 5xx or a lost answer may have committed: not repeated
    for first in (fail(503, 90500), httpx.ReadError("reset"), httpx.RemoteProtocolError("closed")):
        h, seen = scripted(first, ok())
        with pytest.raises(ApiError):
            make(h, sleep=ft.sleep, clock=ft.clock).post("/v2/a/models/m/versions", {}, retry=False)
        assert len(seen) == 1


def test_each_retry_says_one_line_with_its_count_and_wait():
    """Long waits talk: every retry of a throttled or failing request is announced on its own
    line ("retrying (n/5) in Xs"); the request that finally succeeds says nothing more."""
    answers = iter([(429, {"status": {"code": 11005, "description": "throttled"}}),
                    (503, {"status": {"code": 21001, "description": "busy"}}),
                    (200, {"status": {"code": 10000}, "concepts": []})])

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = next(answers)
        return httpx.Response(status, json=body)

    lines: list[str] = []
    fake = FakeTime()
    c = make(handler, on_retry=lines.append, sleep=fake.sleep, clock=fake.clock)
    assert c.get("/v2/users/u/apps/a/concepts") == {"status": {"code": 10000}, "concepts": []}
    assert len(lines) == 2
    assert "throttled; retrying (1/5) in " in lines[0] and lines[0].endswith("s")
    assert "HTTP 503; retrying (2/5) in " in lines[1]
    waited = [float(x.rsplit(" in ", 1)[1].rstrip("s")) for x in lines]
    assert waited == pytest.approx(fake.sleeps, abs=0.06)
    assert all(PAT not in x for x in lines)


def test_connect_prints_retries_on_stderr(monkeypatch, tmp_path):
    from reconciler.commands.connect import connect

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sb.sqlite"))
    err = io.StringIO()
    client = connect(stderr=err)
    assert client.on_retry is not None
    client.on_retry("  GET /x: unreachable; retrying (1/5) in 0.4s")
    assert err.getvalue().splitlines()[-1] == "  GET /x: unreachable; retrying (1/5) in 0.4s"


def test_a_host_that_does_not_resolve_fails_at_once_without_retries() -> None:
    """A DNS failure is not weather: one request, no retry line, one clear error (issue 23)."""
    import socket

    import httpx

    from reconciler.api.client import Client
    from reconciler.core.errors import ApiError

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request) from exc

    retries: list[str] = []
    slept: list[float] = []
    c = Client("https://api.example.invalid", "k" * 32, transport=httpx.MockTransport(handler), rate_limit=0,
               on_retry=retries.append, sleep=slept.append)
    with pytest.raises(ApiError) as info:
        c.get("/v2/users/me/apps/a")
    assert c.stats.requests == 1 and not retries and not slept
    assert "'api.example.invalid' does not resolve (Name or service not known)" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_refused_connection_is_still_retried() -> None:
    import httpx

    from reconciler.api.client import Client
    from reconciler.core.errors import ApiError

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    retries: list[str] = []
    c = Client("http://127.0.0.1:9", "k" * 32, transport=httpx.MockTransport(handler), rate_limit=0, max_retries=2,
               on_retry=retries.append, sleep=lambda s: None)
    with pytest.raises(ApiError):
        c.get("/v2/users/me/apps/a")
    assert c.stats.requests == 3 and len(retries) == 2
