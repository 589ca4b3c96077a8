"""Issue 19's confirmed behaviours of today's Clarifai API, one regression test (or more) each: every
test here failed on the code before its fix (docs/parity.md, "Confirmed and fixed", has the table).

1. PostModels creates a model and never a version, for every type: apply posts each model bare,
   then PostModelVersions, and pins the version that answer names; a model with no version at all
   reads, plans, exports, drifts and converges.
2. Concept ids are at most 32 characters.
3. Workflow node ids are not API ids (dots and the like are fine).
4. A nested metadata change converges (PATCH merge deep-merges).
9. Training statuses 21351-21353 count as trained; a version read answered 99009 is asked again.
12. Workflow ids may be 36+ characters (uuid4): no note, no quirk.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES, SECRET_PAT, Harness

from reconciler.api.client import Client
from reconciler.api.codecs import ModelCodec
from reconciler.api.transport import sandbox_transport
from reconciler.apply.models import INTERNAL_RETRIES, stale_metadata
from reconciler.apply.scheduler import apply_plan
from reconciler.core.errors import ApiError, ApplyError, ManifestError
from reconciler.core.state import MARKER_KEY, Model, ModelVersion, make_marker
from reconciler.manifest.convert import convert_data
from reconciler.manifest.load import load_text
from reconciler.manifest.yamlload import load_yaml
from reconciler.planning.drift import check_drift, render_text, report_to_dict
from reconciler.planning.export import export_app
from reconciler.planning.plan import make_plan
from reconciler.sandbox.app import DEFAULT_USER
from reconciler.sandbox.wire import merge, remove

PARK = EXAMPLES / "auto-annotation" / "manifest.yaml"


class Recording(httpx.BaseTransport):
    """The sandbox's transport, recording each request's (method, path, JSON body) and answering
    some requests itself: `answer(request) -> httpx.Response | None` (None: let it through)."""

    def __init__(self, h: Harness, answer: Callable[[httpx.Request], httpx.Response | None] = lambda _r: None):
        self.inner = sandbox_transport(h.sandbox)
        self.answer = answer
        self.seen: list[tuple[str, str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, request.url.path, body))
        return self.answer(request) or self.inner.handle_request(request)


def _client(h: Harness, transport: httpx.BaseTransport) -> Client:
    return Client("http://sandbox.local", SECRET_PAT, user_id=DEFAULT_USER, transport=transport, rate_limit=0,
                  max_retries=0)


# --- 1. PostModels makes no version ------------------------------------------------------------------


def test_every_model_is_posted_bare_and_workflows_pin_what_post_model_versions_returned(tmp_path: Path) -> None:
    """Before: operator models went in with `output_info` inside PostModels and the answer's
    `model.model_version.id` was pinned; on today's API (and sandbox) that id is empty, so
    PostWorkflows failed with MODEL_DOES_NOT_EXIST."""
    h = Harness(tmp_path)
    rec = Recording(h)
    desired = h.desired(PARK)
    apply_plan(_client(h, rec), h.plan(desired), poll_s=0.01)
    base = h.base(desired.app.id)
    posted = [b for m, p, b in rec.seen if m == "POST" and p == f"{base}/models"]
    assert len(posted) == len(desired.models)
    for body in posted:
        (model,) = body["models"]
        assert "output_info" not in model and "model_version" not in model, model  # bare, every type
    returned: dict[str, str] = {}
    for m in desired.models:
        answers = h.client.list_all(f"{base}/models/{m.id}/versions", "model_versions")
        assert len(answers) == 1, m.id  # the one PostModelVersions made
        returned[m.id] = answers[0]["id"]
    live = h.live(desired.app.id, desired)
    assert live is not None
    pins = {n.model.id: n.model.version for w in live.workflows for n in w.nodes if not n.model.external}
    assert pins and all(pins[mid] == returned[mid] for mid in pins)
    assert h.plan(desired).empty


def _bare_model(h: Harness, app_id: str, m: Model) -> None:
    """A managed model with no version, as an apply interrupted between PostModels and
    PostModelVersions leaves it (or a model a person made in the portal and never configured)."""
    h.client.post(h.base(app_id) + "/models", {"models": [ModelCodec.to_api(m)]})


THRESHOLDER_APP = textwrap.dedent("""\
    app: {id: bare}
    concepts:
      - {id: dog}
    models:
      - {id: gt, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {dog: 0.7}}
      - {id: writer, type: annotation-writer, annotation_status: SUCCESS}
    workflows:
      - id: flow
        nodes:
          - {id: gt, model: gt}
          - {id: write, model: writer, inputs: [gt]}
    """)


def test_a_model_with_no_version_reads_plans_drifts_exports_and_converges(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    desired = h.desired("bare.yaml", THRESHOLDER_APP)
    h.apply(dataclasses.replace(desired, models=(), workflows=()))  # the app and its concept
    for m in desired.models:
        _bare_model(h, "bare", m)
    live = h.live("bare", desired)
    assert live is not None
    for m in live.models:
        assert (m.config, m.version_id, m.versions, m.managed) == ({}, None, (), True)
    plan = h.plan(desired)
    ops = sorted((a.op.value, a.address) for a in plan.actions)
    assert ops == [("create", "workflow/flow"), ("new_version", "model/gt"), ("new_version", "model/writer")]
    drift = report_to_dict(check_drift(h.client, desired))
    assert drift["drift"] is True and "model/gt" in render_text(drift)
    text, warnings = export_app(h.client, "bare", user_id=DEFAULT_USER)
    assert any("model gt has no version" in w for w in warnings)
    exported = load_text(text, "exported.yaml")  # a valid manifest
    assert {m.id for m in exported.models} == {"gt", "writer"}
    h.apply(desired)
    assert h.plan(desired).empty


@pytest.mark.parametrize("lost", ["before", "after"])
def test_a_post_model_versions_that_fails_leaves_a_bare_model_and_the_rerun_converges(tmp_path: Path, lost: str) -> None:
    """Crash safety of the two-step create: PostModelVersions is sent once (retry=False); when it
    fails before committing, or commits and the answer is lost, the model stays bare or gets its
    version, and the next apply reuses or makes exactly one version."""
    h = Harness(tmp_path)
    desired = h.desired("bare.yaml", THRESHOLDER_APP)
    fired: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/models/gt/versions") and not fired:
            fired.append(lost)
            if lost == "after":
                h.client.post(request.url.path, json.loads(request.content))  # commits; the answer is lost
            return httpx.Response(500, json={"status": {"code": 99009, "description": "Internal error"}})
        return None

    rec = Recording(h, answer)
    try:
        apply_plan(_client(h, rec), h.plan(desired), poll_s=0.01)
    except ApiError:
        pass
    except Exception as err:  # an ApplyError saying what was done, never anything else
        assert "apply again" in str(err).lower(), err
    assert fired
    h.apply(desired)
    assert h.plan(desired).empty
    versions = h.client.list_all(h.base("bare") + "/models/gt/versions", "model_versions")
    assert len(versions) == 1


# --- 2. concept ids: at most 32 characters -----------------------------------------------------------


def _concepts_manifest(cid: str) -> str:
    return f"app: {{id: ids}}\nconcepts:\n  - id: {cid}\n"


def test_validate_refuses_a_33_character_concept_id_at_its_line_and_column() -> None:
    load_text(_concepts_manifest("c" * 32), "ok.yaml")
    with pytest.raises(ManifestError) as caught:
        load_text(_concepts_manifest("c" * 33), "long.yaml")
    (line,) = str(caught.value).splitlines()
    assert line == f"long.yaml:3:9: concept id '{'c' * 33}' is 33 characters long; concept ids are at most 32"


def test_the_sandbox_refuses_a_33_character_concept_id_as_invalid_request(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.client.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": "ids"}]})
    raw = httpx.Client(transport=sandbox_transport(h.sandbox), base_url="http://x",
                       headers={"Authorization": f"Key {SECRET_PAT}"})
    long_id = "concept-" + "x" * 25
    resp = raw.post(h.base("ids") + "/concepts", json={"concepts": [{"id": long_id}]})
    status = resp.json()["status"]
    assert (resp.status_code, status["code"], status["description"]) == (400, 40003, "Invalid request")
    assert long_id in status["details"] and "32" in status["details"]
    ok = raw.post(h.base("ids") + "/concepts", json={"concepts": [{"id": long_id[:32]}]})
    assert ok.status_code == 200


# --- 3. node ids are not API ids -----------------------------------------------------------------------

DOTTED = textwrap.dedent("""\
    app: {id: dotted, default_workflow: flow}
    concepts:
      - {id: dog}
    models:
      - {id: gt, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {dog: 0.7}}
      - {id: writer, type: annotation-writer, annotation_status: SUCCESS}
    workflows:
      - id: flow
        nodes:
          - {id: general-v1.5-concept, model: {id: general-image-recognition, user_id: clarifai, app_id: main,
             version: aa7f35c01e0642fda5cf400f543e7c40}}
          - {id: "threshold v1.5 (dog)", model: gt, inputs: [general-v1.5-concept]}
          - {id: write/success, model: writer, inputs: ["threshold v1.5 (dog)"]}
    """)


def test_node_ids_with_dots_validate_apply_converge_and_export_back(tmp_path: Path) -> None:
    """clarifai-python `clarifai/workflows/validate.py`: "Node IDs are not validated as IDs by the
    API"; its production fixture has node `general-v1.5-concept`. Before: `validate` refused it."""
    h = Harness(tmp_path)
    desired = h.desired("dotted.yaml", DOTTED)
    assert [n.id for n in desired.workflows[0].nodes] == ["general-v1.5-concept", "threshold v1.5 (dog)", "write/success"]
    h.apply(desired)
    assert h.plan(desired).empty
    text, _ = export_app(h.client, "dotted", user_id=DEFAULT_USER)
    back = load_text(text, "exported.yaml")
    assert back.workflows[0].nodes == desired.workflows[0].nodes
    # a node change is shown against the right node (the id holds dots)
    changed = dataclasses.replace(desired, workflows=(dataclasses.replace(desired.workflows[0], nodes=tuple(
        dataclasses.replace(n, suppress_output=True) if n.id == "threshold v1.5 (dog)" else n
        for n in desired.workflows[0].nodes)),))
    plan = h.plan(changed)
    (wf,) = [a for a in plan.actions if a.address == "workflow/flow"]
    assert [c.path for c in wf.changes] == ["nodes.threshold v1.5 (dog).suppress_output"]
    from reconciler.planning.render import plan_to_dict, render_markdown

    md = render_markdown(plan_to_dict(plan), plan)
    assert "class n1 changed" in md  # the dotted node (the second, n1) is the one marked


