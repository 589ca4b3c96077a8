"""Review safety (issue 11): fail-closed credentials, the endpoint in every plan and saved plan,
`apply PLAN` refusing another endpoint/user/app or a malformed file, `show PLAN`, and where the
embedded sandbox lives. Through `cli.main`, on the embedded sandbox."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.planning.serialize import bound_fingerprint

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


def saved_plan(capsys, tmp_path) -> Path:
    out = tmp_path / "plan.json"
    code, _, err = run(capsys, "plan", AUTO, "--out", out)
    assert code == 0, err
    return out


def one_line_error(err: str, needle: str) -> None:
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


# --- fail-closed credentials ---------------------------------------------------------------------

@pytest.mark.parametrize("env, flag", [({"CI": "true"}, []), ({"CI": "1"}, []),
                                       ({"RECONCILER_REQUIRE_CREDENTIALS": "1"}, []),
                                       ({}, ["--require-credentials"])])
@pytest.mark.parametrize("verb", [["plan", AUTO], ["apply", AUTO, "--auto-approve"], ["drift", AUTO],
                                  ["export", "--app", "x"]])
def test_missing_pat_is_an_error_in_ci_or_when_required(capsys, monkeypatch, tmp_path, env, flag, verb):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, *verb, *flag)
    assert code == 1 and out == ""
    one_line_error(err, "no Clarifai credentials")
    assert "embedded local sandbox is not used" in err and "note:" not in err
    assert not (tmp_path / "sandbox.sqlite").exists()  # nothing was created or read


@pytest.mark.parametrize("value", ["", "0"])
def test_empty_ci_or_zero_requirement_keeps_the_sandbox(capsys, monkeypatch, value):
    monkeypatch.setenv("CI", "")  # NO_COLOR-style: only a non-empty CI counts
    monkeypatch.setenv("RECONCILER_REQUIRE_CREDENTIALS", value)
    code, _, err = run(capsys, "plan", AUTO)
    assert code == 0 and "embedded local sandbox" in err


def test_ci_with_a_served_sandbox_named_explicitly_still_works(capsys, monkeypatch, served_sandbox):
    monkeypatch.setenv("CI", "true")
    code, out, err = run(capsys, "plan", AUTO, "--api-base", served_sandbox)
    assert code == 0, err
    assert f"Endpoint: {served_sandbox}" in out


# --- the endpoint in every plan ------------------------------------------------------------------

def test_every_plan_format_names_endpoint_and_user(capsys, tmp_path):
    where = f"local sandbox at {tmp_path / 'sandbox.sqlite'}"
    _, text, _ = run(capsys, "plan", AUTO)
    assert text.splitlines()[:2] == ["Plan for app park-activity (user sandbox):", f"Endpoint: {where}"]
    _, md, _ = run(capsys, "plan", AUTO, "--markdown")
    assert md.splitlines()[2] == f"Endpoint: `{where}`, user `sandbox`"
    _, js, _ = run(capsys, "plan", AUTO, "--json")
    doc = json.loads(js)
    assert doc["format_version"] == 1 and doc["endpoint"] == where and doc["app"]["user_id"] == "sandbox"
    saved = json.loads(saved_plan(capsys, tmp_path).read_text())
    assert saved["endpoint"] == where and saved["user_id"] == "sandbox" and saved["format_version"] == 3
    assert saved["fingerprint"] == bound_fingerprint(where, "sandbox", "park-activity", saved["live_fingerprint"])


# --- apply PLAN: where it was made, or not at all -------------------------------------------------

def test_saved_plan_is_refused_against_another_endpoint(capsys, tmp_path, monkeypatch, served_sandbox):
    plan = saved_plan(capsys, tmp_path)
    code, _, err = run(capsys, "apply", plan, "--api-base", served_sandbox)
    assert code == 1
    one_line_error(err, f"was made against local sandbox at {tmp_path / 'sandbox.sqlite'}, but this apply "
                   f"would write to {served_sandbox}")
    # and in CI with no PAT it is refused before anything is opened
    monkeypatch.setenv("CI", "true")
    code, _, err = run(capsys, "apply", plan)
    assert code == 1 and "no Clarifai credentials" in err


def test_saved_plan_is_refused_for_another_user(capsys, tmp_path):
    plan = saved_plan(capsys, tmp_path)
    code, _, err = run(capsys, "apply", plan, "--user", "mallory")
    assert code == 1
    one_line_error(err, "was made for user sandbox, not mallory")


def test_saved_plan_uses_its_own_sandbox_wherever_it_is_applied(capsys, tmp_path, monkeypatch):
    plan = saved_plan(capsys, tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(other / "other.sqlite"))
    code, out, err = run(capsys, "apply", plan)
    assert code == 0, err
    assert "the saved plan's sandbox" in err and not (other / "other.sqlite").exists()
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    assert run(capsys, "plan", AUTO, "--detailed-exitcode")[0] == 0


def _rewrite(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _rebind(doc) -> None:
    doc["fingerprint"] = bound_fingerprint(doc["endpoint"], doc["user_id"], doc["app_id"], doc["live_fingerprint"])


def test_plan_whose_app_id_differs_from_what_it_writes_is_refused(capsys, tmp_path):
    """The hole: top-level app_id names a fresh app (fingerprint "") while the desired state and
    actions write to another app; before, the staleness check passed and apply wrote elsewhere."""
    plan = saved_plan(capsys, tmp_path)

    def swap(doc):
        doc["app_id"] = "some-other-app"
        _rebind(doc)  # even with a consistent binding
    _rewrite(plan, swap)
    code, _, err = run(capsys, "apply", plan)
    assert code == 1
    one_line_error(err, "is not a usable saved plan: its desired app is 'park-activity' but the plan is "
                   "for app 'some-other-app'")
    assert run(capsys, "plan", AUTO, "--detailed-exitcode")[0] == 2  # nothing was written


def test_app_action_for_another_app_is_refused(capsys, tmp_path):
    plan = saved_plan(capsys, tmp_path)

    def foreign(doc):
        app_action = next(a for a in doc["actions"] if a["kind"] == "app")
        app_action["id"] = "victim"
    _rewrite(plan, foreign)
    code, _, err = run(capsys, "apply", plan)
    assert code == 1
    one_line_error(err, "writes to another app than 'park-activity'")


def test_edited_endpoint_without_a_matching_fingerprint_is_refused(capsys, tmp_path):
    plan = saved_plan(capsys, tmp_path)
    _rewrite(plan, lambda doc: doc.update(endpoint="https://api.clarifai.com"))
    code, _, err = run(capsys, "apply", plan)
    assert code == 1
    one_line_error(err, "fingerprint does not match its endpoint, user, app")


def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize("mangle, needle", [
    (lambda t: t[: len(t) // 2], "not valid JSON (truncated?)"),
    (lambda t: t.replace('"actions": [', '"actions": [' + _deep(100000) + ",", 1), "nested too deeply"),
    (lambda t: t.replace('"notes": []', '"notes": [' + _deep(80) + "]", 1), "nested deeper than 64"),
    (lambda t: json.dumps({**json.loads(t), "actions": 5}), "'actions' has the wrong type (int)"),
    (lambda t: json.dumps({**json.loads(t), "actions": [5]}), "'actions' should be a list of objects"),
    (lambda t: json.dumps({**json.loads(t), "user_id": ["x"]}), "'user_id' has the wrong type (list)"),
    (lambda t: json.dumps({**json.loads(t), "notes": [{}]}), "notes[0] should be a str"),
    (lambda t: t.replace('"op": "create"', '"op": "explode"', 1), "unknown action op 'explode'"),
    (lambda t: t.replace('"kind": "concept"', '"kind": "dragon"', 1), "malformed action"),
    (lambda t: t.replace('"format_version": 3', '"format_version": 1', 1), "format_version 1"),
    # format 2 stored no live state: its notes and configuration words cannot be checked
    (lambda t: t.replace('"format_version": 3', '"format_version": 2', 1), "format_version 2"),
])
def test_malformed_saved_plan_is_one_line(capsys, tmp_path, mangle, needle):
    plan = saved_plan(capsys, tmp_path)
    plan.write_text(mangle(plan.read_text()))
    for verb in (["apply", plan], ["show", plan]):
        code, out, err = run(capsys, *verb)
        assert code == 1 and out == ""
        one_line_error(err, f"{plan} is not a usable saved plan: ")
        assert needle in err, err


def test_wrongly_typed_resource_fields_are_refused(capsys, tmp_path):
    plan = saved_plan(capsys, tmp_path)

    def bad(doc):
        doc["desired"]["concepts"][0]["id"] = 7
    _rewrite(plan, bad)
    code, _, err = run(capsys, "apply", plan)
    assert code == 1
    one_line_error(err, "desired.concepts[0].id should be a str")


@pytest.mark.parametrize("extra, named", [(["-f", AUTO], "-f"), (["--var", "x=1"], "--var"),
                                         (["--var-file", "v.yaml"], "--var-file"),
                                         (["--target", "model/x"], "--target")])
def test_flags_that_do_not_apply_to_a_saved_plan_are_refused(capsys, tmp_path, extra, named):
    plan = saved_plan(capsys, tmp_path)
    code, _, err = run(capsys, "apply", plan, *extra)
    assert code == 1
    one_line_error(err, f"{named} cannot be combined with a saved plan")


# --- show ---------------------------------------------------------------------------------------

def test_show_prints_a_saved_plan_like_plan_did_without_connecting(capsys, tmp_path, monkeypatch):
    _, text, _ = run(capsys, "plan", AUTO)
    _, js, _ = run(capsys, "plan", AUTO, "--json")
    _, md, _ = run(capsys, "plan", AUTO, "--markdown")
    plan = saved_plan(capsys, tmp_path)
    os.remove(tmp_path / "sandbox.sqlite")
    monkeypatch.setenv("CI", "true")  # no credentials and CI: any connection would fail
    assert run(capsys, "show", plan) == (0, text, "")
    assert run(capsys, "show", plan, "--json") == (0, js, "")
    assert run(capsys, "show", plan, "--markdown") == (0, md, "")
    assert not (tmp_path / "sandbox.sqlite").exists()


def test_show_refuses_a_manifest_and_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "show", AUTO)
    assert code == 1
    one_line_error(err, "is not a usable saved plan: not a plan file")
    code, _, err = run(capsys, "show", tmp_path / "nope.json")
    assert code == 1 and err.count("\n") == 1


# --- where the embedded sandbox lives -----------------------------------------------------------

def test_sandbox_is_found_upwards_from_the_manifest_like_git(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("RECONCILER_SANDBOX_DB")
    repo = tmp_path / "repo"
    (repo / "clarifai" / "apps").mkdir(parents=True)
    manifest = repo / "clarifai" / "apps" / "manifest.yaml"
    shutil.copy(AUTO, manifest)
    # none anywhere: a new one next to the manifest, and the note says so
    monkeypatch.chdir(repo)
    code, _, err = run(capsys, "apply", manifest, "--auto-approve")
    assert code == 0, err
    here = repo / "clarifai" / "apps" / ".reconciler" / "sandbox.sqlite"
    assert here.exists() and f"data in {here}; a new .reconciler/ next to the manifest" in err
    # from a subfolder, the same sandbox: nothing to do
    monkeypatch.chdir(repo / "clarifai")
    code, out, err = run(capsys, "plan", "apps/manifest.yaml", "--detailed-exitcode")
    assert code == 0 and "No changes" in out
    assert "the .reconciler/ next to the manifest" in err
    # a .reconciler/ higher up is used for a manifest below it that has none of its own
    (repo / ".reconciler").mkdir()
    other = repo / "clarifai" / "other" / "manifest.yaml"
    other.parent.mkdir()
    shutil.copy(AUTO, other)
    code, _, err = run(capsys, "plan", other)
    assert code == 0 and f"data in {repo / '.reconciler' / 'sandbox.sqlite'}; the nearest .reconciler/ above the manifest" in err
    # every verb that connects for a manifest looks beside it, whatever the current directory
    monkeypatch.chdir(tmp_path)
    for verb, *rest in (("drift",), ("record", "--predictions", tmp_path / "p.jsonl")):
        code, _, err = run(capsys, verb, manifest, *rest)
        assert code == 0, err
        assert f"data in {here}; the .reconciler/ next to the manifest" in err, (verb, err)
    assert not (tmp_path / ".reconciler").exists()


# --- issue 20, finding 6: what show prints is what apply does, derived from verified content ------

REPOINT = """version: 1
app:
  id: repoint-app
  default_workflow: wf
