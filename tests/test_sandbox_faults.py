"""Each fault-injection mode of the sandbox, in process and over loopback HTTP, plus the
loopback-only admin endpoints. No wall-clock assertions beyond "at least the injected latency"."""

from __future__ import annotations

import time

import httpx
import pytest
import requests

from reconciler.sandbox.app import DEFAULT_KEY

H = {"Authorization": f"Key {DEFAULT_KEY}"}
A = "/v2/users/me/apps/app1"


@pytest.fixture
def c(sandbox_client: httpx.Client, sandbox) -> httpx.Client:
    assert sandbox_client.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}).status_code == 200
    sandbox.request_log.clear()
    return sandbox_client


def concepts(c: httpx.Client) -> list[str]:
    return [x["id"] for x in c.get(A + "/concepts").json()["concepts"]]


def test_latency_is_added_to_every_request(c, sandbox):
    sandbox.faults.set(latency_ms=150)
    t0 = time.monotonic()
    assert c.get(A + "/concepts").status_code == 200
    assert time.monotonic() - t0 >= 0.15
    sandbox.faults.clear()
    assert sandbox.faults.snapshot()["latency_ms"] == 0


def test_rate_limit_answers_429_conn_throttled_with_retry_after(c, sandbox):
    sandbox.faults.set(rate_limit=3)
    codes = [c.get(A + "/concepts") for _ in range(8)]
    throttled = [r for r in codes if r.status_code == 429]
    assert [r.status_code for r in codes[:3]] == [200] * 3 and throttled
    body = throttled[0].json()
    assert body["status"]["code"] == 11005 and body["status"]["req_id"]
    assert int(throttled[0].headers["Retry-After"]) >= 1
    time.sleep(0.4)  # the bucket refills at 3/s
    assert c.get(A + "/concepts").status_code == 200
    assert sum(e.status == 429 for e in sandbox.request_log) == len(throttled)


def test_rate_limit_from_the_constructor(tmp_path):
    from reconciler.sandbox.app import Sandbox

    sb = Sandbox(str(tmp_path / "r.sqlite"), rate_limit=1, latency_ms=1)
    with httpx.Client(transport=httpx.WSGITransport(app=sb), base_url="http://x", headers=H) as c:
        assert [c.get("/v2/users/me/apps").status_code for _ in range(2)] == [200, 429]
    sb.close()


@pytest.mark.parametrize("when,kept", [("before", False), ("after", True)])
def test_http500_before_or_after_commit(c, sandbox, when, kept):
    sandbox.faults.fail_request(2, mode="http500", when=when)
    assert c.get(A + "/concepts").status_code == 200  # request 1
    r = c.post(A + "/concepts", json={"concepts": [{"id": "x"}]})  # request 2
    assert r.status_code == 500 and r.json()["status"]["code"] == 99009
    assert concepts(c) == (["x"] if kept else [])
    assert [e.status for e in sandbox.request_log] == [200, 500, 200]
    assert sandbox.faults.snapshot()["fail"] == []  # a planned failure fires once


@pytest.mark.parametrize("when,kept", [("before", False), ("after", True)])
def test_dropped_connection_in_process(c, sandbox, when, kept):
    sandbox.faults.fail_request(1, mode="drop", when=when)
    with pytest.raises(ConnectionResetError):
        c.post(A + "/concepts", json={"concepts": [{"id": "x"}]})
    assert concepts(c) == (["x"] if kept else [])
    assert sandbox.request_log[0].dropped


@pytest.mark.parametrize("when,kept", [("before", False), ("after", True)])
def test_dropped_connection_over_http(served_sandbox, sandbox, when, kept):
    requests.post(served_sandbox + "/v2/users/me/apps", json={"apps": [{"id": "app1"}]}, headers=H)
    # configured through the admin endpoint, counting from a reset log
    assert requests.post(served_sandbox + "/_sandbox/reset-log").status_code == 200
    cfg = requests.post(served_sandbox + "/_sandbox/faults", json={"fail": [{"request": 1, "mode": "drop", "when": when}]})
    assert cfg.json()["fail"] == [{"request": 1, "mode": "drop", "when": when}]
    with requests.Session() as s:
        s.headers.update(H)
        with pytest.raises(requests.ConnectionError):
            s.post(served_sandbox + A + "/concepts", json={"concepts": [{"id": "x"}]})
        got = s.get(served_sandbox + A + "/concepts").json()["concepts"]
    assert [x["id"] for x in got] == (["x"] if kept else [])
    log = requests.get(served_sandbox + "/_sandbox/log").json()
    assert [(e["method"], e["dropped"]) for e in log["requests"]] == [("POST", True), ("GET", False)]
    assert log["count"] == 2


def test_http500_over_http_and_admin_settings(served_sandbox):
    base = served_sandbox
    r = requests.post(base + "/_sandbox/faults", json={"latency_ms": 5, "rate_limit": 100,
                                                       "fail": [{"request": 2}]})
    assert r.json()["latency_ms"] == 5 and r.json()["rate_limit"] == 100
    requests.post(base + "/_sandbox/reset-log")
    assert requests.get(base + "/v2/users/me/apps", headers=H).status_code == 200
    r = requests.get(base + "/v2/users/me/apps", headers=H)
    assert r.status_code == 500 and r.json()["status"]["code"] == 99009
    cleared = requests.post(base + "/_sandbox/faults", json={"clear": True}).json()
    assert cleared["status"]["code"] == 10000 and cleared["fail"] == []
    snap = requests.get(base + "/_sandbox/faults").json()
    assert (snap["latency_ms"], snap["rate_limit"], snap["fail"]) == (0, 0, [])
    assert requests.post(base + "/_sandbox/faults", json={"fail": [{"request": 1, "mode": "boom"}]}).status_code == 400
    assert requests.post(base + "/_sandbox/faults", data=b"{").status_code == 400
    assert requests.get(base + "/_sandbox/nope").status_code == 404
    statuses = [e["status"] for e in requests.get(base + "/_sandbox/log").json()["requests"]]
    assert statuses == [200, 500]  # admin calls are not logged


def test_admin_endpoints_answer_loopback_only(sandbox_app):
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox_app, remote_addr="10.1.2.3"),
                      base_url="http://x") as far:
        r = far.post("/_sandbox/faults", json={"latency_ms": 1000})
        assert r.status_code == 403 and r.json()["status"]["code"] == 11007
    assert sandbox_app.faults.snapshot()["latency_ms"] == 0
