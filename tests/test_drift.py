"""`reconciler drift`: read-only (only GETs in the sandbox's request log), field by field, exit
codes 0 clean / 2 drift / 1 error, `--json`."""

from __future__ import annotations

import json

import pytest
from e2e import EXAMPLES, Harness

from reconciler import cli
from reconciler.planning import drift

MANIFEST = EXAMPLES / "people-synonyms" / "manifest.yaml"


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path)


def test_no_drift_after_apply_and_only_reads(h):
    desired = h.desired(MANIFEST)
    h.apply(desired)
    h.clear_log()
    report = drift.check_drift(h.client, desired)
    assert not report.drifted
    assert h.log() and h.writes() == []
    data = drift.report_to_dict(report)
    assert data["drift"] is False and data["actions"] == []
    assert "none; the app matches" in drift.render_text(data)


def test_out_of_band_change_is_reported_field_by_field_without_writing(h):
    desired = h.desired(MANIFEST)
    h.apply(desired)
    base = h.base(desired.app.id)
    c = desired.concepts[0]
    h.client.patch(f"{base}/concepts", {"concepts": [{"id": c.id, "name": "renamed"}], "action": "overwrite"})
    h.clear_log()
    report = drift.check_drift(h.client, desired)
    assert h.writes() == []
    assert report.drifted
    data = drift.report_to_dict(report)
    change = next(a for a in data["actions"] if a["id"] == c.id)
    assert change["op"] == "update"
    assert change["changes"] == [{"path": "name", "before": "renamed", "after": c.name}]
    text = drift.render_text(data)
    assert f'name: live "renamed", manifest "{c.name}"' in text
    assert "1 resource(s) differ" in text


def test_missing_app_is_drift(h):
    report = drift.check_drift(h.client, h.desired(MANIFEST))
    assert report.drifted and report.plan.actions[0].op == "create"
    assert h.writes() == []


def test_cli_exit_codes_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    path = str(MANIFEST)
    assert cli.main(["drift", path]) == 2  # the app does not exist yet
    assert cli.main(["apply", path, "--auto-approve"]) == 0
    capsys.readouterr()
    assert cli.main(["drift", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drift"] is False and out["format_version"] == 1
    # drift after an out-of-band change, as JSON
    bad = tmp_path / "changed.yaml"
    bad.write_text(MANIFEST.read_text().replace("description:", "description: changed", 1))
    rc = cli.main(["drift", str(bad), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 2 and data["drift"] is True
    assert any(c["path"] == "description" for a in data["actions"] for c in a["changes"])
    # errors: exit 1, one line, no traceback
    assert cli.main(["drift", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert "cannot read manifest" in err and "Traceback" not in err
