"""The `plan` / `apply` verbs through `cli.main`, on the embedded sandbox (no PAT, no API base):
output formats, exit codes, saved plans and their staleness check, confirmation, --target."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
AUTO = ROOT / "examples" / "auto-annotation" / "manifest.yaml"


@pytest.fixture(autouse=True)
def embedded(tmp_path, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_plan_detailed_exitcode_json_then_apply_then_clean(capsys):
    code, out, err = run(capsys, "plan", AUTO, "--json", "--detailed-exitcode")
    assert code == 2
    data = json.loads(out)
    assert data["format_version"] == 1
    assert {a["op"] for a in data["actions"]} == {"create", "set_default"}
    assert "embedded local sandbox" in err and "sandbox.sqlite" in err
    code, out, err = run(capsys, "apply", AUTO, "--auto-approve")
    assert code == 0, err
    assert "Apply complete" in out
    assert re.search(r"^\[\d+-\d+/18\] create \d+ concepts: done$", err, re.M)  # progress on stderr: a batch counts each action
    assert "created app park-activity (first: the app lease lives in the app)" in err
    code, out, _ = run(capsys, "plan", AUTO, "--detailed-exitcode")
    assert code == 0
    assert "No changes" in out


def test_plan_without_detailed_exitcode_is_zero_with_changes(capsys):
    code, out, _ = run(capsys, "plan", AUTO)
    assert code == 0
    assert "+ model/greater-than" in out
    assert "\x1b[" not in out  # never colour when stdout is not a terminal


def test_markdown_has_a_mermaid_diagram_of_the_workflow(capsys):
    code, out, _ = run(capsys, "plan", AUTO, "--markdown")
    assert code == 0
    assert "```mermaid" in out and "auto-annotate" in out


def test_apply_refuses_without_confirmation_and_writes_nothing(capsys, tmp_path):
    code, _, err = run(capsys, "apply", AUTO)  # pytest's stdin is not a terminal
    assert code == 1
    assert "--auto-approve" in err
    code, out, _ = run(capsys, "plan", AUTO, "--json")
    assert json.loads(out)["actions"][0]["op"] == "create"  # the app still does not exist


def test_saved_plan_applies_exactly_and_is_refused_once_stale(capsys, tmp_path):
    plan_file = tmp_path / "plan.json"
    code, _, err = run(capsys, "plan", AUTO, "--out", plan_file)
    assert code == 0 and plan_file.exists()
    stale = tmp_path / "stale.json"
    shutil.copy(plan_file, stale)
    code, out, err = run(capsys, "apply", plan_file)
    assert code == 0, err
    assert "Apply complete" in out
    # the live app has changed since stale.json was made: refused, one line, exit 1
    code, out, err = run(capsys, "apply", stale)
    assert code == 1
    assert "changed since the plan" in err
    assert len(err.strip().splitlines()[-1]) > 0


def test_saved_plan_refuses_extra_targets(capsys, tmp_path):
    plan_file = tmp_path / "plan.json"
    run(capsys, "plan", AUTO, "--out", plan_file)
    code, _, err = run(capsys, "apply", plan_file, "--target", "model/greater-than")
    assert code == 1 and "--target" in err


def test_target_limits_to_the_resource_and_its_dependencies(capsys):
    code, out, _ = run(capsys, "plan", AUTO, "--json", "--target", "model/greater-than")
    assert code == 0
    addresses = {f'{a["kind"]}/{a["id"]}' for a in json.loads(out)["actions"]}
    assert "model/greater-than" in addresses
    assert "workflow/auto-annotate" not in addresses
    assert "model/less-than" not in addresses
    assert {"concept/walker", "concept/runner"} <= addresses


def test_unknown_target_is_one_line_error(capsys):
    code, _, err = run(capsys, "plan", AUTO, "--target", "model/nope")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error:")


def test_invalid_manifest_makes_no_api_call(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("app: {id: x}\nmodels: [{id: m, type: concept-thresholder, comparator: BIGGER}]\n")
    code, _, err = run(capsys, "plan", bad, "--detailed-exitcode")
    assert code == 1
    assert f"{bad}:2:" in err
    assert not (tmp_path / "sandbox.sqlite").exists(), "no API was touched for an invalid manifest"


def test_missing_file_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "plan", tmp_path / "nope.yaml")
    assert code == 1
    assert len(err.strip().splitlines()) == 1


class _Terminal:
    """stdin standing in for a terminal where the user types `answer`."""

    def __init__(self, answer: str):
        import io

        self._buf = io.StringIO(answer)

    def isatty(self) -> bool:
        return True

    def readline(self, *a):
        return self._buf.readline(*a)

    def read(self, *a):
        return self._buf.read(*a)


@pytest.mark.parametrize("answer, applied", [("yes\n", True), ("no\n", False), ("y\n", False), ("", False)])
def test_interactive_confirmation_accepts_only_yes(capsys, monkeypatch, answer, applied):
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    code, out, err = run(capsys, "apply", AUTO)
    assert "Only 'yes' will be accepted" in err
    if applied:
        assert code == 0 and "Apply complete" in out
    else:
        assert code == 1 and "nothing was changed" in err
    code, _, _ = run(capsys, "plan", AUTO, "--detailed-exitcode")
    assert code == (0 if applied else 2)


# --- issue 20, finding 11: dropping default_workflow and the default workflow itself ---------------

_WITH_DEFAULT = """version: 1
app:
  id: dflt
  {default}
models:
  - id: gt
    type: concept-thresholder
    comparator: GREATER_THAN
    thresholds: {{}}
workflows:
{workflows}
"""
_WF = "  - id: {id}\n    nodes:\n      - id: gt\n        model: gt\n"


def test_dropping_the_default_workflow_and_default_workflow_converges_with_a_note(capsys, tmp_path):
    first = tmp_path / "m.yaml"  # one manifest, edited step by step: one owner (its file name)
    first.write_text(_WITH_DEFAULT.format(default="default_workflow: wf", workflows=_WF.format(id="wf")))
    code, _, err = run(capsys, "apply", first, "--auto-approve")
    assert code == 0, err
    dropped = first
    dropped.write_text(_WITH_DEFAULT.format(default="", workflows="  []"))
    for _ in range(2):  # no loop of "Run apply again to converge"
        code, out, err = run(capsys, "apply", dropped, "--auto-approve")
        assert code == 0, out + err
        assert "workflow/wf is no longer in the manifest but it is the app's default workflow: not deleted" in out
    code, out, _ = run(capsys, "plan", dropped, "--detailed-exitcode")
    assert code == 0, out
    # naming another default deletes the old one, in one apply
    other = first
    other.write_text(_WITH_DEFAULT.format(default="default_workflow: wf2", workflows=_WF.format(id="wf2")))
    code, out, err = run(capsys, "apply", other, "--auto-approve")
    assert code == 0, out + err
    assert "  - workflow/wf  delete" in out
    code, out, _ = run(capsys, "plan", other, "--detailed-exitcode")
    assert code == 0, out
