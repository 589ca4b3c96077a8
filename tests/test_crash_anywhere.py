"""Crash anywhere, converge on re-run.

For the auto-annotation example and a generated manifest of 500 concepts, 30 models and 5
workflows, and for both a fresh apply and an update apply (thresholds, descriptions, a node added,
a concept and relation added, a workflow and a model removed): for EVERY request index k of that
apply (the count comes from a clean run's request log) and each failure mode -- HTTP 500 before the
request commits, HTTP 500 after it commits, connection dropped after it commits -- the fault is
injected at k with client retries off, then apply runs again with a normal client. Afterwards:

- the next plan is empty, and the live app equals what a clean, fault-free apply produces
  (`robust.canon`: every field, every model's set of version configs, every node's pinned config);
- nothing is duplicated: the same number of versions per model as the clean run, ids listed once;
- the hand-made resources (raw API calls; in the app for updates, in another app for fresh
  applies) are byte-for-byte unchanged, and the user's own metadata keys on a managed model,
  workflow and the app are still there;
- the failed apply either finished by itself (a lost answer it could read back) or raised an
  ApplyError that says what was done and to run apply again -- never anything else.

Speed: each scenario's baseline is built once and each case starts from a copy of its SQLite file
(the sandbox reopens an existing file as is). The case count is printed in the terminal summary.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES, Harness
from robust import add_bystanders, canon, generate, snapshot_bystanders, updated, user_metadata, with_extras

from reconciler.apply.scheduler import apply_plan
from reconciler.core.errors import ApplyError
from reconciler.core.state import State

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips this file

MODES = [("http500", "before"), ("http500", "after"), ("drop", "after")]
EXAMPLE = EXAMPLES / "auto-annotation" / "manifest.yaml"
#: (k, mode) cases run, by scenario: reported at the end of the session
CASES_RUN: dict[str, int] = {}


@dataclass
class Scenario:
    name: str
    desired: State
    db: Path
    in_app: bool
    n_requests: int = 0
    clean: dict[str, Any] = field(default_factory=dict)
    bystanders: dict[str, Any] = field(default_factory=dict)
    user_meta: dict[str, Any] | None = None
    meta_ids: tuple[str, str] = ("", "")
    quirks: str | None = None  # the sandbox's pessimistic mode (README, "Pessimistic sandbox mode")


def _manifest(which: str) -> State:
    if which == "example":
        return Harness.desired(EXAMPLE)
    return Harness.desired("generated-500.yaml", generate(500, 30, 5))


def _open(s: Scenario, case_dir: Path) -> Harness:
    case_dir.mkdir(parents=True)
    shutil.copyfile(s.db, case_dir / "sandbox.sqlite")
    return Harness(case_dir, quirks=s.quirks)


def _build(which: str, kind: str, tmp: Path, quirks: str | None = None) -> Scenario:
    manifest = _manifest(which)
    before = with_extras(manifest) if kind == "update" else None
    desired = updated(manifest) if before is not None else manifest
    base_dir = tmp / "baseline"
    base_dir.mkdir()
    h = Harness(base_dir, quirks=quirks)
    s = Scenario(f"{which}/{kind}", desired, base_dir / "sandbox.sqlite", in_app=before is not None, quirks=quirks)
    if before is None:
        add_bystanders(h.client, desired.app.id, in_app=False)
    else:
        h.apply(before)
        writer = next(m for m in before.models if m.type == "annotation-writer").id
        flow = before.app.default_workflow or before.workflows[0].id
        s.meta_ids = (writer, flow)
        add_bystanders(h.client, desired.app.id, in_app=True, managed_model=writer, managed_workflow=flow)
        s.user_meta = user_metadata(h.client, desired.app.id, writer, flow)
        assert s.user_meta["model"] == {"owner": "alice"}
    s.bystanders = snapshot_bystanders(h.client, desired.app.id, in_app=s.in_app)
    h.sandbox.close()  # checkpoints the WAL into the file we copy

    # the clean run: how many requests k ranges over, and the state every crashed run must reach
    clean = _open(s, tmp / "clean")
    plan = clean.plan(desired)
    clean.clear_log()
    apply_plan(clean.make_client(max_retries=0), plan, poll_s=0.001)
    s.n_requests = len(clean.sandbox.request_log)
    assert s.n_requests > 3
    s.clean, _ = canon(clean.client, desired.app.id)
    assert clean.plan(desired).empty
    clean.sandbox.close()
    return s


SCENARIOS = [("example", "fresh"), ("example", "update"), ("generated", "fresh"), ("generated", "update")]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    out = {}
    for which, kind in SCENARIOS:
        s = _build(which, kind, tmp_path_factory.mktemp(f"{which}-{kind}"))
        out[s.name] = s
    return out


#: The slice run under the pessimistic sandbox: every scenario, every STRIDE-th request index.
PESSIMISTIC_SCENARIOS = SCENARIOS
STRIDE = 5


@pytest.fixture(scope="module")
def pessimistic_scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    out = {}
    for which, kind in PESSIMISTIC_SCENARIOS:
        s = _build(which, kind, tmp_path_factory.mktemp(f"pessimistic-{which}-{kind}"), quirks="pessimistic")
        out[s.name] = s
    return out


def _run_case(s: Scenario, k: int, mode: str, when: str, case_dir: Path) -> None:
    h = _open(s, case_dir)
    try:
        desired = s.desired
        plan = h.plan(desired)
        h.clear_log()
        h.sandbox.faults.fail_request(k, mode=mode, when=when)
        try:
            apply_plan(h.make_client(max_retries=0), plan, poll_s=0.001)
        except ApplyError as err:
            msg = str(err)
            assert "Run apply again" in msg and "\n" not in msg, msg
        fired = [e for e in h.sandbox.request_log if e.status >= 500 or e.dropped]
        assert fired, "the fault did not fire"
        h.sandbox.faults.clear()

        h.apply(desired)  # the re-run, with a normal client
        picture, live = canon(h.client, desired.app.id)
        from reconciler.api.live import fingerprint
        from reconciler.planning.plan import make_plan

        again = make_plan(desired, live, live_fingerprint=fingerprint(live))
        assert again.empty, [(a.op, a.address, [c.path for c in a.changes]) for a in again.actions]
        if picture != s.clean:
            raise AssertionError(f"live app differs from a clean run's: {_difference(picture, s.clean)[:1500]}")
        assert snapshot_bystanders(h.client, desired.app.id, in_app=s.in_app) == s.bystanders, \
            "a hand-made resource was touched"
        if s.user_meta is not None:
            assert user_metadata(h.client, desired.app.id, *s.meta_ids) == s.user_meta, "user metadata lost"
    finally:
        h.sandbox.close()


def _difference(got: Any, want: Any, path: str = "") -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        return "; ".join(_difference(got.get(k), want.get(k), f"{path}/{k}")
                         for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))
    return f"{path}: {got!r} != clean {want!r}"


@pytest.mark.parametrize("mode, when", MODES, ids=[f"{m}-{w}" for m, w in MODES])
@pytest.mark.parametrize("scenario", [f"{w}/{k}" for w, k in SCENARIOS])
def test_crash_at_every_request_then_rerun_converges(scenarios, scenario, mode, when, tmp_path, request):
    s = scenarios[scenario]
    failures = []
    for k in range(1, s.n_requests + 1):
        try:
            _run_case(s, k, mode, when, tmp_path / f"k{k}")
        except AssertionError as err:
            failures.append(f"k={k} {mode}/{when}: {err}")
    CASES_RUN[f"{scenario} {mode}/{when}"] = s.n_requests
    assert not failures, f"{len(failures)} of {s.n_requests} cases failed:\n" + "\n".join(failures[:10])


@pytest.mark.parametrize("mode, when", MODES, ids=[f"{m}-{w}" for m, w in MODES])
@pytest.mark.parametrize("scenario", [f"{w}/{k}" for w, k in PESSIMISTIC_SCENARIOS])
def test_crash_slice_under_the_pessimistic_sandbox_converges(pessimistic_scenarios, scenario, mode, when, tmp_path):
    """The same check with every quirk on, for a slice of the request indexes (1, 1+STRIDE, ...)
    so the suite stays fast: the readings the tool guards against must not break a re-run."""
    s = pessimistic_scenarios[scenario]
    ks = range(1, s.n_requests + 1, STRIDE)
    failures = []
    for k in ks:
        try:
            _run_case(s, k, mode, when, tmp_path / f"k{k}")
        except AssertionError as err:
            failures.append(f"k={k} {mode}/{when}: {err}")
    CASES_RUN[f"pessimistic:{scenario} {mode}/{when}"] = len(ks)
    assert not failures, f"{len(failures)} of {len(ks)} cases failed:\n" + "\n".join(failures[:10])


def test_zz_report_case_count(request):
    """Runs last in this module: prints how many (k, mode) cases ran."""
    if not CASES_RUN:
        pytest.skip("the matrix did not run (deselected)")
    total = sum(CASES_RUN.values())
    by_scenario: dict[str, int] = {}
    for key, n in CASES_RUN.items():
        name = key.split(" ")[0]
        by_scenario[name] = by_scenario.get(name, 0) + n
    line = ("crash-anywhere matrix: " + ", ".join(f"{k} {v}" for k, v in by_scenario.items())
            + f"; total {total} (k, mode) cases")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + line)
    print(line)
    assert total >= 3 * 4
