"""Concurrent applies on one app: two applies of the same manifest at once, and two of different
manifests, as threads (in process, through `apply_plan`, no lease: several interleavings) and as
CLI processes against a served sandbox, where the app lease serialises them (issue 21). Each either
finishes or fails with a clear one-line message; afterwards one more apply converges (the next plan
is empty) and nothing is duplicated: ids are listed once, and no model has two versions with the
same configuration.

The lease, with real processes (`python -m reconciler apply` against `reconciler sandbox serve` on
127.0.0.1 with 150 ms latency): the app ends equal to the manifest of the last apply that exited 0,
and the other one waited (`--lock-timeout`) or failed naming the holder; a holder killed by SIGKILL
leaves a lease that expires and is taken over; `reconciler unlock` breaks one; the sandbox's dataset
create is atomic across processes sharing its SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES, ROOT, Harness
from robust import canon, generate, updated, with_extras

from reconciler.api.client import Client
from reconciler.api.transport import sandbox_transport
from reconciler.apply.scheduler import apply_plan
from reconciler.core.errors import ReconcilerError
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.sandbox.server import running_server

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips this file

EXAMPLE = EXAMPLES / "auto-annotation" / "manifest.yaml"


def assert_no_duplicates(h: Harness, app_id: str) -> None:
    _picture, live = canon(h.client, app_id)  # raises on an id listed twice
    for m in live.models:
        configs = Counter(json.dumps(v.config, sort_keys=True) for v in m.versions)
        twice = [c for c, n in configs.items() if n > 1]
        assert not twice, f"model {m.id} has {len(m.versions)} versions, some with the same config: {twice}"


def race(h: Harness, states, latency_ms: float) -> list[str]:
    """Plan and apply each state in its own thread, all started together; the error lines."""
    h.sandbox.faults.set(latency_ms=latency_ms)
    barrier = threading.Barrier(len(states))
    errors: list[str] = []
    others: list[BaseException] = []

    def run(state):
        client = h.make_client()
        try:
            barrier.wait()
            plan = h.plan(state)
            apply_plan(client, plan, poll_s=0.001)
        except ReconcilerError as err:
            errors.append(str(err))
        except BaseException as err:  # noqa: BLE001 - anything else is a bug the test reports
            others.append(err)

    threads = [threading.Thread(target=run, args=(s,)) for s in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    h.sandbox.faults.set(latency_ms=0)
    assert not others, f"an apply raised something other than a clear error: {others!r}"
    for e in errors:
        assert "\n" not in e and "Traceback" not in e, e
    return errors


MANIFESTS = {"example": lambda: Harness.desired(EXAMPLE),
             "generated": lambda: Harness.desired("gen.yaml", generate(200, 16, 3))}


@pytest.mark.parametrize("latency_ms", [0, 1, 3])
@pytest.mark.parametrize("which", list(MANIFESTS))
def test_two_applies_of_the_same_manifest_at_once(tmp_path, which, latency_ms):
    h = Harness(tmp_path)
    desired = MANIFESTS[which]()
    race(h, [desired, desired], latency_ms)
    h.apply(desired)
    assert h.plan(desired).empty
    assert_no_duplicates(h, desired.app.id)


@pytest.mark.parametrize("latency_ms", [0, 1, 3])
@pytest.mark.parametrize("which", list(MANIFESTS))
def test_two_applies_of_the_same_update_at_once(tmp_path, which, latency_ms):
    """Both plan the same new model versions: only one version per config may survive."""
    h = Harness(tmp_path)
    base = MANIFESTS[which]()
    h.apply(with_extras(base))
    desired = updated(base)
    race(h, [desired, desired], latency_ms)
    h.apply(desired)
    assert h.plan(desired).empty
    assert_no_duplicates(h, desired.app.id)


@pytest.mark.parametrize("latency_ms", [0, 1, 3])
@pytest.mark.parametrize("which", list(MANIFESTS))
def test_two_applies_of_different_manifests_at_once(tmp_path, which, latency_ms):
    h = Harness(tmp_path)
    base = MANIFESTS[which]()
    h.apply(with_extras(base))
    a, b = with_extras(base), updated(base)
    race(h, [a, b], latency_ms)
    for final in (b, a):  # whichever the team settles on, one more apply converges
        h.apply(final)
        assert h.plan(final).empty
        assert_no_duplicates(h, final.app.id)


def test_two_cli_processes_against_a_served_sandbox(tmp_path):
    sandbox = Sandbox(str(tmp_path / "served.sqlite"), training_delay_s=0, latency_ms=2)
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(EXAMPLE.read_text())
    # b: the same app with other thresholds and descriptions
    b.write_text(EXAMPLE.read_text().replace("0.85", "0.5").replace("Confident predictions", "Sure ones"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFAI_")}
    env["PYTHONPATH"] = str(ROOT)
    with running_server(sandbox) as url:
        cmd = [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--api-base", url, "--rate-limit", "0"]
        procs = [subprocess.Popen([*cmd, str(m)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for m in (a, b)]
        results = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, results):
            assert p.returncode in (0, 1), (p.returncode, err)
            assert "Traceback" not in out + err
            if p.returncode == 1:
                lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
                # the app lease: the other apply holds it (before issue 21 both wrote, and one
                # could stop part-way, "Run apply again")
                assert len(lines) == 1 and " is locked: apply by " in lines[0], err
        done = subprocess.run([*cmd, str(b)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        plan = subprocess.run([sys.executable, "-m", "reconciler", "plan", str(b), "--detailed-exitcode",
                               "--api-base", url], env=env, capture_output=True, text=True, timeout=60)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        h = Harness.__new__(Harness)  # a client on the served sandbox, for the duplicate check
        h.sandbox = sandbox
        from reconciler.api.client import Client
        from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER

        h.client = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0)
        assert_no_duplicates(h, "park-activity")
    sandbox.close()


# --- the app lease with real processes ----------------------------------------------------------

LATENCY_MS = 150
PEOPLE = EXAMPLES / "people-synonyms" / "manifest.yaml"
HELD = re.compile(r"^error: app people-synonyms is locked: apply by (\S+) on (\S+) \(pid (\d+)\) since "
                  r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ), lease ([0-9a-f]{8}), expires \d\d:\d\d:\d\dZ; "
                  r"wait with --lock-timeout 10m, or if that apply is gone: reconciler unlock (\S+) \5$")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`reconciler sandbox serve` in its own process on 127.0.0.1 with latency; its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0",
                             "--db", str(tmp_path / "served.sqlite"), "--latency-ms", str(LATENCY_MS)],
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert m, first
        yield m.group(0)
    finally:
        proc.terminate()
        proc.wait(30)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARIFAI_", "RECONCILER_LEASE"))}
    env.update(PYTHONPATH=str(ROOT), CLARIFAI_PAT=DEFAULT_KEY, CLARIFAI_USER_ID=DEFAULT_USER, **extra)
    return env


def manifests(tmp_path: Path) -> tuple[Path, Path]:
    """Two manifests of one app that disagree (thresholds, a description)."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(PEOPLE.read_text())
    b.write_text(PEOPLE.read_text().replace("adult: 0.95", "adult: 0.8").replace("0.5, man: 0.5", "0.6, man: 0.6"))
    return a, b


