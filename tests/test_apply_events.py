"""Machine interfaces (issue 21, item 5): `apply --json` streams JSON lines (the plan, each action
started / finished / failed / deferred, retries, training waits, a summary), every line valid
under schemas/apply-events.schema.json; with `--json` an error is JSON on stdout as well; exit
code 3 for "applied, some parts deferred (training)"."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
AUTO = ROOT / "examples" / "auto-annotation" / "manifest.yaml"
PEOPLE = ROOT / "examples" / "people-synonyms" / "manifest.yaml"
THREE = Path(__file__).resolve().parent / "projects" / "three"
EVENTS = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "apply-events.schema.json").read_text()))
PLAN = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))


@pytest.fixture(autouse=True)
def embedded(tmp_path, monkeypatch):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI", "RECONCILER_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    monkeypatch.chdir(tmp_path)


def events(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = [json.loads(line) for line in out.splitlines()]  # stdout holds JSON lines only
    for event in lines:
        problems = [e.message for e in EVENTS.iter_errors(event)]
        assert not problems, (event, problems)
    return code, lines, err


def test_apply_streams_the_plan_each_action_and_a_summary(capsys):
    code, lines, err = events(capsys, "apply", PEOPLE, "--auto-approve", "--json")
    assert code == 0, err
    lease = [e for e in lines if e["type"].startswith("lease_")]  # the apply's lease, around its writes
    assert [e["type"] for e in lease] == ["lease_acquired", "lease_released"], lease
    assert lease[0]["lease"]["lease_id"] == lease[1]["lease"]["lease_id"] and lease[0]["lease"]["dataset_id"]
    assert lines[0]["type"] == "lease_acquired" and lines[-2]["type"] == "lease_released"
    lines = [e for e in lines if not e["type"].startswith("lease_")]
    assert lines[0]["type"] == "plan" and not list(PLAN.iter_errors(lines[0]["plan"]))
    plan = lines[0]["plan"]
    assert lines[-1]["type"] == "summary" and lines[-1]["result"] == "applied" and lines[-1]["exit_code"] == 0
    total = len(plan["actions"])
    started = [e["index"] for e in lines if e["type"] == "action_started"]
    finished = [e["index"] for e in lines if e["type"] == "action_finished"]
    assert sorted(started) == sorted(finished) == list(range(1, total + 1))
    for e in lines:  # each action starts before it finishes, and says what it is
        if e["type"] == "action_finished":
            first = next(i for i, x in enumerate(lines) if x["type"] == "action_started" and x["index"] == e["index"])
            assert first < lines.index(e)
            a = plan["actions"][e["index"] - 1]
            assert (e["op"], e["kind"], e["id"], e["total"]) == (a["op"], a["kind"], a["id"], total)
    assert len(lines[-1]["done"]) == total and lines[-1]["writes"] > 0
    assert "Apply complete" not in err  # the human progress stays on stderr, the closing line is the summary
    assert re.search(r"^\[1(-\d+)?/", err, re.M)  # a batch counts each action it carried: [1-3/13]

    code, lines, _ = events(capsys, "apply", PEOPLE, "--auto-approve", "--json")
    assert code == 0 and [e["type"] for e in lines] == ["plan", "summary"] and lines[-1]["result"] == "no_changes"


@pytest.mark.unlabelled  # no labelled inputs: the classifier cannot train
def test_deferred_training_is_exit_3_with_its_events(capsys):
    code, lines, err = events(capsys, "apply", AUTO, "--auto-approve", "--json")
    assert code == 3, err
    types = [e["type"] for e in lines]
    assert "error" not in types  # applied; some parts wait: no error
    assert types.count("training_not_ready") == 1 and "training_wait" in types
    deferred = {e["address"] for e in lines if e["type"] == "action_deferred"}
    assert deferred == {"workflow/auto-annotate", "app/park-activity"}
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["result"] == "deferred" and summary["exit_code"] == 3
    assert "cannot train yet" in summary["message"] and summary["not_done"]
    assert err.strip().splitlines()[-1].startswith("error: apply did not finish")  # the human line stays


def test_retries_are_events(capsys, monkeypatch, served_sandbox, sandbox_app, tmp_path):
    monkeypatch.setenv("CLARIFAI_API_BASE", served_sandbox)
    manifest = tmp_path / "m.yaml"
    manifest.write_text("app: {id: retry-app, description: retried}\n")
    # the plan reads the app with 5 GETs at once: the first answers HTTP 500 once, and its retry
    # is request 6; request 7 is the apply's PostApps, which answers HTTP 500 once too
    sandbox_app.faults.fail_request(1)
    sandbox_app.faults.fail_request(7)
    code, lines, err = events(capsys, "apply", manifest, "--auto-approve", "--json", "--rate-limit", "0")
    assert code == 0, err
    types = [e["type"] for e in lines]
    retries = [e for e in lines if e["type"] == "retry"]
    assert [(e["method"], e["http_status"], e["attempt"], e["reason"]) for e in retries] == [
        ("GET", 500, 1, "HTTP 500"), ("POST", 500, 1, "HTTP 500")]
    # the first plan is read before the app (and its lease) exist: both retries come before the
    # plan event, which shows the plan applied, made again under the lease
    assert types.index("retry") < len(types) - 1 - types[::-1].index("retry") < types.index("plan")
    assert retries[1]["path"] == "/v2/users/sandbox/apps" and 0 <= retries[1]["wait_s"] <= 20
    assert err.count("retrying (1/5)") == 2  # the human lines stay on stderr


def test_errors_are_json_on_stdout_with_json(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("app: {id: x}\nmodels: 3\n")
    for verb in ("plan", "drift"):
        code = main([verb, str(bad), "--json"])
        out, err = capsys.readouterr()
        assert code == 1 and err.startswith(f"{bad}:2:9:")  # the stderr line stays
        doc = json.loads(out)
        assert doc["format_version"] == 1 and doc["error"]["error_type"] == "ManifestError"
        assert doc["error"]["problems"][0]["line"] == 2
    code, lines, err = events(capsys, "apply", bad, "--json", "--auto-approve")
    assert code == 1 and [e["type"] for e in lines] == ["error", "summary"]
    assert lines[1]["result"] == "failed" and lines[1]["exit_code"] == 1
    code = main(["show", str(tmp_path / "missing.json"), "--json"])
    out, _ = capsys.readouterr()
    assert code == 1 and json.loads(out)["error"]["message"]


def test_a_stale_saved_plan_is_summarised_as_stale(capsys, tmp_path):
    assert main(["plan", str(PEOPLE), "--out", str(tmp_path / "p.json")]) == 0
    assert main(["apply", str(PEOPLE), "--auto-approve"]) == 0
    capsys.readouterr()
    code, lines, err = events(capsys, "apply", tmp_path / "p.json", "--json")
    assert code == 1 and "changed since the plan" in err
    assert lines[-2]["type"] == "error" and lines[-1]["result"] == "stale_plan"


def test_a_project_apply_streams_every_app_and_a_project_summary(capsys, tmp_path, monkeypatch):
    shutil.copytree(THREE, tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    code, lines, err = events(capsys, "apply", "--auto-approve", "--json", "--app", "people", "--app", "shelf-dev")
    assert code == 0, err
    assert all(e.get("app") in ("people", "shelf-dev") for e in lines[:-1])
    assert [e["app"] for e in lines if e["type"] == "plan"] == ["shelf-dev", "people"]
    per_app = [e for e in lines if e["type"] == "summary" and "app" in e]
    assert sorted(e["app"] for e in per_app) == ["people", "shelf-dev"] and all(e["result"] == "applied" for e in per_app)
    last = lines[-1]
    assert last["type"] == "summary" and "app" not in last and last["result"] == "applied"
    assert last["apps"] == [{"name": "shelf-dev", "result": "applied", "exit_code": 0},
                            {"name": "people", "result": "applied", "exit_code": 0}]


def test_apply_progress_counts_every_action_once_in_order(tmp_path, monkeypatch, capsys):
    """[1-3/13] for a batch of three, then [4/13]: the numbers never jump and never repeat (issue 23)."""
    import re

    from reconciler import cli

    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.chdir(tmp_path)
    manifest = Path(__file__).resolve().parent.parent / "examples" / "people-synonyms" / "manifest.yaml"
    assert cli.main(["apply", str(manifest), "--auto-approve"]) == 0
    err = capsys.readouterr().err
    spans = [(int(a), int(b or a), int(n)) for a, b, n in re.findall(r"^\[(\d+)(?:-(\d+))?/(\d+)\] ", err, re.M)]
    assert spans and spans[0][0] == 1
    for (_, end, total), (start, _, _) in zip(spans, spans[1:]):
        assert start == end + 1, err
    assert spans[-1][1] == spans[-1][2]