def test_convert_keeps_an_sdk_node_id_with_dots() -> None:
    sdk = textwrap.dedent("""\
        workflow:
          id: General
          nodes:
            - id: general-v1.5-concept
              model:
                model_id: general-image-recognition
                model_version_id: aa7f35c01e0642fda5cf400f543e7c40
                user_id: clarifai
                app_id: main
        """)
    data = convert_data(load_yaml(sdk.encode(), "general.yml"))
    assert data["workflows"][0]["nodes"][0]["id"] == "general-v1.5-concept"
    from reconciler.manifest.yamldump import dump_yaml

    state = load_text(dump_yaml(data), "converted.yaml")
    assert state.workflows[0].nodes[0].id == "general-v1.5-concept"


@pytest.mark.parametrize("node_id, says", [
    ('""', "a node id must not be empty"),
    ('"a\\tb"', "invalid node id 'a\\tb': a node id is any text without control characters"),
    ("n" * 129, "is 129 characters long; the limit is 128"),
])
def test_only_node_ids_that_cannot_be_sent_are_refused(node_id: str, says: str) -> None:
    text = DOTTED.replace('"threshold v1.5 (dog)"', node_id)
    with pytest.raises(ManifestError) as caught:
        load_text(text, "bad.yaml")
    lines = str(caught.value).splitlines()
    assert lines and all(says in ln for ln in lines), lines
    assert all(ln.startswith("bad.yaml:") and ln.split(":")[1].isdigit() for ln in lines)


