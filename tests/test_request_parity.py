"""The requests the tool sends are valid clarifai-grpc requests (tests/requestcheck.py, installed
session-wide by tests/conftest.py around `Client.request`).

- A representative workload -- the auto-annotation example applied fresh (with an extra model,
  workflow and relation), a threshold change, a removal, drift, export and `record` -- sends
  requests for every RPC in `WORKLOAD_RPCS`, and not one of them is a problem.
- The check cannot silently pass: an unknown body field, a wrong path, a bad query parameter, a
  body on a binding that declares none (and more) are each reported, through a real `Client`; and
  a test that sends one fails at teardown, unless it is marked `raw_requests`.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REQUESTS
from e2e import EXAMPLES, ROOT, Harness
from requestcheck import RequestChecker, bindings, build_message
from tune_synth import write_files

from reconciler.annotate.record import RecordOptions, record
from reconciler.api.client import Client
from reconciler.manifest.load import load_text
from reconciler.planning.drift import check_drift
from reconciler.planning.export import export_app
from reconciler.sandbox.app import DEFAULT_USER

MANIFEST = EXAMPLES / "auto-annotation" / "manifest.yaml"
CONCEPTS = ["walker", "runner", "bike_rider", "rollerblader", "stroller"]

#: What the workload below sends, as the checker recorded it on a real run (not a guess): every
#: RPC the tool uses to plan, apply (create, update, prune), check drift, export and record.
WORKLOAD_RPCS = {
    # reads: plan, drift, export
    "GetApp", "ListConcepts", "ListConceptRelations", "ListModels", "ListModelVersions", "ListWorkflows",
    # the review side: the example's collaborators and task (datasets: export reads every section)
    "ListCollaborators", "ListDatasets", "ListTasks",
    # apply
    "PostApps", "PatchApps", "PostConcepts", "PostConceptRelations", "PostModels", "PostModelVersions",
    "PatchModels", "PostWorkflows", "PatchWorkflows", "PostCollaborators", "PostTasks",
    # prune
    "DeleteWorkflow", "DeleteModel", "DeleteConceptRelations",
    # record
    "GetWorkflow", "ListInputs", "PostModelOutputs", "ListAnnotations",
}

EXTRA = """
concept_relations:
  - subject: runner
    predicate: hyponym
    object: walker
