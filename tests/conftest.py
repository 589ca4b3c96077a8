"""Shared fixtures.

- `sandbox`: a fresh `Sandbox` on a temporary SQLite file (training delay 0).
- `sandbox_app`: that sandbox wrapped in `ResponseChecker`, a WSGI middleware that parses every
  response body into the RPC's declared response message (protobuf json_format, unknown fields
  refused) and fails the test at teardown if any did not parse.
- `sandbox_client`: an httpx client on `sandbox_app` (in process), with the default key.
- `served_sandbox`: `sandbox_app` served over loopback HTTP; the base URL.

Every request the tool sends through `reconciler.api.client.Client` -- to an in-process sandbox (the
Harness, the embedded one), a served one over loopback, or a fake transport -- is checked against
clarifai-grpc's own V2 REST bindings (tests/requestcheck.py; not the sandbox's route table): a
session-wide wrapper around `Client.request` (the one method every request goes through) rebuilds
the wire URL as the client's httpx client does, finds the RPC from the `google.api.http` options
and parses path variables, query parameters and JSON body into its request message, unknown fields
refused. A test that sent an invalid request fails at teardown, naming each request and problem.
Opting out is per test: `@pytest.mark.raw_requests` for tests whose point is traffic that is no V2
request (tests/test_client.py's client mechanics on made-up paths, three status-name tests in
test_sandbox_quirks.py). A marker was chosen over "check only what reaches a sandbox" because it
keeps the check on fake-transport tests that send the tool's real requests (tests/test_live.py,
hostile servers) and opts out only what says so. `REQUESTS.record` holds what was checked
(tests/test_request_parity.py asserts on it); the terminal summary prints the session's counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from requestcheck import Checked, RequestChecker, describe

from reconciler.api.client import Client
from reconciler.sandbox.app import DEFAULT_KEY, Sandbox
from reconciler.sandbox.routes import match
from reconciler.sandbox.server import running_server


class ResponseChecker:
    """WSGI middleware: checks each sandbox response against clarifai-grpc's response message."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.checked = 0
        self.problems: list[str] = []

    def __getattr__(self, name: str) -> Any:  # faults, request_log, ... of the wrapped sandbox
        return getattr(self.app, name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = b"".join(self.app(environ, start_response))
        self.check(str(environ.get("REQUEST_METHOD")), str(environ.get("PATH_INFO")), body)
        return [body]

    def check(self, method: str, path: str, body: bytes) -> None:
        from clarifai_grpc.grpc.api import service_pb2
        from clarifai_grpc.grpc.api.status import status_pb2
        from google.protobuf import json_format

        if path.startswith("/_sandbox/"):
            return
        route, _, _ = match(method, path)
        if route is not None:
            rpc = service_pb2.DESCRIPTOR.services_by_name["V2"].methods_by_name[route.rpc]
            assert rpc.output_type.name == route.response, f"{route.rpc}: table says {route.response}"
            cls = getattr(service_pb2, route.response, None) or getattr(status_pb2, route.response)
        else:
            cls = status_pb2.BaseResponse
        try:
            msg = json_format.Parse(body.decode(), cls(), ignore_unknown_fields=False)
        except (json_format.ParseError, UnicodeDecodeError) as err:
            self.problems.append(f"{method} {path}: {str(err)[:300]}")
            return
        if not msg.status.req_id:
            self.problems.append(f"{method} {path}: no status.req_id")
        self.checked += 1


@pytest.fixture(autouse=True, scope="session")
def _seed_labels_before_training() -> Iterator[None]:
    """Every sandbox in the test session (in process: embedded, served, Harness; also those of
    module-scoped fixtures) gets a user who labelled inputs before training (tests/e2e.py
    `seed_training_labels`), unless the running test is marked `unlabelled`."""
    import e2e

    original = Sandbox.__call__

    def call(self: Sandbox, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if e2e.SEED_LABELS:
            e2e.seed_training_labels(self, environ)
        return original(self, environ, start_response)

    Sandbox.__call__ = call  # type: ignore[method-assign]
    yield
    Sandbox.__call__ = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def labelled_inputs(request: Any) -> Iterator[None]:
    """`@pytest.mark.unlabelled`: no seeding during this test (it sees the real training rule)."""
    import e2e

    if request.node.get_closest_marker("unlabelled") is None:
        yield
        return
    e2e.SEED_LABELS = False
    try:
        yield
    finally:
        e2e.SEED_LABELS = True


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "unlabelled: no labelled inputs are seeded before training "
                            "(the test sees the sandbox's real training rule)")
    config.addinivalue_line("markers", "raw_requests: the requests this test sends through `Client` are "
                            "deliberately not valid V2 requests; they are not checked against clarifai-grpc")


# --- requests: every request the tool's Client sends is a valid clarifai-grpc request -------------

#: The session's request checker (tests/requestcheck.py); tests may read `REQUESTS.record`.
REQUESTS = RequestChecker()
_CHECKING = {"on": True}
_REPORTED: set[int] = set()


#: Requests already judged, by what the client was given: many tests repeat the same reads and
#: writes, and the verdict depends on nothing else (cleared when large).
_VERDICTS: dict[tuple[str, str, str, str, str], tuple[str, str, tuple[str, ...]]] = {}


def _check_request(client: Client, method: str, path: str, params: dict[str, Any] | None, body: Any) -> None:
    """Check one request as `Client.request` is about to send it: the URL exactly as its httpx
    client builds it (path encoding, query encoding of booleans and lists), the body as the JSON it
    sends. A body JSON cannot carry is refused by the client before sending: nothing to check."""
    if not _CHECKING["on"]:
        return
    try:
        text = json.dumps(body, allow_nan=False) if body is not None else ""
    except (TypeError, ValueError):
        return
    key = (client.base_url, method, path, repr(params), text)
    known = _VERDICTS.get(key)
    if known is not None:
        REQUESTS.add(Checked(method.upper(), known[0], known[1], known[2], REQUESTS.current_test))
        return
    url = client._http.build_request(method, path, params=params).url
    raw_path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    seen = REQUESTS.check_url(method, raw_path, urlsplit(client.base_url).path, url.query.decode("ascii"),
                              json.loads(text) if text else None)
    if len(_VERDICTS) > 100_000:
        _VERDICTS.clear()
    _VERDICTS[key] = (seen.path, seen.rpc, seen.problems)


@pytest.fixture(autouse=True, scope="session")
def _check_client_requests() -> Iterator[None]:
    """Wrap `Client.request`, the one method every request of the tool goes through, with
    `_check_request`, for the whole session (module- and session-scoped fixtures included)."""
    original = Client.request

    def request(self: Client, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, retry: bool = True) -> dict[str, Any]:
        _check_request(self, method, path, params, body)
        return original(self, method, path, params=params, body=body, retry=retry)

    Client.request = request  # type: ignore[method-assign]
    yield
    Client.request = original  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Iterator[None]:
    """Requests are attributed to the running test (its setup, call and teardown), and not checked
    for tests marked `raw_requests`."""
    REQUESTS.current_test = item.nodeid
    _CHECKING["on"] = item.get_closest_marker("raw_requests") is None
    yield
    _CHECKING["on"] = True
    REQUESTS.current_test = ""


@pytest.fixture(autouse=True)
def _requests_are_valid(request: Any) -> Iterator[None]:
    """Fail the test (at teardown) that sent a request clarifai-grpc's V2 bindings do not accept."""
    yield
    bad = REQUESTS.problems_of(request.node.nodeid)
    _REPORTED.update(id(c) for c in bad)
    if bad:
        pytest.fail(f"{len(bad)} request(s) sent through Client are not valid V2 requests "
                    f"(clarifai-grpc's google.api.http bindings; mark the test raw_requests if that is "
                    f"its point):\n{describe(bad[:20])}", pytrace=False)


@pytest.fixture
def sandbox(tmp_path: Any) -> Iterator[Sandbox]:
    sb = Sandbox(str(tmp_path / "sandbox.sqlite"), training_delay_s=0)
    yield sb
    sb.close()


@pytest.fixture
def sandbox_app(sandbox: Sandbox) -> Iterator[ResponseChecker]:
    checker = ResponseChecker(sandbox)
    yield checker
    assert not checker.problems, "responses that do not parse into their proto:\n" + "\n".join(checker.problems)
    assert not sandbox.internal_errors, sandbox.internal_errors


@pytest.fixture
def sandbox_client(sandbox_app: ResponseChecker) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox_app), base_url="http://sandbox.local",
                      headers={"Authorization": f"Key {DEFAULT_KEY}"}) as client:
        yield client