# --- 4. nested metadata converges ----------------------------------------------------------------------

NESTED = textwrap.dedent("""\
    app:
      id: meta
      metadata: {cfg: {a: 1, b: 2}, tags: [x, y]}
    concepts:
      - {id: dog}
    models:
      - id: gt
        type: concept-thresholder
        comparator: GREATER_THAN
        thresholds: {dog: 0.7}
        metadata: {cfg: {a: 1, b: 2, deep: {c: 3, d: 4}}, tags: [x, y], gone: 1}
    workflows:
      - id: flow
        metadata: {cfg: {a: 1, b: 2}}
        nodes:
          - {id: gt, model: gt}
    """)
TRIMMED = (NESTED.replace("metadata: {cfg: {a: 1, b: 2}, tags: [x, y]}", "metadata: {cfg: {a: 1}, tags: [x]}")
           .replace("metadata: {cfg: {a: 1, b: 2, deep: {c: 3, d: 4}}, tags: [x, y], gone: 1}",
                    "metadata: {cfg: {a: 1, deep: {c: 3}}, tags: [x]}")
           .replace("    metadata: {cfg: {a: 1, b: 2}}\n", "    metadata: {cfg: {a: 1}}\n"))


def test_a_removed_nested_metadata_key_goes_and_the_users_own_keys_stay(tmp_path: Path) -> None:
    """Before: the model's PATCH "merge" deep-merged `{cfg: {a: 1}}` into `{cfg: {a: 1, b: 2}}`, so
    every plan showed `metadata.cfg.b: 2 -> (none)`, forever (and a list grew on every apply)."""
    assert TRIMMED.count("b: 2") == 0 and TRIMMED.count("cfg") == NESTED.count("cfg") == 3
    h = Harness(tmp_path)
    h.apply(h.desired("nested.yaml", NESTED))
    base = h.base("meta")
    # the user's own keys, beside the managed ones
    h.client.patch(base + "/models", {"models": [{"id": "gt", "metadata": {"mine": {"k": 1}}}], "action": "merge"})
    trimmed = h.desired("trimmed.yaml", TRIMMED)
    plan = h.plan(trimmed)
    assert {a.address for a in plan.actions} == {"app/meta", "model/gt", "workflow/flow"}
    h.apply(trimmed)
    again = h.plan(trimmed)
    assert again.empty, [(a.address, [(c.path, c.before, c.after) for c in a.changes]) for a in again.actions]
    model = h.client.get(base + "/models/gt")["model"]["metadata"]
    assert {k: v for k, v in model.items() if k != MARKER_KEY} == {"cfg": {"a": 1, "deep": {"c": 3}}, "tags": ["x"],
                                                                    "mine": {"k": 1}}
    app = h.client.get(base)["app"]["metadata"]
    assert {k: v for k, v in app.items() if k != MARKER_KEY} == {"cfg": {"a": 1}, "tags": ["x"]}
    wf = h.client.get(base + "/workflows/flow")["workflow"]["metadata"]
    assert {k: v for k, v in wf.items() if k != MARKER_KEY} == {"cfg": {"a": 1}}