def start(url: str, manifest: Path, *flags: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", "apply", str(manifest), "--auto-approve",
                             "--api-base", url, "--rate-limit", "0", *flags], cwd=manifest.parent,
                            env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def plan_code(url: str, manifest: Path) -> int:
    return subprocess.run([sys.executable, "-m", "reconciler", "plan", str(manifest), "--detailed-exitcode",
                           "--api-base", url], cwd=manifest.parent, env=cli_env(), capture_output=True, text=True,
                          timeout=120).returncode


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str, float]]:
    """(exit code, stdout, stderr, when it exited) of each process, in the order given."""
    done: dict[int, tuple[int, str, str, float]] = {}

    def wait(i: int, p: subprocess.Popen[str]) -> None:
        out, err = p.communicate(timeout=300)
        done[i] = (p.returncode, out, err, time.monotonic())

    threads = [threading.Thread(target=wait, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [done[i] for i in range(len(procs))]


def until(proc: subprocess.Popen[str], pattern: str, lines: list[str]) -> None:
    """Read the process's stderr until a line matches (collected in `lines`)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if re.search(pattern, line):
            return
    raise AssertionError(f"never printed {pattern!r}: {''.join(lines)}")


def holding(url: str, manifest: Path, *flags: str, **env: str) -> subprocess.Popen[str]:
    """An apply of `manifest` that holds the lease, paused (SIGSTOP) right after its first write:
    whatever the machine's speed, the next apply meets a lease that is held. SIGCONT resumes it."""
    proc = start(url, manifest, *flags, **env)
    until(proc, r"^\[\d+(-\d+)?/\d+\] ", [])  # progress: it holds the lease and has written
    proc.send_signal(signal.SIGSTOP)
    return proc


def lease_on(url: str) -> Any:
    from reconciler.apply.lease import read_lease

    return read_lease(Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0), "people-synonyms", DEFAULT_USER)


def test_two_applies_racing_one_fails_naming_the_holder_the_app_is_the_winners(tmp_path: Path, served: str) -> None:
    a, b = manifests(tmp_path)
    assert finish([start(served, a)])[0][0] == 0  # the app exists; both race on an update
    first = holding(served, b)
    try:
        (code_a, _, err_a, _), = finish([start(served, a)])
    finally:
        first.send_signal(signal.SIGCONT)
    (code_b, _, err_b, _), = finish([first])
    assert (code_b, code_a) == (0, 1), (err_b, err_a)
    held = [ln for ln in err_a.splitlines() if ln.startswith("error:")]
    assert len(held) == 1, err_a
    m = HELD.match(held[0])
    assert m, held[0]
    assert int(m.group(3)) == first.pid and m.group(6) == str(a)  # names the holder's pid, and how to unlock
    assert "Traceback" not in err_a + err_b
    assert plan_code(served, b) == 0  # the app is b's: the one that exited 0
    assert plan_code(served, a) == 2


def test_two_applies_with_lock_timeout_both_succeed_the_last_one_wins(tmp_path: Path, served: str) -> None:
    """The app does not exist yet: the first creates it and holds the lease while the second
    reads the app being filled (the read race of issue 21 item 7) and waits for the lease."""
    a, b = manifests(tmp_path)
    first = holding(served, a, "--lock-timeout", "120s")
    second = start(served, b, "--lock-timeout", "120s")
    lines: list[str] = []
    try:
        until(second, r"^waiting for the lease on app people-synonyms \(apply by ", lines)
    finally:
        first.send_signal(signal.SIGCONT)
    results = finish([first, second])
    assert [r[0] for r in results] == [0, 0], [r[2] for r in results]
    assert f"(pid {first.pid})" in lines[-1]
    assert results[1][3] > results[0][3]  # the one that waited finished last
    assert plan_code(served, b) == 0  # the app is the last one's
    assert plan_code(served, a) == 2
    assert_no_duplicates_served(served)


def test_two_saved_plans_from_one_state_applied_at_once_the_second_is_refused(tmp_path: Path, served: str) -> None:
    a, b = manifests(tmp_path)
    assert finish([start(served, a)])[0][0] == 0
    c = tmp_path / "c.yaml"
    c.write_text(a.read_text().replace("adult: 0.95", "adult: 0.7"))
    for manifest, out in ((b, "b.plan.json"), (c, "c.plan.json")):
        made = subprocess.run([sys.executable, "-m", "reconciler", "plan", str(manifest), "--out", out, "--api-base", served],
                              cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr

    def apply_saved(name: str) -> subprocess.Popen[str]:
        argv = ["apply", name, "--lock-timeout", "120s", "--api-base", served, "--rate-limit", "0"]
        return subprocess.Popen([sys.executable, "-m", "reconciler", *argv], cwd=tmp_path, env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    results = finish([apply_saved("b.plan.json"), apply_saved("c.plan.json")])
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], [r[2] for r in results]
    loser = next(r for r in results if r[0] == 1)
    errors = [ln for ln in loser[2].splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and re.match(r"^error: the live app people-synonyms changed since the plan in [bc]\.plan\.json "
                                         r"was made; nothing was changed; make a new plan$", errors[0]), loser[2]
    winner = b if results[0][0] == 0 else c
    assert plan_code(served, winner) == 0


def test_a_holder_killed_by_sigkill_leaves_a_lease_that_expires(tmp_path: Path, served: str) -> None:
    a, b = manifests(tmp_path)
    short = {"RECONCILER_LEASE_TTL": "2", "RECONCILER_LEASE_SKEW": "1"}
    victim = holding(served, a, **short)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    left = lease_on(served)
    assert left is not None and left.pid == victim.pid  # left behind
    (code, out, err, _), = finish([start(served, b, **short)])
    if code == 1:  # still within its ttl + skew: held, naming the dead holder
        assert f"(pid {victim.pid})" in err, err
        expires = datetime.fromisoformat(left.expires.replace("Z", "+00:00")).timestamp()
        time.sleep(max(0.0, expires + 1.5 - time.time()))  # past expires + skew
        (code, out, err, _), = finish([start(served, b, **short)])
    assert code == 0, err
    assert "took over the expired lease on app people-synonyms (apply by " in err and f"(pid {victim.pid})" in err
    assert "Apply complete" in out
    assert plan_code(served, b) == 0
    assert lease_on(served) is None


def test_sigterm_stops_the_apply_and_releases_the_lease(tmp_path: Path, served: str) -> None:
    a, _b = manifests(tmp_path)
    holder = holding(served, a)
    assert lease_on(served).pid == holder.pid
    holder.send_signal(signal.SIGTERM)  # a cancelled CI job
    holder.send_signal(signal.SIGCONT)
    (code, _, err, _), = finish([holder])
    assert code == 1 and "Traceback" not in err, err
    last = [ln for ln in err.splitlines() if ln.startswith("error:")][-1]
    assert last == "error: interrupted" or last.startswith("error: apply stopped at "), err  # as Ctrl-C
    assert lease_on(served) is None  # released on the way out


def test_unlock_breaks_a_dead_holders_lease_with_its_id(tmp_path: Path, served: str) -> None:
    a, b = manifests(tmp_path)
    victim = holding(served, a)  # the default ttl: 120 s
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    (code, _, err, _), = finish([start(served, b)])
    m = HELD.match(next(ln for ln in err.splitlines() if ln.startswith("error:")))
    assert code == 1 and m, err
    lease_id = m.group(5)

    def unlock(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", "unlock", str(b), *args, "--api-base", served],
                              cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    no_id = unlock()
    assert no_id.returncode == 1 and f"Lease Info:\n  ID:        {lease_id}" in no_id.stdout
    assert no_id.stderr.strip() == f"error: give the lease id to break it: reconciler unlock {b} {lease_id}"
    wrong = unlock("0123456789abcdef", "--force")
    assert wrong.returncode == 1 and "does not match the lease held" in wrong.stderr
    unconfirmed = unlock(lease_id)
    assert unconfirmed.returncode == 1 and "stdin is not a terminal" in unconfirmed.stderr
    done = unlock(lease_id, "--force")
    assert done.returncode == 0 and "Lease broken: app people-synonyms is unlocked." in done.stdout, done.stderr
    (code, out, err, _), = finish([start(served, b)])
    assert code == 0 and "Apply complete" in out, err
    assert plan_code(served, b) == 0


def assert_no_duplicates_served(url: str) -> None:
    h = Harness.__new__(Harness)
    h.client = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0)
    assert_no_duplicates(h, "people-synonyms")


def test_one_create_wins_across_processes_sharing_the_sandbox_file(tmp_path) -> None:
    """Four processes, each with its own Sandbox on one SQLite file (as embedded sandboxes of two
    CLI runs are), create the same dataset at once: exactly one succeeds."""
    db = tmp_path / "shared.sqlite"
    Sandbox(str(db)).close()
    setup = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0,
                   transport=sandbox_transport(Sandbox(str(db))))
    setup.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": "a"}]})
    script = (
        "import sys, time, httpx\n"
        "from reconciler.sandbox.app import Sandbox, DEFAULT_KEY\n"
        "from reconciler.api.transport import sandbox_transport\n"
        "c = httpx.Client(transport=sandbox_transport(Sandbox(sys.argv[1])), base_url='http://s')\n"
        "while time.time() < float(sys.argv[2]): pass\n"
        "r = c.post('/v2/users/sandbox/apps/a/datasets', json={'datasets': [{'id': 'x', 'description': sys.argv[3]}]},"
        " headers={'Authorization': 'Key ' + DEFAULT_KEY})\n"
        "print(r.json()['status']['code'])\n"
    )
    for attempt in range(2):
        start = time.time() + 2.0
        procs = [subprocess.Popen([sys.executable, "-c", script, str(db), str(start), f"p{i}-{attempt}"],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True) for i in range(4)]
        codes = sorted(int(p.communicate(timeout=60)[0].strip()) for p in procs)
        assert codes == [10000, 40010, 40010, 40010], codes
        winner = setup.get(f"/v2/users/{DEFAULT_USER}/apps/a/datasets/x")["dataset"]["description"]
        assert winner.endswith(f"-{attempt}")
        setup.delete(f"/v2/users/{DEFAULT_USER}/apps/a/datasets", {"dataset_ids": ["x"]})


