"""Shared fixtures.

- `sandbox`: a fresh `Sandbox` on a temporary SQLite file (training delay 0).
- `sandbox_app`: that sandbox wrapped in `ResponseChecker`, a WSGI middleware that parses every
  response body into the RPC's declared response message (protobuf json_format, unknown fields
  refused) and fails the test at teardown if any did not parse.
- `sandbox_client`: an httpx client on `sandbox_app` (in process), with the default key.
- `served_sandbox`: `sandbox_app` served over loopback HTTP; the base URL.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import httpx
import pytest

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
