"""Issue 20, findings 9 and 16: stopping an apply. A failure elsewhere, or Ctrl-C, ends a training
wait at once (the wait is on an event, not a sleep) and is reported at once; a second Ctrl-C quits
and leaves no training lines printing behind it; "apply stopped at X" names an action that did not
finish. The sandbox trains for an hour here, so only a wait that stops can end these tests; what
they assert is how many training polls happened after the stop and what was printed, not times."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from e2e import Harness

from reconciler.apply.scheduler import apply_plan
from reconciler.core.errors import ApiError, ApplyError

MANIFEST = """version: 1
app: {id: stopper}
concepts:
  - id: walker
  - id: runner
concept_relations:
  - {subject: walker, predicate: synonym, object: runner}
models:
  - id: clf
    type: embedding-classifier
    concepts: [walker, runner]
    base_embed_model: {id: general-image-embedding, user_id: clarifai, app_id: main,
                       version: bb186755eda04f9cbb6fe32e816be104}
"""


class Watched:
    """The Harness client, watched: it counts training polls (GET .../versions/ID), signals the
    first one, and runs `on_write(method, path)` before each write."""

    def __init__(self, client: Any, on_write: Any = None) -> None:
        self._client = client
        self.on_write = on_write or (lambda _m, _p: None)
        self.polls: list[float] = []
        self.polling = threading.Event()
        self.stopped_at: float | None = None  # set by the test: polls after it are the wait not ending

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get":
            def get(path: str, *a: Any, **kw: Any) -> Any:
                if "/versions/" in path and not path.endswith("/output_info"):
                    self.polls.append(time.monotonic())
                    self.polling.set()
                return attr(path, *a, **kw)
            return get
        if name in ("post", "patch", "delete"):
            def write(path: str, *a: Any, **kw: Any) -> Any:
                self.on_write(name, path)
                return attr(path, *a, **kw)
            return write
        return attr

    def polls_after(self, t: float) -> int:
        return sum(1 for p in self.polls if p > t)


def ctrl_c() -> None:
    """What Ctrl-C does: SIGINT to the process, KeyboardInterrupt in the main thread (which wakes
    from the wait it is blocked in, as on a terminal)."""
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path, training_delay_s=3600)
    yield harness
    harness.sandbox.close()


def _plan(h: Harness):
    return h.plan(h.desired("m.yaml", MANIFEST))


def _apply(client: Watched, plan: Any, lines: list[str]) -> None:
    # a short timeout bounds the test if the wait does not stop (then it fails on the polls)
    apply_plan(client, plan, progress=lines.append, train_timeout_s=6, poll_s=0.05)  # type: ignore[arg-type]


def test_a_failure_elsewhere_ends_the_training_wait_at_once_and_is_what_is_reported(h):
    marks: dict[str, float] = {}

    def on_write(method: str, path: str) -> None:
        if path.endswith("/relations"):
            assert client.polling.wait(30), "the training wait never started"
            marks["failed"] = time.monotonic()
            raise ApiError("POST relations: 40003 Invalid request", code=40003, http_status=400,
                           description="Invalid request")

    client = Watched(h.client, on_write)
    plan = _plan(h)
    lines: list[str] = []
    with pytest.raises(ApplyError) as info:
        _apply(client, plan, lines)
    message = str(info.value)
    assert message.startswith("apply stopped at create concept_relation/walker synonym runner: POST relations"), message
    assert client.polls_after(marks["failed"]) <= 1, "the training wait went on polling after the failure"
    assert "create concept_relation/walker synonym runner" in info.value.not_done
    assert not any("not trained after" in line for line in lines + [message])


def test_ctrl_c_during_a_training_wait_ends_it_at_once_and_names_an_action_that_did_not_finish(h):
    client = Watched(h.client)
    marks: dict[str, float] = {}

    def interrupt_on_first_poll() -> None:
        assert client.polling.wait(30)
        marks["interrupted"] = time.monotonic()
        ctrl_c()

    threading.Thread(target=interrupt_on_first_poll, daemon=True).start()
    lines: list[str] = []
    with pytest.raises(ApplyError, match=r"\(interrupted\)") as info:
        _apply(client, _plan(h), lines)
    err = info.value
    assert client.polls_after(marks["interrupted"]) <= 1, "the training wait went on polling after Ctrl-C"
    named = str(err).removeprefix("apply stopped at ").split(" (interrupted)")[0]
    assert named == "new_version model/clf" or named == "create model/clf", str(err)
    assert named in err.not_done and named not in err.done
    assert not any(line.startswith("  model/clf: training version") for line in lines[lines.index(
        "  interrupted: waiting for the requests in flight (Ctrl-C again to quit now)") + 1:])


def test_a_second_ctrl_c_quits_and_leaves_no_training_lines_printing(h):
    client = Watched(h.client)
    lines: list[str] = []
    first = "  interrupted: waiting for the requests in flight (Ctrl-C again to quit now)"

    def progress(line: str) -> None:
        lines.append(line)
        if line == first:
            ctrl_c()  # the second Ctrl-C, while it waits

    def interrupt_on_first_poll() -> None:
        assert client.polling.wait(30)
        ctrl_c()

    threading.Thread(target=interrupt_on_first_poll, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        apply_plan(client, _plan(h), progress=progress, train_timeout_s=6, poll_s=0.05)  # type: ignore[arg-type]
    quit_at, printed = time.monotonic(), len(lines)
    for t in threading.enumerate():  # the workers unwind; give them every chance to print
        if t.name.startswith("apply"):
            t.join(10)
    assert lines[printed:] == [], "lines printed after apply quit"
    assert client.polls_after(quit_at) <= 1


def test_apply_stopped_at_never_names_an_action_that_printed_done(h):
    """Ctrl-C while the one task in flight (the app's create) is finishing: that task then finishes
    and prints done, so the report must name another, one that did not run."""

    def on_write(method: str, path: str) -> None:
        if method == "post" and path.endswith("/apps"):
            ctrl_c()
            time.sleep(0.2)  # let the main thread take the interrupt while this request is in flight

    client = Watched(h.client, on_write)
    lines: list[str] = []
    with pytest.raises(ApplyError, match=r"\(interrupted\)") as info:
        _apply(client, _plan(h), lines)
    err = info.value
    assert "[1/" in next(line for line in lines if "create app/stopper: done" in line)
    named = str(err).removeprefix("apply stopped at ").split(" (interrupted)")[0]
    assert named != "create app/stopper", str(err)
    assert not any(line.endswith(f"{named}: done") for line in lines), (named, lines)
    assert "create app/stopper" in err.done and "create concept/walker" in err.not_done


def test_a_retry_backoff_ends_at_once_when_the_apply_stops(monkeypatch):
    """A request retrying a 500 waits on the apply's stop event, not in a sleep: once the apply
    stops (another task failed, or Ctrl-C), the request gives up with its last failure."""
    from reconciler.api.client import Client
    from reconciler.sandbox.server import running_server

    monkeypatch.setattr("reconciler.api.client.random.uniform", lambda a, b: b)  # the full 30 s backoff
    hits: list[float] = []

    def always_500(environ, start_response):
        hits.append(time.monotonic())
        body = b'{"status": {"code": 99009, "description": "Internal error", "req_id": "r"}}'
        start_response("500 Internal Server Error", [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(body)))])
        return [body]

    with running_server(always_500) as url:  # type: ignore[arg-type]
        client = Client(url, "k" * 32, rate_limit=0, max_retries=5, backoff_base=30, backoff_cap=30, max_retry_seconds=45)
        client.stop = threading.Event()
        threading.Timer(0.3, client.stop.set).start()
        with pytest.raises(ApiError, match="99009"):
            client.get("/v2/users/me/apps/x")
        client.close()
    assert len(hits) == 1, "it retried after the apply stopped"
