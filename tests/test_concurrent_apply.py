"""Concurrent applies on one app: two applies of the same manifest at once, and two of different
manifests, as threads (in process, several interleavings) and as two CLI processes against a served
sandbox. Each either finishes or fails with a clear one-line message; afterwards one more apply
converges (the next plan is empty) and nothing is duplicated: ids are listed once, and no model has
two versions with the same configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter

import pytest
from e2e import EXAMPLES, ROOT, Harness
from robust import canon, generate, updated, with_extras

from reconciler.apply.scheduler import apply_plan
from reconciler.core.errors import ReconcilerError
from reconciler.sandbox.app import Sandbox
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
                assert len(lines) == 1 and "Run apply again" in lines[0] or "already" in lines[0], err
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
