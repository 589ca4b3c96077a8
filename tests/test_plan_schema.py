"""The published schemas (issue 21, item 5): schemas/plan.schema.json holds for every real plan
(`plan --json`, `show --json`, every golden case, a project's plans), and refuses what is not one;
schemas/project.schema.json is the packaged one; the example policy parses when OPA or conftest
is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import main
from reconciler.core.errors import PlanError
from reconciler.manifest.load import load
from reconciler.planning.document import plan_document
from reconciler.planning.plan import make_plan
from reconciler.planning.serialize import state_from_dict

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
CASES = Path(__file__).parent / "cases"
EXAMPLES = sorted((ROOT / "examples").glob("*/manifest.yaml"))
PLAN = json.loads((SCHEMAS / "plan.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(PLAN)


def problems(doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


@pytest.mark.parametrize("name", ["plan", "apply-events", "project"])
def test_each_schema_is_a_valid_2020_12_schema(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "desired.yaml").exists()))
def test_every_golden_plan_is_valid(case):
    live_doc = json.loads((CASES / case / "live.json").read_text())
    targets_file = CASES / case / "targets.txt"
    targets = [t for t in targets_file.read_text().split("\n") if t.strip()] if targets_file.exists() else []
    try:
        plan = make_plan(load(CASES / case / "desired.yaml"), state_from_dict(live_doc) if live_doc else None,
                         live_fingerprint="f", targets=targets, endpoint="https://api.clarifai.com")
    except PlanError:  # a case whose planning must fail has no plan to check
        assert (CASES / case / "expected_error.txt").exists()
        return
    assert problems(plan_document(plan)) == []


@pytest.mark.parametrize("manifest", EXAMPLES, ids=lambda p: p.parent.name)
def test_plan_and_show_json_of_the_examples_are_valid(manifest, tmp_path, monkeypatch, capsys):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    assert main(["plan", str(manifest), "--json", "--out", str(tmp_path / "p.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert problems(doc) == []
    models = {m["id"]: m for m in doc["desired"]["models"]}  # the desired state in full: policies read it
    assert all("config" in m and "type" in m for m in models.values())
    assert main(["show", str(tmp_path / "p.json"), "--json"]) == 0
    assert problems(json.loads(capsys.readouterr().out)) == []


def test_a_projects_plans_are_valid(tmp_path, monkeypatch, capsys):
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(tmp_path / "sandbox.sqlite"))
    shutil.copytree(Path(__file__).parent / "projects" / "three", tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    assert main(["plan", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["apps"]) == 3
    for app in doc["apps"]:
        assert problems(app["plan"]) == []


def test_the_schema_refuses_what_is_not_a_plan():
    good = plan_document(make_plan(load(EXAMPLES[0]), None, endpoint="https://api.clarifai.com"))
    assert problems(good) == []
    broken = json.loads(json.dumps(good))
    del broken["desired"]
    broken["actions"][0]["op"] = "explode"
    broken["summary"]["create"] = "many"
    found = problems(broken)
    assert any("'desired' is a required property" in p for p in found)
    assert any(p.startswith("actions/0/op") for p in found)
    assert any(p.startswith("summary/create") for p in found)


def test_the_published_project_schema_is_the_packaged_one():
    assert (SCHEMAS / "project.schema.json").read_bytes() == (ROOT / "reconciler" / "project.schema.json").read_bytes()
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "project.schema.json").read_text()))
    import yaml

    example = yaml.safe_load((Path(__file__).parent / "projects" / "three" / "reconciler.yaml").read_text())
    assert list(validator.iter_errors(example)) == []


def test_the_example_policy_parses_where_a_policy_tool_is_installed(tmp_path):
    policy = ROOT / "examples" / "policy" / "plan.rego"
    text = policy.read_text()
    assert "package main" in text and "input.desired.models" in text
    for field in ("app", "actions", "desired"):  # the policy reads only what the schema requires
        assert field in PLAN["required"]
    opa, conftest = shutil.which("opa"), shutil.which("conftest")
    if opa:
        done = subprocess.run([opa, "check", "--v1-compatible", str(policy)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    elif conftest:
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps(plan_document(make_plan(load(EXAMPLES[0]), None))))
        done = subprocess.run([conftest, "test", "--parser", "json", "--policy", str(policy.parent), str(plan)],
                              capture_output=True, text=True, timeout=60)
        assert "rego_parse_error" not in done.stdout + done.stderr, done.stdout + done.stderr
    else:
        pytest.skip("neither opa nor conftest is installed: the policy's syntax is not checked here")


def test_the_events_schema_names_the_events_and_results_the_code_emits():
    from reconciler.apply.events import EVENT_FIELDS, LEASE_EVENTS, RESULTS

    schema = json.loads((SCHEMAS / "apply-events.schema.json").read_text())
    assert schema["properties"]["type"]["enum"] == list(EVENT_FIELDS)
    branches = {b["if"]["properties"]["type"]["const"]: b["then"] for b in schema["allOf"]}
    assert set(branches) == set(EVENT_FIELDS)
    for event, fields in EVENT_FIELDS.items():
        assert set(branches[event]["properties"]) == set(fields), event
    assert branches["summary"]["properties"]["result"]["enum"] == list(RESULTS)
    assert set(LEASE_EVENTS) <= set(EVENT_FIELDS) and "lease_acquired" in LEASE_EVENTS