@pytest.fixture
def served_sandbox(sandbox_app: ResponseChecker) -> Iterator[str]:
    with running_server(sandbox_app) as url:  # type: ignore[arg-type]
        yield url


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """One line: how many requests were checked, of how many RPCs; and any problem no test
    reported (sent outside a test's own teardown check, e.g. by a module fixture's teardown)."""
    checked = [c for c in REQUESTS.record if c.rpc or c.problems]
    if not checked:
        return
    rpcs = REQUESTS.by_rpc()
    terminalreporter.write_line(f"request check: {len(checked)} requests sent through Client checked against "
                                f"clarifai-grpc's V2 bindings, {len(rpcs)} RPCs: "
                                + ", ".join(f"{r} {n}" for r, n in sorted(rpcs.items())))
    stray = [c for c in REQUESTS.record if c.problems and id(c) not in _REPORTED]
    if stray:
        terminalreporter.write_line("request check: invalid requests no test reported:\n" + describe(stray[:20]), red=True)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if any(c.problems and id(c) not in _REPORTED for c in REQUESTS.record) and exitstatus == 0:
        session.exitstatus = 1


# --- credentials: tests run the embedded sandbox unless they say otherwise -------------------------

@pytest.fixture(autouse=True)
def _no_ci_credential_requirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI systems set CI=true, which (like RECONCILER_REQUIRE_CREDENTIALS) makes a missing PAT an
    error instead of the embedded sandbox. Most tests use that sandbox on purpose, so both are
    cleared for every test (and the subprocesses it starts, which inherit os.environ); the tests of
    the fail-closed rule set them explicitly (tests/test_client_connect.py, test_saved_plans.py)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("RECONCILER_REQUIRE_CREDENTIALS", raising=False)


@pytest.fixture(autouse=True)
def _embedded_sandbox_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The embedded sandbox lives next to the manifest (or in the nearest .reconciler/ above it);
    many tests plan the repository's own examples/, which must not collect sandboxes. Every test
    gets its own, in its tmp_path, unless it sets RECONCILER_SANDBOX_DB itself or clears it to test
    the search (tests/test_client_connect.py)."""
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / ".reconciler" / "sandbox.sqlite"))


# --- secrets: no test may show the recognisable PAT (tests/e2e.py's SECRET_PAT) ---------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Fail a test whose captured stdout / stderr / log records or failure text contain the
    recognisable PAT the Harness and the secrets tests authenticate with."""
    from e2e import SECRET_PAT

    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    texts = [content for _name, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    if any(SECRET_PAT in t for t in texts):
        report.outcome = "failed"
        report.longrepr = f"the recognisable PAT appeared in this test's output or failure text ({report.when})"