"""


def _with_threshold(state: Any, model_id: str, concept: str, value: float) -> Any:
    models = tuple(dataclasses.replace(m, config={**m.config, "thresholds": {**m.config["thresholds"], concept: value}})
                   if m.id == model_id else m for m in state.models)
    return dataclasses.replace(state, models=models)


def _described(state: Any, model_id: str, description: str) -> Any:
    models = tuple(dataclasses.replace(m, description=description) if m.id == model_id else m for m in state.models)
    return dataclasses.replace(state, models=models)


@pytest.mark.parametrize("quirks", [None, "pessimistic"], ids=["sandbox", "pessimistic"])
def test_the_tools_requests_are_valid_v2_requests(tmp_path: Path, quirks: str | None) -> None:
    """Normal and pessimistic sandbox (README, "Pessimistic sandbox mode"): the second makes the
    reader take other paths (a version's configuration from GetModelOutputInfo)."""
    preds, _labels = write_files(tmp_path, CONCEPTS, 12, 12, seed=3)
    h = Harness(tmp_path, predictions=str(preds), quirks=quirks)
    text = MANIFEST.read_text()
    desired = h.desired(MANIFEST)
    extra_model = dataclasses.replace(next(m for m in desired.models if m.id == "greater-than"), id="extra-thresholder")
    extra_flow = dataclasses.replace(desired.workflows[0], id="extra-flow")
    bigger = h.desired(MANIFEST, text + EXTRA)
    bigger = dataclasses.replace(bigger, models=bigger.models + (extra_model,),
                                 workflows=bigger.workflows + (extra_flow,))
    changed = _described(_with_threshold(desired, "greater-than", "walker", 0.95), "activity-mapper", "Maps")

    with REQUESTS.watching() as seen:
        h.apply(bigger)                   # fresh: app, concepts, relation, models, versions, workflows, default
        assert h.plan(bigger).empty
        h.apply(_with_threshold(bigger, "greater-than", "walker", 0.95))  # a new version, nodes repointed
        plan = h.apply(changed)           # prune: the extra workflow, model and relation go; a description
        assert {a.op for a in plan.actions} == {"delete", "update"}, [(a.op, a.address) for a in plan.actions]
        assert h.plan(changed).empty
        assert not check_drift(h.client, changed).drifted
        assert check_drift(h.client, desired).drifted  # the old threshold: drift, found by reads only
        exported, _warnings = export_app(h.client, desired.app.id, user_id=DEFAULT_USER)
        assert load_text(exported, "exported.yaml").app.id == desired.app.id
    workload = list(seen)

    # record needs inputs in the app: posted first (outside the workload's record), then recorded
    ids = [f"in-{i:06d}" for i in range(12)]
    h.client.post(h.base(desired.app.id) + "/inputs", {"inputs": [
        {"id": i, "data": {"image": {"url": f"https://samples.example/{i}.jpg"}}} for i in ids]})
    with REQUESTS.watching() as seen:
        summary = record(h.client, changed, RecordOptions(predictions=str(tmp_path / "out.jsonl"),
                                                          labels=str(tmp_path / "labels-out.jsonl"),
                                                          input_ids=tuple(ids)))
        assert summary.startswith("Recorded 12 prediction(s)")
    workload += seen

    problems = [c for c in workload if c.problems]
    assert not problems, problems
    assert all(c.rpc for c in workload)
    rpcs = {c.rpc for c in workload}
    expected = WORKLOAD_RPCS | ({"GetModelOutputInfo"} if quirks else set())
    assert rpcs == expected, (sorted(rpcs - expected), sorted(expected - rpcs))
    # the workload's requests all went through the wrapped Client.request (the sandbox saw them too)
    assert len(workload) == len([e for e in h.sandbox.request_log if "/_sandbox/" not in e.path]) - 1  # + PostInputs
    # the repeated query parameter (ListInputs ids=...) and a boolean one (ListAnnotations) were checked
    assert any(c.rpc == "ListInputs" for c in workload)
    h.sandbox.close()


# --- the check cannot silently pass -----------------------------------------------------------------

U = "/v2/users/u1/apps/a1"


@pytest.mark.parametrize("method, path, query, body, rpc, needle", [
    # an unknown body field
    ("POST", U + "/concepts", [], {"concepts": [{"id": "c", "colour": "red"}]}, "PostConcepts", 'no field named "colour"'),
    ("PATCH", "/v2/users/u1/apps", [], {"apps": [{"id": "a1", "default_workflow": "wf"}], "action": "overwrite"},
     "PatchApps", "Failed to parse default_workflow field"),
    # a wrong path, a verb the path is not bound for
    ("GET", U + "/modelz", [], None, "", "no V2 binding has this path"),
    ("POST", U + "/models/m1", [], {}, "", "no V2 binding for POST on this path"),
    ("GET", "/v2/users/u1/apps/a1/concepts/", [], None, "", "not a clean path"),
    ("PATCH", U + "/models/types", [], {}, "", "no V2 binding for PATCH"),
    # a bad query parameter: unknown, badly typed, repeated for a scalar, on a body binding
    ("GET", U + "/concepts", [("perpage", "10")], None, "ListConcepts", "'perpage': no such field"),
    ("GET", U + "/concepts", [("page", "two")], None, "ListConcepts", "'page'='two'"),
    ("GET", U + "/annotations", [("list_all_annotations", "yes")], None, "ListAnnotations", "not a boolean"),
    ("GET", U + "/concepts", [("page", "1"), ("page", "2")], None, "ListConcepts", "given 2 times"),
    ("POST", U + "/concepts", [("page", "1")], {"concepts": []}, "PostConcepts", "a gateway reads none"),
    ("GET", U + "/models/m1/versions", [("model_id", "m2")], None, "ListModelVersions", "names a field the path"),
    # a body on a binding that declares none
    ("DELETE", U + "/models/m1", [], {"ids": ["m1"]}, "DeleteModel", "this binding declares none"),
    ("DELETE", U + "/workflows/w1", [], {}, "DeleteWorkflow", "this binding declares none"),
    ("GET", U + "/concepts", [], {"page": 1}, "ListConcepts", "this binding declares none"),
    # wrong types and enum names in a body
    ("POST", U + "/models", [], {"models": [{"id": "m", "model_type_id": 3}]}, "PostModels", "model_type_id"),
    ("PATCH", U + "/workflows", [], {"workflows": [], "action": 7}, "PatchWorkflows", "action"),
    ("POST", U + "/concepts", [], {"concepts": [{"id": "c", "visibility": {"gettable": "SECRET"}}]}, "PostConcepts",
     "SECRET"),
    ("POST", U + "/concepts", [], [{"id": "c"}], "PostConcepts", "not an object"),
    # a body contradicting the path
    ("POST", U + "/models", [], {"user_app_id": {"app_id": "other"}, "models": []}, "PostModels",
     "the body sets user_app_id.app_id to 'other'"),
])
def test_each_kind_of_invalid_request_is_reported(method: str, path: str, query: list[tuple[str, str]], body: Any,
                                                  rpc: str, needle: str) -> None:
    seen = RequestChecker().check(method, path, query, body)
    assert seen.rpc == rpc
    assert any(needle in p for p in seen.problems), seen.problems


@pytest.mark.parametrize("method, path, query, body, rpc", [
    ("GET", U + "/concepts/relations", [], None, "ListConceptRelations"),  # literal beats {concept_id}
    ("GET", U + "/models/types", [], None, "ListModelTypes"),
    ("GET", U + "/inputs", [("ids", "a"), ("ids", "b"), ("page", "1")], None, "ListInputs"),
    ("GET", U + "/annotations", [("list_all_annotations", "True")], None, "ListAnnotations"),  # as the JSON channel sends it
    ("GET", U + "/models", [("dont_fetch_from_main", "true"), ("perPage", "5")], None, "ListModels"),  # JSON name
    ("DELETE", U + "/concepts/c1/relations", [], {"ids": ["r1"]}, "DeleteConceptRelations"),  # body: "*"
    ("DELETE", U + "/models/m%2F1", [], None, "DeleteModel"),  # percent-decoded segment
    ("POST", U + "/models/m1/versions", [], {}, "PostModelVersions"),
    ("GET", "/v2/concepts", [], None, "ListConcepts"),  # an app-less binding
])
def test_valid_requests_pass(method: str, path: str, query: list[tuple[str, str]], body: Any, rpc: str) -> None:
    seen = RequestChecker().check(method, path, query, body)
    assert (seen.rpc, seen.problems) == (rpc, ())


def test_the_table_is_every_binding_of_the_v2_service() -> None:
    from clarifai_grpc.grpc.api import service_pb2
    from google.api import annotations_pb2

    declared = 0
    for m in service_pb2.DESCRIPTOR.services_by_name["V2"].methods:
        rule = m.GetOptions().Extensions[annotations_pb2.http]
        declared += bool(rule.WhichOneof("pattern")) + len(rule.additional_bindings)
    assert len(bindings()) == declared > 400
    assert {b.body for b in bindings()} <= {"", "*"}  # no V2 binding names one field as its body today


def test_a_binding_whose_body_is_one_field() -> None:
    """No V2 binding names one field as its body today; should one appear, the JSON body is that
    field and the query parameters set the others."""
    post = next(b for b in bindings() if b.rpc == "PostConcepts" and "{user_app_id.app_id}" in b.template)
    one = dataclasses.replace(post, body="concepts")
    variables = {("user_app_id", "user_id"): "u1", ("user_app_id", "app_id"): "a1"}
    assert build_message(one, variables, [], [{"id": "c"}]) == []
    assert any("no field named" in p for p in build_message(one, variables, [], [{"id": "c", "colour": "red"}]))
    assert any("names a field the path or body binds" in p for p in build_message(one, variables, [("concepts", "x")], []))


def test_the_installed_check_sees_what_client_sends(tmp_path: Path) -> None:
    """Through a real `Client` (the wrapped `request`): the wire URL as httpx builds it, then
    forgotten so this test does not fail on purpose."""
    client = Client("http://api.test/", "pat", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"status": {"code": 10000}})), rate_limit=0)
    base = client.app_path("a1", "u1")
    with REQUESTS.watching() as seen:
        client.post(base + "/concepts", {"concepts": [{"id": "c", "colour": "red"}]})
        client.get(base + "/modelz")
        client.get(base + "/concepts", {"perpage": 10})
        client.delete(base + "/models/m1", {"ids": ["m1"]})
        client.get(base + "/inputs", {"ids": ["a", "b"], "page": 1})  # valid: a repeated field, repeated
        client.get(base + "/annotations", {"list_all_annotations": True})  # valid: httpx sends "true"
    REQUESTS.forget(seen)
    assert [bool(c.problems) for c in seen] == [True, True, True, True, False, False], seen
    assert [c.rpc for c in seen] == ["PostConcepts", "", "ListConcepts", "DeleteModel", "ListInputs", "ListAnnotations"]
    assert all(c.test.endswith("test_the_installed_check_sees_what_client_sends") for c in seen)


def test_a_test_sending_an_invalid_request_fails_unless_marked(tmp_path: Path) -> None:
    """conftest's teardown check, in a pytest run of its own: the unmarked test errors at
    teardown naming the request and the problem; the `raw_requests` one passes."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import httpx, pytest
        from reconciler.api.client import Client

        def send():
            c = Client("http://api.test", "pat", rate_limit=0, transport=httpx.MockTransport(
                lambda r: httpx.Response(200, json={"status": {"code": 10000}})))
            c.post("/v2/users/u/apps/a/concepts", {"concepts": [{"id": "c", "colour": "red"}]})

        def test_unmarked():
            send()

        @pytest.mark.raw_requests
        def test_marked():
            send()
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), "test_probe.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 passed, 1 error" in out, out  # test_unmarked passes its call, then errors at teardown
    assert "ERROR at teardown of test_unmarked" in out and "ERROR at teardown of test_marked" not in out, out
    assert 'POST /v2/users/u/apps/a/concepts [PostConcepts]' in out and 'no field named "colour"' in out, out
