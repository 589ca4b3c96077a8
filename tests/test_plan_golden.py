"""Golden plan cases: tests/cases/<name>/ holds desired.yaml (a manifest), live.json (a serialized
live State, or null when the app does not exist), optionally targets.txt (one KIND/ID a line), and
the expected outputs: expected.json (`plan_to_dict`), expected.txt (`render_text`), expected.md
(`render_markdown`), or expected_error.txt when planning must fail.

`UPDATE_GOLDEN=1 pytest tests/test_plan_golden.py` rewrites the expected files; review them by eye
before committing (they must be right, not merely what the code printed). The inputs are made by
tests/cases/make_inputs.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.core.errors import PlanError
from reconciler.manifest.load import load
from reconciler.planning.plan import make_plan
from reconciler.planning.render import plan_to_dict, render_markdown, render_text
from reconciler.planning.serialize import state_from_dict

CASES = Path(__file__).parent / "cases"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "desired.yaml").exists())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FINGERPRINT = "golden-live-fingerprint"
#: the endpoint every golden plan names in its header (plans record where they were made)
ENDPOINT = "https://api.clarifai.com"


def _check(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual)
        return
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(), f"{path} differs (UPDATE_GOLDEN=1 regenerates; review the diff)"


def test_there_are_at_least_ten_cases():
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_golden_case(name: str) -> None:
    case = CASES / name
    desired = load(case / "desired.yaml")
    live_doc = json.loads((case / "live.json").read_text())
    live = state_from_dict(live_doc) if live_doc is not None else None
    targets_file = case / "targets.txt"
    targets = targets_file.read_text().split("\n") if targets_file.exists() else []
    targets = [t for t in targets if t.strip()]
    try:
        plan = make_plan(desired, live, live_fingerprint=FINGERPRINT, targets=targets, endpoint=ENDPOINT)
    except PlanError as err:
        _check(case / "expected_error.txt", str(err) + "\n")
        return
    assert not (case / "expected_error.txt").exists() or UPDATE, "expected a PlanError"
    doc = plan_to_dict(plan)
    _check(case / "expected.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    _check(case / "expected.txt", render_text(doc))
    _check(case / "expected.md", render_markdown(doc, plan))
    # the text is rendered from the JSON: a JSON round trip renders the same
    assert render_text(json.loads(json.dumps(doc))) == render_text(doc)


@pytest.mark.parametrize("quirks", [None, "pessimistic"], ids=["sandbox", "pessimistic"])
@pytest.mark.parametrize("name", NAMES)
def test_golden_manifest_applies_to_the_sandbox_and_converges(name: str, quirks: str | None, tmp_path) -> None:
    """DESIGN's rule: every golden case's manifest is also applied to a real (sandbox) app, and
    the plan after it is empty -- on the normal sandbox and on the pessimistic one (every quirk:
    README, "Pessimistic sandbox mode"), and a second apply there makes no write."""
    from e2e import Harness

    h = Harness(tmp_path, quirks=quirks)
    desired = h.desired(CASES / name / "desired.yaml")
    h.apply(desired)
    after = h.plan(desired)
    assert after.empty, [(a.op, a.address, a.changes) for a in after.actions]
    h.clear_log()
    h.apply(desired)
    assert h.writes() == [], h.writes()
