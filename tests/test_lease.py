"""The app lease (apply/lease.py, apply/locked.py) in process: the sandbox's atomic dataset create,
acquire / wait / timeout / release, expiry by the
wall clock and by an unchanged record, takeover through the breaker with three contenders, renewal,
loss, the applier stopping on a lost lease, invisibility in plan / export / drift, the re-check of a
reviewed plan under the lease, and --max-deletes. Real processes racing (over HTTP, and on one
SQLite file) are in tests/test_concurrent_apply.py."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES, Harness

from reconciler.api.client import Client
from reconciler.api.transport import sandbox_transport
from reconciler.apply.lease import (
    LEASE_DATASET,
    LEASE_KEY,
    STEAL_PREFIX,
    Lease,
    LeaseOptions,
    LeaseRecord,
    break_lease,
    read_lease,
    rfc3339,
)
from reconciler.apply.locked import apply_app
from reconciler.core.errors import ApplyError, LeaseHeld, LeaseLost, PlanError, ReconcilerError
from reconciler.planning.drift import check_drift, report_to_dict
from reconciler.planning.export import export_manifest
from reconciler.planning.render import plan_to_dict
from reconciler.sandbox.app import DEFAULT_USER

EXAMPLE = EXAMPLES / "people-synonyms" / "manifest.yaml"
APP = "people-synonyms"
DATASETS = f"/v2/users/{DEFAULT_USER}/apps/{APP}/datasets"


@pytest.fixture
def h(tmp_path) -> Harness:
    harness = Harness(tmp_path)
    harness.apply(Harness.desired(EXAMPLE))
    return harness


def lease(h: Harness, **kw: Any) -> Lease:
    opts = {"holder": kw.pop("holder", "alice"), "ttl_s": kw.pop("ttl_s", 120.0), **kw}
    return Lease(h.make_client(), APP, DEFAULT_USER, options=LeaseOptions(**opts), unlock_hint="reconciler unlock m.yaml")


class FakeTime:
    """Wall and monotonic clocks that move only when slept on (or told to)."""

    def __init__(self) -> None:
        self.wall0 = time.time()
        self.t = 0.0

    def wall(self) -> float:
        return self.wall0 + self.t

    def mono(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


# --- the sandbox: one create wins ---------------------------------------------------------------


def test_post_datasets_refuses_a_second_create_and_is_all_or_nothing(sandbox_client: httpx.Client) -> None:
    base = f"/v2/users/{DEFAULT_USER}/apps/a"
    assert sandbox_client.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": "a"}]}).status_code == 200
    first = sandbox_client.post(f"{base}/datasets", json={"datasets": [{"id": "d1", "metadata": {"k": {"v": 1}}}]})
    assert first.status_code == 200 and first.json()["datasets"][0]["metadata"] == {"k": {"v": 1}}
    again = sandbox_client.post(f"{base}/datasets", json={"datasets": [{"id": "d1", "metadata": {"k": {"v": 2}}}]})
    assert (again.status_code, again.json()["status"]["code"]) == (409, 40010)
    batch = sandbox_client.post(f"{base}/datasets", json={"datasets": [{"id": "d2"}, {"id": "d1"}]})
    assert batch.status_code == 409
    got = sandbox_client.get(f"{base}/datasets").json()["datasets"]
    assert [(d["id"], d["metadata"]) for d in got] == [("d1", {"k": {"v": 1}})]  # d2 rolled back, d1 untouched
    merged = sandbox_client.patch(f"{base}/datasets", json={"action": "merge", "datasets": [{"id": "d1", "metadata": {"r": 1}}]})
    assert merged.json()["datasets"][0]["metadata"] == {"k": {"v": 1}, "r": 1}
    assert sandbox_client.get(f"{base}/datasets/d1").json()["dataset"]["id"] == "d1"
    assert sandbox_client.request("DELETE", f"{base}/datasets", json={"dataset_ids": ["d1"]}).status_code == 200
    assert sandbox_client.get(f"{base}/datasets/d1").status_code == 404
    assert sandbox_client.request("DELETE", f"{base}/datasets", json={"dataset_ids": ["d1"]}).status_code == 404


# --- acquire, hold, release -----------------------------------------------------------------------


def test_acquire_holds_release_deletes_and_a_second_fails_fast_naming_the_holder(h: Harness) -> None:
    first = lease(h, holder="alice")
    mine = first.acquire()
    raw = h.client.get(f"{DATASETS}/{LEASE_DATASET}")["dataset"]
    assert raw["metadata"][LEASE_KEY]["lease_id"] == mine.lease_id
    assert LeaseRecord.from_api(raw) == mine
    second = lease(h, holder="bob")
    with pytest.raises(LeaseHeld) as held:
        second.acquire()
    text = str(held.value)
    assert text.startswith(f"app {APP} is locked: apply by alice on {mine.host} (pid {mine.pid}) since {mine.created}, "
                           f"lease {mine.short_id}, expires ")
    assert text.endswith(f"wait with --lock-timeout 10m, or if that apply is gone: reconciler unlock m.yaml {mine.short_id}")
    assert held.value.holder["lease_id"] == mine.lease_id and "\n" not in text
    first.release()
    assert read_lease(h.client, APP, DEFAULT_USER) is None
    assert second.acquire().holder == "bob"
    second.release()


def test_a_waiter_gets_the_lease_once_it_is_released(h: Harness) -> None:
    holder = lease(h)
    theirs = holder.acquire()
    clock, lines = FakeTime(), []

    def sleep(s: float) -> None:  # the holder finishes while the waiter sleeps
        clock.sleep(s)
        if holder.record is not None:
            holder.release()

    waiter = Lease(h.make_client(), APP, DEFAULT_USER, progress=lines.append,
                   options=LeaseOptions(holder="bob", lock_timeout_s=60, wall=clock.wall, monotonic=clock.mono, sleep=sleep))
    assert waiter.acquire().holder == "bob"
    assert lines == [f"waiting for the lease on app {APP} ({theirs.describe()}, lease {theirs.short_id})"]
    assert theirs.describe().startswith("apply by alice on ") and f"(pid {os.getpid()}) since " in theirs.describe()
    waiter.release()


def test_lock_timeout_gives_up_with_one_line(h: Harness) -> None:
    holder = lease(h)
    holder.acquire()
    clock, lines = FakeTime(), []
    waiter = Lease(h.make_client(), APP, DEFAULT_USER, progress=lines.append,
                   options=LeaseOptions(holder="bob", lock_timeout_s=95, wall=clock.wall, monotonic=clock.mono,
                                        sleep=clock.sleep))
    with pytest.raises(LeaseHeld, match=rf"^app {APP} is still locked after --lock-timeout 1m35s: apply by alice"):
        waiter.acquire()
    assert clock.t == 95  # waited exactly the timeout: 1 + 2 + 4 + 8 + 16 + 16 + ... capped
    assert len(lines) == 3  # a line at once, then at most one every 30 s
    holder.release()


# --- expiry and takeover --------------------------------------------------------------------------


def plant(h: Harness, *, expires_in: float, lease_id: str = "dead0000" * 4, dataset_id: str = LEASE_DATASET) -> LeaseRecord:
    """A record as a holder that died (SIGKILL) leaves it."""
    now = time.time()
    rec = LeaseRecord(dataset_id, lease_id, "carol", "gone-host", 999999, "apply", rfc3339(now - 300),
                      rfc3339(now + expires_in), 120.0)
    h.client.post(DATASETS, {"datasets": [rec.to_api()]})
    return rec


def test_an_expired_lease_is_taken_over_and_the_breaker_removed(h: Harness) -> None:
    dead = plant(h, expires_in=-61)  # past expiry by more than the 60 s skew
    lines: list[str] = []
    mine = Lease(h.make_client(), APP, DEFAULT_USER, progress=lines.append, options=LeaseOptions(holder="bob"))
    got = mine.acquire()
    assert read_lease(h.client, APP, DEFAULT_USER).lease_id == got.lease_id != dead.lease_id
    assert lines == [f"took over the expired lease on app {APP} (apply by carol on gone-host (pid 999999) since "
                     f"{dead.created}, lease dead0000)"]
    ids = [d["id"] for d in h.client.get(DATASETS)["datasets"]]
    assert ids == [LEASE_DATASET]  # no breaker left
    mine.release()


def test_a_lease_from_a_clock_far_ahead_expires_once_seen_unchanged_for_ttl_plus_skew(h: Harness) -> None:
    plant(h, expires_in=3600)  # its holder's clock ran an hour ahead, then it died
    clock = FakeTime()
    opts = LeaseOptions(holder="bob", wall=lambda: clock.wall0, monotonic=clock.mono, sleep=clock.sleep)
    with pytest.raises(LeaseHeld):
        Lease(h.make_client(), APP, DEFAULT_USER, options=opts).acquire()
    waiter = Lease(h.make_client(), APP, DEFAULT_USER, options=dataclasses.replace(opts, lock_timeout_s=600))
    got = waiter.acquire()  # the record did not change for 120 + 60 s of its own clock
    assert 180 < clock.t <= 200 and got.holder == "bob"
    waiter.release()


def contend(h: Harness, n: int) -> tuple[list[Lease], list[str], list[BaseException]]:
    """`n` contenders for the app's lease, started together: (holders, refused, other errors)."""
    barrier, won, refused, other = threading.Barrier(n), [], [], []

    def one(name: str) -> None:
        lz = Lease(h.make_client(), APP, DEFAULT_USER, options=LeaseOptions(holder=name))
        barrier.wait()
        try:
            lz.acquire()
            won.append(lz)
        except LeaseHeld:
            refused.append(name)
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            other.append(err)

    threads = [threading.Thread(target=one, args=(f"c{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return won, refused, other


def test_three_contenders_on_one_expired_lease_exactly_one_holds(tmp_path) -> None:
    for round_ in range(6):
        (tmp_path / str(round_)).mkdir()
        h = Harness(tmp_path / str(round_), latency_ms=5)
        h.client.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": APP}]})
        plant(h, expires_in=-100)
        won, refused, other = contend(h, 3)
        assert not other and len(won) == 1 and len(refused) == 2, (won, refused, other)
        assert read_lease(h.client, APP, DEFAULT_USER).lease_id == won[0].record.lease_id
        won[0].release()
        assert not [d for d in h.client.get(DATASETS)["datasets"] if d["id"].startswith(STEAL_PREFIX)]


def test_a_stale_breaker_is_cleared_then_the_lease_taken_over(h: Harness) -> None:
    dead = plant(h, expires_in=-100)
    plant(h, expires_in=-100, lease_id="beef" * 8, dataset_id=STEAL_PREFIX + dead.lease_id[:12])  # its taker died too
    got = lease(h, holder="bob").acquire()
    assert read_lease(h.client, APP, DEFAULT_USER).lease_id == got.lease_id
    assert [d["id"] for d in h.client.get(DATASETS)["datasets"]] == [LEASE_DATASET]


def test_a_dataset_that_is_not_a_lease_is_never_taken_for_one(h: Harness) -> None:
    h.client.post(DATASETS, {"datasets": [{"id": LEASE_DATASET, "description": "the user's own"}]})
    with pytest.raises(ReconcilerError, match="not a reconciler lease"):
        lease(h).acquire()
    assert h.client.get(f"{DATASETS}/{LEASE_DATASET}")["dataset"]["description"] == "the user's own"


def test_a_key_without_dataset_access_is_one_line_naming_no_lock(h: Harness) -> None:
    h.sandbox.add_key("mallory-key", "mallory")
    other = Client("http://sandbox.local", "mallory-key", user_id="mallory", rate_limit=0,
                   transport=sandbox_transport(h.sandbox))
    with pytest.raises(ReconcilerError, match=r"^cannot take the app lease: the key lacks dataset permissions .*--no-lock"):
        Lease(other, APP, DEFAULT_USER).acquire()


# --- renewal and loss -----------------------------------------------------------------------------


def test_the_holder_renews_while_it_runs(h: Harness) -> None:
    holder = lease(h, ttl_s=0.6)
    first = holder.acquire()
    time.sleep(1.0)  # the renewer runs every ttl/3
    now = read_lease(h.client, APP, DEFAULT_USER)
    assert now.lease_id == first.lease_id and now.renewed >= 2 and now.expires >= first.expires
    holder.check()  # still ours
    holder.release()
    assert read_lease(h.client, APP, DEFAULT_USER) is None


def test_a_lease_broken_under_its_holder_is_lost_and_not_released(h: Harness) -> None:
    holder = lease(h, ttl_s=0.6)
    mine = holder.acquire()
    break_lease(h.client, APP, DEFAULT_USER, mine.short_id)
    other = lease(h, holder="bob")
    theirs = other.acquire()
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            holder.check()
        except LeaseLost as lost:
            assert str(lost) == f"the lease on app {APP} was lost (it was taken over by {theirs.describe()})"
            break
        time.sleep(0.05)
    else:
        pytest.fail("the holder never noticed")
    holder.release()  # must not delete bob's
    assert read_lease(h.client, APP, DEFAULT_USER).lease_id == theirs.lease_id
    other.release()


def test_a_lost_lease_stops_the_apply_before_the_next_write(h: Harness) -> None:
    from reconciler.apply.scheduler import apply_plan

    desired = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("people-synonyms", "other-app"))
    plan = h.plan(desired)
    calls = []

    def lease_check() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise LeaseLost("the lease on app other-app was lost (it was deleted)")

    with pytest.raises(ApplyError) as err:
        apply_plan(h.client, plan, poll_s=0.01, lease_check=lease_check)
    text = str(err.value)
    assert ": the lease on app other-app was lost (it was deleted). " in text and "Run apply again" in text
    assert len(calls) == 3  # no task started after the check failed
    assert err.value.done and err.value.not_done
    assert len(err.value.done) + len(err.value.not_done) == len(plan.actions)


# --- never seen by plan, export, drift -------------------------------------------------------------


def test_the_lease_is_invisible_to_plan_export_and_drift(h: Harness) -> None:
    desired = Harness.desired(EXAMPLE)

    def views() -> tuple[str, ...]:
        live = h.live(APP)
        assert live is not None
        return (json.dumps(plan_to_dict(h.plan(desired))), json.dumps(export_manifest(live)),
                json.dumps(report_to_dict(check_drift(h.client, desired))))

    before = views()
    holder = lease(h)
    holder.acquire()
    plant(h, expires_in=100, lease_id="feed" * 8, dataset_id=STEAL_PREFIX + "feedfeedfeed")
    during = views()
    holder.release()
    assert during == before and h.plan(desired).empty


# --- apply under the lease ---------------------------------------------------------------------------


def test_apply_app_takes_and_releases_the_lease_around_the_writes(h: Harness) -> None:
    desired = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.9"))
    h.clear_log()
    out = apply_app(h.client, desired, poll_s=0.01)
    assert out.result is not None and out.result.done
    writes = [(m, p) for m, p, _ in h.writes()]
    assert writes[0] == ("POST", DATASETS) and writes[-1] == ("DELETE", DATASETS)  # the lease, around every write
    assert len(writes) == out.result.writes + 2
    log = [(m, p) for m, p, _ in h.log()]
    assert log.index(("POST", DATASETS)) > 0  # read (and planned) first
    assert read_lease(h.client, APP, DEFAULT_USER) is None and h.plan(desired).empty


def test_a_failed_apply_releases_the_lease(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.apply import scheduler
    from reconciler.core.errors import ApiError

    desired = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.9"))

    def failing(self: Any, task: Any) -> None:
        raise ApiError("POST /v2/...: INTERNAL_UNCATEGORIZED (99009), HTTP 500", code=99009, http_status=500)

    monkeypatch.setattr(scheduler.Applier, "_execute", failing)
    with pytest.raises(ApplyError, match="apply stopped at "):
        apply_app(h.client, desired, poll_s=0.01)
    assert read_lease(h.client, APP, DEFAULT_USER) is None
    monkeypatch.undo()
    assert apply_app(h.client, desired, poll_s=0.01).result is not None and h.plan(desired).empty


def test_an_apply_with_nothing_to_do_takes_no_lease(h: Harness) -> None:
    h.clear_log()
    out = apply_app(h.client, Harness.desired(EXAMPLE))
    assert out.plan.empty and out.result is None and h.writes() == []


def test_apply_app_refuses_while_another_holds_it_and_writes_nothing(h: Harness) -> None:
    holder = lease(h)
    holder.acquire()
    h.clear_log()
    desired = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.9"))
    with pytest.raises(LeaseHeld):
        apply_app(h.client, desired, lease_options=LeaseOptions(holder="bob"))
    assert [w for w in h.writes() if not w[1].endswith("/datasets")] == []
    holder.release()


def test_apply_app_creates_a_missing_app_first_then_takes_the_lease(tmp_path) -> None:
    h = Harness(tmp_path)
    desired = Harness.desired(EXAMPLE)
    lines: list[str] = []
    out = apply_app(h.client, desired, progress=lines.append, poll_s=0.01)
    assert f"created app {APP} (first: the app lease lives in the app)" in lines
    assert out.result is not None and h.plan(desired).empty
    assert not any(a.kind.value == "app" and a.op.value == "create" for a in out.plan.actions)


def test_the_plan_shown_is_refused_when_the_app_changed_before_the_lease(h: Harness) -> None:
    desired = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.9"))
    rival = Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.8"))

    def confirm(_plan: Any) -> bool:  # while the person reads the plan, another apply finishes
        h.apply(rival)
        return True

    h.clear_log()
    with pytest.raises(PlanError, match=rf"^app {APP} changed since the plan shown \(another apply finished meanwhile\?\); "
                                        "nothing was changed; run apply again$"):
        apply_app(h.client, desired, confirm=confirm, poll_s=0.01)
    assert h.plan(rival).empty  # the rival's app, untouched
    assert read_lease(h.client, APP, DEFAULT_USER) is None  # released


def test_two_saved_plans_from_one_state_the_second_is_refused_under_the_lease(h: Harness) -> None:
    p1 = h.plan(Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.9")))
    p2 = h.plan(Harness.desired(EXAMPLE, EXAMPLE.read_text().replace("adult: 0.95", "adult: 0.8")))
    assert p1.live_fingerprint == p2.live_fingerprint
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def run(name: str, plan: Any) -> None:
        barrier.wait()
        try:
            results[name] = apply_app(h.make_client(), plan.desired, reviewed=plan, source=f"{name}.json",
                                      lease_options=LeaseOptions(lock_timeout_s=60), poll_s=0.01)
        except ReconcilerError as err:
            results[name] = err

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("one", p1), ("two", p2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    errors = [r for r in results.values() if isinstance(r, ReconcilerError)]
    assert len(errors) == 1 and "changed since the plan in" in str(errors[0]), results
    winner = p1 if not isinstance(results["one"], ReconcilerError) else p2
    assert h.plan(winner.desired).empty


def test_max_deletes_refuses_before_any_write(h: Harness) -> None:
    from robust import with_extras

    desired = Harness.desired(EXAMPLE)
    h.apply(with_extras(desired))  # an extra workflow and model, which `desired` deletes
    deletes = [a.address for a in h.plan(desired).actions if a.op.value == "delete"]
    assert deletes == ["workflow/extra-flow", "model/extra-writer"]
    h.clear_log()
    with pytest.raises(PlanError) as err:
        apply_app(h.client, desired, max_deletes=1)
    assert str(err.value) == ("the plan deletes 2 resources (workflow/extra-flow, model/extra-writer), "
                              "more than --max-deletes 1; nothing was changed")
    assert [w for w in h.writes() if not w[1].endswith("/datasets")] == []
    assert read_lease(h.client, APP, DEFAULT_USER) is None
    assert apply_app(h.client, desired, max_deletes=2, poll_s=0.01).result is not None
    assert h.plan(desired).empty