def test_stale_metadata_names_only_what_a_merge_would_leave_within_the_keys_the_manifest_owns() -> None:
    live = {"cfg": {"a": 1, "b": 2, "deep": {"c": 3, "d": 4}}, "tags": ["x", "y"], "n": 1, "gone": 1, "mine": {"z": 1},
            MARKER_KEY: make_marker(False, ["cfg", "tags", "n", "gone"])}
    written = {"cfg": {"a": 1, "deep": {"c": 3}}, "tags": ["x"], "n": 2, MARKER_KEY: make_marker(False, ["cfg", "tags", "n"])}
    assert stale_metadata(live, written) == {"cfg": {"b": True, "deep": {"d": True}}, "tags": True, "gone": True}
    # applied as the API does (remove, then merge), the result is the manifest's, the user's key kept
    assert merge(remove(live, stale_metadata(live, written)), written) == {**written, "mine": {"z": 1}}
    assert stale_metadata({"cfg": {"a": 1}}, {"cfg": {"a": 1}}) == {}  # nothing stale: one merge
    assert stale_metadata({"x": [1]}, {"x": None}) == {"x": True}  # null merges as nothing


# The docs' own PATCH examples (Clarifai/docs docs/api-guide/advanced-topics/patching.md): A is
# patched into B. Two are left out: a merge whose printed result drops a field of the matched id
# ("Simple merge of key:values and within a list", contradicted by the "Deep merge" example) and a
# remove that empties a list without ids ("Only objects with id's can be put into lists",
# contradicted by "For non-id lists, remove will append"); the tool sends neither.
MERGE_EXAMPLES = [
    ({"a": [1, 2, 3]}, {"blah": True}, {"blah": True, "a": [1, 2, 3]}),
    ({"a": [{"id": 1}]}, {"a": [{"id": 2}]}, {"a": [{"id": 2}, {"id": 1}]}),
    ({"a": [{"id": "1"}], "blah": 1}, {"a": [{"id": "2"}], "blah": "string"}, {"a": [{"id": "2"}, {"id": "1"}], "blah": 1}),
    ({"a": [{"id": "1", "hey": True}], "blah": 1}, {"a": [{"id": "1", "foo": "bar", "hey": False}, {"id": "2"}], "blah": "string"},
     {"a": [{"hey": True, "id": "1", "foo": "bar"}, {"id": "2"}], "blah": 1}),
    ({"a": [{"blah": "1"}], "blah": 1}, {"a": [{"blah": "2"}], "blah": "string"}, {"a": [{"blah": "2"}, {"blah": "1"}], "blah": 1}),
    ({"a": [{"blah": "1"}], "blah": 1, "dict": {"a": 1, "b": 2}}, {"a": [{"blah": "2"}], "blah": "string"},
     {"a": [{"blah": "2"}, {"blah": "1"}], "blah": 1, "dict": {"a": 1, "b": 2}}),
    ({"key1": True}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": True}),
    ({"key1": {"key2": True}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": True, "key3": "value3"}}),
    ({"key1": {"key2": {"key4": "value4"}}}, {"key1": {"key2": "value2", "key3": "value3"}},
     {"key1": {"key2": {"key4": "value4"}, "key3": "value3"}}),
    ({"key1": {"key2": {"key9": "value9"}, "key3": {"key4": "value4", "key10": [1, 2, 3]}}, "key6": {"key11": "value11"}},
     {"key1": {"key2": "value2", "key3": {"key4": {"key5": "value5"}}}, "key6": {"key7": {"key8": "value8"}}},
     {"key1": {"key2": {"key9": "value9"}, "key3": {"key4": "value4", "key10": [1, 2, 3]}},
      "key6": {"key7": {"key8": "value8"}, "key11": "value11"}}),
    ({"key1": {"key2": {}}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": {}, "key3": "value3"}}),
    ({"key1": {"key2": None}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": "value2", "key3": "value3"}}),
    ({"key1": []}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": []}),
    ({"key1": {"key2": []}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": [], "key3": "value3"}}),
    ({"key1": {"key2": [{"key3": "value3"}]}}, {"key1": {"key2": {"key3": "value3"}}}, {"key1": {"key2": [{"key3": "value3"}]}}),
    ({"key1": {"key2": {"key3": [{"key4": "value4"}]}}}, {"key1": {"key2": []}}, {"key1": {"key2": {"key3": [{"key4": "value4"}]}}}),
]
REMOVE_EXAMPLES = [
    ({"a": [{"id": "1"}], "blah": 1}, {"a": [{"id": "2"}, {"id": "3"}, {"id": "1"}], "blah": "string"},
     {"a": [{"id": "2"}, {"id": "3"}], "blah": 1}),
    ({"a": [{"blah": "1"}], "blah": 1}, {"a": [{"blah": "2"}], "blah": "string"}, {"a": [{"blah": "2"}, {"blah": "1"}], "blah": 1}),
    ({"key1": {"key2": True}}, {"key1": {"key2": "value2"}}, {"key1": {}}),
    ({"key1": True}, {"key1": {"key2": "value2", "key3": "value3"}}, {}),
    ({"key1": {"key2": True}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key3": "value3"}}),
    ({"key1": {"key2": {"key3": True}, "key4": True}},
     {"key1": {"key2": {"key3": {"key5": "value5"}}, "key4": {"key6": {"key7": "value7"}}}}, {"key1": {"key2": {}}}),
    ({"key1": True}, {"key1": {"key2": "value2", "key3": "value3"}, "key4": ["a", "b", "c"]}, {"key4": ["a", "b", "c"]}),
    ({"key1": {"key2": False, "key3": True}, "key4": False},
     {"key1": {"key2": "value2", "key3": "value3"}, "key4": [{"key5": "value5", "key6": "value6"}, {"key7": "value7"}]},
     {"key1": {"key2": False}, "key4": False}),
    ({"key1": {}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": "value2", "key3": "value3"}}),
    ({"key1": {"key2": None}}, {"key1": {"key2": "value2", "key3": "value3"}}, {"key1": {"key2": "value2", "key3": "value3"}}),
]


@pytest.mark.parametrize("a, b, result", MERGE_EXAMPLES)
def test_the_sandbox_merges_as_the_docs_examples_do(a: Any, b: Any, result: Any) -> None:
    assert merge(b, a) == result


@pytest.mark.parametrize("a, b, result", REMOVE_EXAMPLES)
def test_the_sandbox_removes_as_the_docs_examples_do(a: Any, b: Any, result: Any) -> None:
    assert remove(b, a) == result


# --- 9. trained statuses and 99009 ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [21100, 21351, 21352, 21353])
def test_a_version_trained_or_deploying_is_reused(code: int) -> None:
    """21352 MODEL_QUEUED_FOR_DEPLOYMENT is "Used when training is completed" (the proto); before,
    only 21100 was reusable, so such a version was trained again on every apply."""
    desired = load_text(textwrap.dedent("""\
        app: {id: t}
        concepts: [{id: x}]
        models:
          - {id: clf, type: embedding-classifier, concepts: [x]}
        """), "t.yaml")
    (m,) = desired.models
    live_model = dataclasses.replace(m, version_id="v1", versions=(ModelVersion("v1", m.config, status_code=code),))
    live = dataclasses.replace(desired, models=(live_model,), source="live")
    plan = make_plan(desired, live, live_fingerprint="f")
    assert plan.empty, [(a.op, a.address) for a in plan.actions]


def test_apply_takes_a_version_that_reads_queued_for_deployment_as_trained(tmp_path: Path) -> None:
    """A trainable version that reads 21352 once trained (every answer showing it rewritten): apply
    points the workflow at it and the next plan reuses it. Before: apply waited for 21100 until
    --train-timeout, and every plan trained a new version."""
    h = Harness(tmp_path)
    desired = h.desired(PARK)
    rec = Recording(h)

    def deployed(request: httpx.Request) -> httpx.Response | None:
        resp = rec.inner.handle_request(request)
        resp.read()
        text = resp.content.decode()
        if "park-activity-classifier" not in request.url.path or '"code": 21100' not in text:
            return resp
        return httpx.Response(resp.status_code, content=text.replace('"code": 21100', '"code": 21352').encode(),
                              headers={"content-type": "application/json"})

    rec.answer = deployed
    client = _client(h, rec)
    apply_plan(client, h.plan(desired), poll_s=0.01, train_timeout_s=2)
    from reconciler.planning.pipeline import plan_app

    again = plan_app(client, desired)
    assert again.empty, [(a.op, a.address) for a in again.actions]
    versions = client.list_all(h.base(desired.app.id) + "/models/park-activity-classifier/versions", "model_versions")
    assert [v["status"]["code"] for v in versions] == [21352]


def test_a_version_read_answered_internal_uncategorized_is_asked_again_then_given_up(tmp_path: Path) -> None:
    """clarifai-python-grpc `tests/common.py` retries a GetModelVersion answered 99009 while it
    waits for training (at most 3 times). Before: the first such answer stopped apply."""
    h = Harness(tmp_path, training_delay_s=0.05)
    desired = h.desired(PARK)
    answered: list[int] = []
    limit = [INTERNAL_RETRIES]

    def answer(request: httpx.Request) -> httpx.Response | None:
        parts = request.url.path.split("/")
        if request.method == "GET" and len(parts) == 10 and parts[-2] == "versions" and len(answered) < limit[0]:
            answered.append(1)
            return httpx.Response(200, json={"status": {"code": 99009, "description": "Internal error"}})
        return None

    rec = Recording(h, answer)
    lines: list[str] = []
    apply_plan(_client(h, rec), h.plan(desired), poll_s=0.01, progress=lines.append)
    assert len(answered) == INTERNAL_RETRIES and h.plan(desired).empty
    assert sum("INTERNAL_UNCATEGORIZED" in ln for ln in lines) == INTERNAL_RETRIES

    # one more than the bound: the version read fails with the API's answer
    (tmp_path / "again").mkdir()
    h2 = Harness(tmp_path / "again", training_delay_s=0.05)
    answered.clear()
    limit[0] = INTERNAL_RETRIES + 1
    rec2 = Recording(h2, answer)
    with pytest.raises(ApplyError) as caught:
        apply_plan(_client(h2, rec2), h2.plan(h2.desired(PARK)), poll_s=0.01)
    said = str(caught.value)
    assert "INTERNAL_UNCATEGORIZED (99009)" in said and "Run apply again" in said and "\n" not in said
    assert len(answered) == INTERNAL_RETRIES + 1


# --- 12. long workflow ids -----------------------------------------------------------------------------


def test_a_uuid4_workflow_id_plans_without_a_note_and_converges(tmp_path: Path) -> None:
    """clarifai-python `client/app.py` makes workflow ids with uuid4() (36 characters) on
    production. Before: every plan creating a workflow id over 32 characters carried a note."""
    wid = str(uuid.uuid4())
    assert len(wid) == 36
    h = Harness(tmp_path)
    desired = h.desired("long.yaml", THRESHOLDER_APP.replace("- id: flow", f"- id: {wid}"))
    plan = h.plan(desired)
    assert plan.notes == ()
    h.apply(desired)
    live = h.live("bare", desired)
    assert live is not None and [w.id for w in live.workflows] == [wid]
    assert h.plan(desired).empty