concepts:
  - id: walker
models:
  - id: gt
    type: concept-thresholder
    comparator: GREATER_THAN
    thresholds:
      walker: {walker}
workflows:
  - id: wf
    nodes:
      - id: gt
        model: gt
"""


def _repoint_plan(capsys, tmp_path) -> tuple[Path, str]:
    """A saved plan repointing workflow wf from gt's 0.9 version back to its 0.5 one, and the text
    `plan` printed for it."""
    manifest = tmp_path / "m.yaml"  # one file, edited: one owner (the file's name) throughout
    for walker in ("0.5", "0.9"):
        manifest.write_text(REPOINT.format(walker=walker))
        code, _, err = run(capsys, "apply", manifest, "--auto-approve")
        assert code == 0, err
    manifest.write_text(REPOINT.format(walker="0.5"))
    out = tmp_path / "plan.json"
    code, text, err = run(capsys, "plan", manifest, "--out", out)
    assert code == 0 and "        thresholds.walker: 0.9 → 0.5\n" in text, text + err
    return out, text


def _edited(doc, where: str):
    if where == "version_changes":
        change = doc["actions"][0]["version_changes"][0]["changes"][0]
        assert change["after"] == 0.5
        change["after"] = 0.99
    elif where == "new note":
        doc["notes"].append("all good \x1b[2A\x1b[J")
    elif where == "note text":
        doc["notes"] = ["reviewed by security"]
    elif where == "reason":
        doc["actions"][0]["reason"] = "harmless"


@pytest.mark.parametrize("where", ["version_changes", "new note", "note text", "reason"])
def test_unverified_content_of_a_saved_plan_is_refused_by_show_and_apply(capsys, tmp_path, where):
    plan, _ = _repoint_plan(capsys, tmp_path)
    _rewrite(plan, lambda doc: _edited(doc, where))
    for verb in (["show", plan], ["show", plan, "--markdown"], ["show", plan, "--json"], ["apply", plan]):
        code, out, err = run(capsys, *verb)
        if "--json" in verb:  # no plan shown: only the error, as JSON (issue 21: errors on stdout too)
            assert code == 1 and set(json.loads(out)) == {"format_version", "error"}, (verb, out)
        else:
            assert code == 1 and out == "", (verb, out)
        one_line_error(err, f"{plan} is not a usable saved plan: its actions, their configuration changes or its "
                            "notes are not what its manifest and live state give (was it edited?)")
    code, out, _ = run(capsys, "plan", tmp_path / "m.yaml", "--detailed-exitcode")
    assert code == 2, "nothing was applied"


def test_show_prints_the_plan_derived_from_the_file_and_apply_does_exactly_that(capsys, tmp_path):
    plan, text = _repoint_plan(capsys, tmp_path)
    assert run(capsys, "show", plan) == (0, text, "")
    code, out, err = run(capsys, "apply", plan)
    assert code == 0 and out.startswith(text), out + err
    code, out, _ = run(capsys, "plan", tmp_path / "m.yaml", "--detailed-exitcode")
    assert code == 0, out


def test_a_live_state_edited_with_its_fingerprint_is_shown_as_derived_and_refused_by_apply(capsys, tmp_path):
    from reconciler.api.live import fingerprint
    from reconciler.planning.serialize import state_from_dict

    plan, _ = _repoint_plan(capsys, tmp_path)

    def lie(doc):  # the live 0.9 version "was" 0.3: the words would say 0.3 → 0.5
        for m in doc["live"]["models"]:
            for v in m["versions"]:
                if v["config"].get("thresholds", {}).get("walker") == pytest.approx(0.9):
                    v["config"]["thresholds"]["walker"] = 0.3
        doc["live_fingerprint"] = fingerprint(state_from_dict(doc["live"]))
        doc["actions"][0]["version_changes"][0]["changes"][0]["before"] = 0.3
        _rebind(doc)

    _rewrite(plan, lie)
    code, out, _ = run(capsys, "show", plan)
    assert code == 0 and "thresholds.walker: 0.3 → 0.5" in out  # consistent with the live state it carries
    code, out, err = run(capsys, "apply", plan)
    assert code == 1 and out == ""
    one_line_error(err, "changed since the plan")  # the real live app is not that one


def test_a_live_state_that_does_not_have_its_fingerprint_is_refused(capsys, tmp_path):
    plan, _ = _repoint_plan(capsys, tmp_path)
    _rewrite(plan, lambda doc: doc["live"]["app"].update(description="edited"))
    for verb in (["show", plan], ["apply", plan]):
        code, _, err = run(capsys, *verb)
        assert code == 1
        one_line_error(err, "its live state does not have its live fingerprint (was it edited?)")
