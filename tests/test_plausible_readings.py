"""Issue 19's plausible readings of the real API, one by one (README "Pessimistic sandbox mode",
docs/parity.md "Plausible readings"): each is a named quirk of the sandbox, and the tool converges
under it alone and under all of them together; the parts that are the tool's own rules (reindex,
20 nodes, knowledge graphs, images sent only as urls, comparing configurations) are tested here
too, without a sandbox where they need none.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ResponseChecker
from e2e import Harness

from reconciler.api.client import Client
from reconciler.core import modeltypes
from reconciler.core.errors import ManifestError, PlanError
from reconciler.manifest.load import load_text
from reconciler.sandbox import quirks as Q
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox

U = f"/v2/users/{DEFAULT_USER}/apps"
EMBED = {"id": "general-image-embedding", "user_id": "clarifai", "app_id": "main",
         "version": "bb186755eda04f9cbb6fe32e816be104"}

#: An embedding-classifier without base_embed_model (item 6), a pass-through model with a raw
#: output_info (item 5), and a default workflow the second manifest moves (item 7).
FILLED = textwrap.dedent(f"""\
    version: 1
    app: {{id: filled, default_workflow: flow}}
    concepts:
      - {{id: dog}}
      - {{id: cat}}
    models:
      - {{id: cls, type: embedding-classifier, concepts: [dog, cat]}}
      - id: regions
        type: region-thresholder
        output_info: {{output_config: {{max_concepts: 5}}}}
        params: {{min_value: 0.5}}
      - {{id: gt, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {{dog: 0.5}}}}
    workflows:
      - id: flow
        nodes:
          - {{id: embed, model: {json.dumps(EMBED)}}}
          - {{id: cls, model: cls, inputs: [embed]}}
          - {{id: gt, model: gt, inputs: [cls]}}
      - id: other
        nodes:
          - {{id: r, model: regions}}
    """)

QUIRK_SETS = [None, *sorted(Q.QUIRKS), "pessimistic"]


class _Spy:
    """A WSGI app in front of the sandbox keeping the JSON bodies of PatchApps requests."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.patch_apps = inner, []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "PATCH" and environ["PATH_INFO"].rstrip("/") == U:
            n = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(n) if n else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            self.patch_apps.append(json.loads(raw or b"{}"))
        return self.inner(environ, start_response)


def _spied(h: Harness) -> tuple[Client, _Spy]:
    spy = _Spy(h.sandbox)
    from reconciler.api.transport import sandbox_transport

    return Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER, transport=sandbox_transport(spy),
                  rate_limit=0), spy


@pytest.mark.parametrize("quirks", QUIRK_SETS)
def test_server_filled_configuration_and_the_default_workflow_converge(quirks: str | None, tmp_path: Path) -> None:
    """Items 5, 6 and 7: no new version (and no retraining) per run when the server fills in a
    configuration; the default workflow is set once, whichever of its two fields the server
    honours; changing it on an app with inputs says how many and sends the manifest's choice."""
    h = Harness(tmp_path, quirks=quirks)
    desired = h.desired("filled.yaml", FILLED)
    h.apply(desired)
    after = h.plan(desired)
    assert after.empty, [(a.op, a.address, a.changes) for a in after.actions]
    h.clear_log()
    h.apply(desired)
    assert h.writes() == []  # no version posted, nothing retrained
    base = f"{U}/filled"
    if quirks and Q.SERVER_FILLED_CONFIG in Q.parse(quirks):  # the reading really was played
        v = h.client.list_all(f"{base}/models/regions/versions", "model_versions")[0]
        full = h.client.get(f"{base}/models/regions/versions/{v['id']}/output_info")["model"]["output_info"]
        assert full["params"]["max_concepts"] == 20 and full["output_config"]["min_value"] == 0
    if quirks and Q.BASE_EMBED_MODEL_FILLED in Q.parse(quirks):
        versions = h.client.list_all(f"{base}/models/cls/versions", "model_versions")
        assert any((v.get("input_info") or {}).get("base_embed_model") for v in versions)

    moved = h.desired("filled.yaml", FILLED.replace("default_workflow: flow}", "default_workflow: other, reindex: true}"))
    plan = h.plan(moved)
    [act] = [a for a in plan.actions if a.op.value == "set_default"]
    inputs = len([i for i in h.client.list_all(f"{base}/inputs", "inputs")])
    assert inputs > 0  # the classifier trained on labelled inputs
    assert f"all {inputs:,} inputs" in act.reason and "app.reindex: true" in act.reason
    client, spy = _spied(h)
    h.apply(moved, client=client)
    assert h.plan(moved).empty
    assert spy.patch_apps and spy.patch_apps[0]["reindex"] is True
    assert spy.patch_apps[0]["apps"][0]["default_workflow"]["id"] == "other"
    assert "default_workflow_id" not in spy.patch_apps[0]["apps"][0]  # the deprecated field only as a fallback
    live = h.live("filled")
    assert live is not None and live.app.default_workflow == "other"
    h.sandbox.close()


def test_changing_the_default_on_an_app_with_inputs_needs_the_reindex_choice(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    desired = h.desired("filled.yaml", FILLED)
    h.apply(desired)
    moved = h.desired("filled.yaml", FILLED.replace("default_workflow: flow}", "default_workflow: other}"))
    with pytest.raises(PlanError) as err:
        h.plan(moved)
    msg = str(err.value)
    assert "\n" not in msg and "re-indexes all" in msg and "app.reindex: true" in msg and "app.reindex: false" in msg
    keep = h.desired("filled.yaml", FILLED.replace("default_workflow: flow}", "default_workflow: other, reindex: false}"))
    [act] = [a for a in h.plan(keep).actions if a.op.value == "set_default"]
    assert "app.reindex: false" in act.reason and "left as indexed" in act.reason
    client, spy = _spied(h)
    h.apply(keep, client=client)
    assert [b["reindex"] for b in spy.patch_apps] == [False]
    h.sandbox.close()


def test_an_app_without_inputs_needs_no_reindex_choice(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    text = FILLED.replace("  - {id: cls, type: embedding-classifier, concepts: [dog, cat]}\n", "").replace(
        "      - {id: embed, model: " + json.dumps(EMBED) + "}\n      - {id: cls, model: cls, inputs: [embed]}\n"
        "      - {id: gt, model: gt, inputs: [cls]}\n", "      - {id: gt, model: gt}\n")
    assert "cls" not in text
    h.apply(h.desired("f.yaml", text))
    moved = h.desired("f.yaml", text.replace("default_workflow: flow}", "default_workflow: other}"))
    [act] = [a for a in h.plan(moved).actions if a.op.value == "set_default"]
    assert act.reason == "the app has no inputs: nothing to re-index"
    h.sandbox.close()


# --- the sandbox plays each reading (raw HTTP) -------------------------------------------------

def _raw(tmp_path: Path, quirks: Any) -> tuple[httpx.Client, ResponseChecker, Sandbox]:
    sb = Sandbox(str(tmp_path / "sandbox.sqlite"), training_delay_s=0, quirks=quirks)
    checker = ResponseChecker(sb)
    client = httpx.Client(transport=httpx.WSGITransport(app=checker), base_url="http://sandbox.local",
                          headers={"Authorization": f"Key {DEFAULT_KEY}"})
    assert client.post(U, json={"apps": [{"id": "q"}]}).status_code == 200
    return client, checker, sb


@pytest.fixture
def raw(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    client, checker, sb = _raw(tmp_path, request.param)
    yield client
    client.close()
    sb.close()
    assert not checker.problems, checker.problems
    assert not sb.internal_errors, sb.internal_errors


B = f"{U}/q"
GT_CONFIG = {"data": {"concepts": [{"id": "a", "value": 0.5}]}, "params": {"concept_threshold_type": 1}}


def _thresholder(raw: httpx.Client) -> dict[str, Any]:
    """A concept-thresholder `gt` as today's API makes one: PostModels bare, then PostModelVersions;
    the new version as answered."""
    raw.post(f"{B}/models", json={"models": [{"id": "gt", "model_type_id": "concept-thresholder"}]})
    answer = raw.post(f"{B}/models/gt/versions", json={"model_versions": [{"output_info": GT_CONFIG}]})
    return dict(answer.json()["model"]["model_version"])


@pytest.mark.parametrize("raw", [Q.SERVER_FILLED_CONFIG], indirect=True)
def test_server_filled_config_is_played(raw: httpx.Client) -> None:
    raw.post(f"{B}/models", json={"models": [{"id": "r", "model_type_id": "region-thresholder"}]})
    got = raw.post(f"{B}/models/r/versions", json={"model_versions": [{"output_info": {"params": {"min_value": 0.5}}}]})
    oi = got.json()["model"]["model_version"]["output_info"]
    assert oi["params"] == {"min_value": 0.5, "max_concepts": 20, "select_concepts": []}  # what was sent wins
    assert oi["output_config"] == {"max_concepts": 0, "min_value": 0}
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    gt = _thresholder(raw)["output_info"]
    assert "max_concepts" not in gt["params"]  # typed operators keep their own params


@pytest.mark.parametrize("raw", [Q.BASE_EMBED_MODEL_FILLED], indirect=True)
def test_base_embed_model_filled_is_played(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    raw.post(f"{B}/models", json={"models": [{"id": "c", "model_type_id": "embedding-classifier"}]})
    v = raw.post(f"{B}/models/c/versions", json={"model_versions": [
        {"output_info": {"data": {"concepts": [{"id": "a"}]}}}]}).json()["model"]["model_version"]
    ref = v["input_info"]["base_embed_model"]
    assert (ref["id"], ref["user_id"], ref["app_id"]) == ("general-image-embedding", "clarifai", "main")
    assert ref["model_version"]["id"] == EMBED["version"]


@pytest.mark.parametrize("raw, honoured", [(Q.DEFAULT_WORKFLOW_ID_IGNORED, "object"),
                                           (Q.DEFAULT_WORKFLOW_OBJECT_IGNORED, "id")], indirect=["raw"])
def test_one_default_workflow_field_honoured(raw: httpx.Client, honoured: str) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    version = _thresholder(raw)["id"]
    for wid in ("w1", "w2"):
        raw.post(f"{B}/workflows", json={"workflows": [{"id": wid, "nodes": [
            {"id": "n", "model": {"id": "gt", "model_version": {"id": version}}}]}]})
    by_obj = raw.patch(U, json={"apps": [{"id": "q", "default_workflow": {"id": "w1"}}], "action": "overwrite"})
    by_id = raw.patch(U, json={"apps": [{"id": "q", "default_workflow_id": "w2"}], "action": "overwrite"})
    assert by_obj.status_code == by_id.status_code == 200
    app = raw.get(B).json()["app"]
    if honoured == "object":
        assert app["default_workflow"]["id"] == "w1" and "default_workflow_id" not in app
    else:
        assert app["default_workflow_id"] == "w2" and "default_workflow" not in app


def test_both_default_workflow_quirks_give_each_app_one_reading() -> None:
    both = frozenset({Q.DEFAULT_WORKFLOW_ID_IGNORED, Q.DEFAULT_WORKFLOW_OBJECT_IGNORED})
    seen = {Q.default_workflow_fields(both, f"app-{i}") for i in range(20)}
    assert seen == {(True, False), (False, True)}
    assert Q.default_workflow_fields(frozenset(), "x") == (True, True)


@pytest.mark.parametrize("raw", [Q.HOSTED_IMAGE], indirect=True)
def test_hosted_image_is_played(raw: httpx.Client) -> None:
    url = "https://samples.clarifai.com/metro-north.jpg"
    raw.patch(U, json={"apps": [{"id": "q", "image": {"url": url}}], "action": "overwrite"})
    image = raw.get(B).json()["app"]["image"]
    assert "url" not in image and image["hosted"]["sizes"]
    refused = raw.patch(U, json={"apps": [{"id": "q", "image": image}], "action": "overwrite"})
    assert refused.status_code == 400
    from reconciler.apply.base import image_to_send

    again = raw.patch(U, json={"apps": [{"id": "q", **{"image": image_to_send(image)}}], "action": "overwrite"})
    assert again.status_code == 200 and raw.get(B).json()["app"]["image"] == image  # the same image


@pytest.mark.parametrize("raw", [Q.WORKFLOW_MAX_20_NODES], indirect=True)
def test_workflow_max_20_nodes_is_played(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    version = _thresholder(raw)["id"]
    nodes = [{"id": f"n{i}", "model": {"id": "gt", "model_version": {"id": version}}} for i in range(21)]
    refused = raw.post(f"{B}/workflows", json={"workflows": [{"id": "big", "nodes": nodes}]})
    assert refused.status_code == 400 and refused.json()["status"]["code"] == 22104
    assert raw.post(f"{B}/workflows", json={"workflows": [{"id": "big", "nodes": nodes[:20]}]}).status_code == 200


@pytest.mark.parametrize("raw", [Q.KNOWLEDGE_GRAPH_MUST_EXIST], indirect=True)
def test_knowledge_graph_must_exist_is_played(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}, {"id": "b"}]})
    rel = {"object_concept": {"id": "b"}, "predicate": "synonym", "knowledge_graph_id": "kg1"}
    refused = raw.post(f"{B}/concepts/a/relations", json={"concept_relations": [rel]})
    assert refused.status_code == 404 and refused.json()["status"]["code"] == 40003
    made = raw.post(f"{B}/concepts/knowledge_graphs", json={"knowledge_graphs": [{"id": "kg1", "name": "KG"}]})
    assert made.status_code == 200 and made.json()["knowledge_graphs"][0]["id"] == "kg1"
    assert [g["id"] for g in raw.get(f"{B}/concepts/knowledge_graphs").json()["knowledge_graphs"]] == ["kg1"]
    assert raw.post(f"{B}/concepts/a/relations", json={"concept_relations": [rel]}).status_code == 200


def test_input_count_route(tmp_path: Path) -> None:
    client, checker, sb = _raw(tmp_path, None)
    client.post(f"{B}/inputs", json={"inputs": [{"id": "i1", "data": {"image": {"url": "https://x/1.png"}}}]})
    counts = client.get(f"{B}/inputs/status").json()["counts"]
    assert counts["processed"] == 1 and counts["to_process"] == 0
    from reconciler.api.live import read_input_count

    c = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER,
               transport=httpx.WSGITransport(app=sb), rate_limit=0)
    assert read_input_count(c, "q") == 1
    client.close()
    sb.close()
    assert not checker.problems


# --- the tool's own rules (no sandbox) -----------------------------------------------------------

def test_subset_comparison_for_pass_through_types_and_exact_typed_fields() -> None:
    desired = modeltypes.canonical_config("visual-detector", {"output_info": {"output_config": {"max_concepts": 5}},
                                                                "params": {"min_value": 0.5}})
    filled = {"output_info": {"output_config": {"max_concepts": 5, "min_value": 0.0},
                              "params": {"min_value": 0.5, "max_concepts": 20, "select_concepts": []}}}
    assert modeltypes.config_matches("visual-detector", filled, desired)
    changed = {"output_info": {"output_config": {"max_concepts": 6}, "params": {"min_value": 0.5}}}
    assert not modeltypes.config_matches("visual-detector", changed, desired)
    assert modeltypes.as_compared("visual-detector", changed, desired) == {
        "output_info": {"output_config": {"max_concepts": 6}, "params": {"min_value": 0.5}}}
    assert modeltypes.config_matches("visual-detector", filled, {})  # nothing stated, nothing to differ
    # typed fields: exact
    cls = modeltypes.canonical_config("embedding-classifier", {"concepts": ["a"]})
    assert not modeltypes.config_matches("embedding-classifier", {"concepts": ["a", "b"]}, cls)
    assert not modeltypes.config_matches("embedding-classifier",
                                         {"concepts": ["a"], "concepts_mutually_exclusive": True}, cls)
    gt = modeltypes.canonical_config("concept-thresholder", {"thresholds": {"a": 0.5}})
    assert not modeltypes.config_matches("concept-thresholder", {**gt, "thresholds": {"a": 0.5, "b": 0.1}}, gt)


def test_a_server_chosen_base_embed_model_is_no_change_a_different_one_is() -> None:
    filled = {"concepts": ["a"], "base_embed_model": dict(EMBED)}
    assert modeltypes.config_matches("embedding-classifier", filled, {"concepts": ["a"]})
    unversioned = {"concepts": ["a"], "base_embed_model": {k: v for k, v in EMBED.items() if k != "version"}}
    assert modeltypes.config_matches("embedding-classifier", filled, unversioned)
    other = {"concepts": ["a"], "base_embed_model": {**EMBED, "id": "another-embedder"}}
    assert not modeltypes.config_matches("embedding-classifier", filled, other)
    pinned_elsewhere = {"concepts": ["a"], "base_embed_model": {**EMBED, "version": "v2"}}
    assert not modeltypes.config_matches("embedding-classifier", filled, pinned_elsewhere)


@pytest.mark.parametrize("image, sent", [
    ({"url": "https://x/a.png"}, {"url": "https://x/a.png"}),
    ({"url": "https://x/a.png", "hosted": {"prefix": "p", "suffix": "s", "sizes": ["orig"]}}, {"url": "https://x/a.png"}),
    ({"hosted": {"prefix": "https://h", "suffix": "s/t", "sizes": ["small", "orig"]}}, {"url": "https://h/orig/s/t"}),
    ({"hosted": {"prefix": "https://h/", "suffix": "/s", "sizes": ["small", "large"]}}, {"url": "https://h/large/s"}),
    ({"hosted": {"prefix": "https://h", "suffix": "s", "sizes": ["orig"], "crossorigin": "use-credentials"}}, None),
    ({"hosted": {"prefix": "https://h", "suffix": "s", "sizes": []}}, None),
    ({}, None), (None, None), ("x", None),
])
def test_an_image_is_sent_only_as_a_url(image: Any, sent: Any) -> None:
    from reconciler.apply.base import _kept_app_fields, image_to_send

    assert image_to_send(image) == sent
    kept = _kept_app_fields({"name": "n", "image": image})
    assert kept.get("image") == sent and "hosted" not in json.dumps(kept)


MANY = textwrap.dedent("""\
    app: {id: big}
    models:
      - {id: w, type: annotation-writer, annotation_status: SUCCESS}
    workflows:
      - id: wide
        nodes:
    """)


def test_validate_refuses_a_workflow_of_more_than_20_nodes_with_its_position() -> None:
    ok = MANY + "".join(f"      - {{id: n{i}, model: w}}\n" for i in range(20))
    assert len(load_text(ok, "m.yaml").workflows[0].nodes) == 20
    with pytest.raises(ManifestError) as err:
        load_text(MANY + "".join(f"      - {{id: n{i}, model: w}}\n" for i in range(22)), "m.yaml")
    [p] = err.value.problems
    assert (p.line, p.column) == (6 + 21, 9)  # the 21st node
    assert "22 nodes" in p.message and "up to 20 models" in p.message and "create/workflows/create.md" in p.message


KG = textwrap.dedent("""\
    app: {id: kg}
    concepts: [{id: a}, {id: b}]
    concept_relations:
      - {subject: a, predicate: synonym, object: b}
      - {subject: b, predicate: hypernym, object: a, knowledge_graph_id: kg1}
    """)


@pytest.mark.parametrize("quirks", [None, Q.KNOWLEDGE_GRAPH_MUST_EXIST, "pessimistic"])
def test_a_relation_in_a_knowledge_graph_the_app_lacks_is_refused_at_plan(quirks: str | None, tmp_path: Path) -> None:
    """Item 11: validate takes a named graph (simulate and tune use them offline), plan refuses one
    the app does not have -- before any write -- and applies once it exists."""
    assert load_text(KG, "m.yaml").relations[1].knowledge_graph_id == "kg1"
    h = Harness(tmp_path, quirks=quirks)
    desired = h.desired("kg.yaml", KG)
    with pytest.raises(PlanError) as err:
        h.plan(desired)  # a new app has no knowledge graph
    msg = str(err.value)
    assert "\n" not in msg and "knowledge graph kg1 does not exist in app kg" in msg and "PostKnowledgeGraphs" in msg
    assert h.writes() == []
    h.apply(h.desired("kg.yaml", KG.replace(", knowledge_graph_id: kg1", "")))
    with pytest.raises(PlanError):
        h.plan(desired)  # the app exists, the graph does not
    h.client.post(f"{U}/kg/concepts/knowledge_graphs", {"knowledge_graphs": [{"id": "kg1", "name": "graph one"}]})
    h.apply(desired)
    assert h.plan(desired).empty
    listed = h.client.list_all(f"{U}/kg/concepts/relations", "concept_relations")
    assert sorted(r.get("knowledge_graph_id", "") for r in listed) == ["", "kg1"]
    h.sandbox.close()


def test_reindex_needs_a_default_workflow_and_is_a_boolean() -> None:
    with pytest.raises(ManifestError) as err:
        load_text("app: {id: a, reindex: true}\n", "m.yaml")
    assert "needs app.default_workflow" in str(err.value)
    with pytest.raises(ManifestError) as err:
        load_text("app: {id: a, reindex: yes-please}\n", "m.yaml")
    assert "reindex" in str(err.value)


def test_reindex_words() -> None:
    from reconciler.core.state import App
    from reconciler.planning.plan import reindex_words

    assert reindex_words(App("a", default_workflow="w", reindex=True), "v", 1234) == \
        "re-indexes all 1,234 inputs of the app through w (app.reindex: true): may take a while and may incur costs"
    assert reindex_words(App("a", default_workflow="w", reindex=False), None, 1) == \
        "app.reindex: false: the 1 input of the app is left as indexed; only new inputs go through w"
    assert reindex_words(App("a", default_workflow="w"), "v", 0) == "the app has no inputs: nothing to re-index"
    assert "not stated" in reindex_words(App("a", default_workflow="w"), "v", None)
    with pytest.raises(PlanError):
        reindex_words(App("a", default_workflow="w"), "v", 3)


def test_a_server_ignoring_the_default_workflow_object_gets_the_deprecated_field_too(tmp_path: Path) -> None:
    h = Harness(tmp_path, quirks=[Q.DEFAULT_WORKFLOW_OBJECT_IGNORED])
    client, spy = _spied(h)
    h.apply(h.desired("filled.yaml", FILLED), client=client)
    sets = [b["apps"][0] for b in spy.patch_apps if "default_workflow" in b["apps"][0]]
    assert [("default_workflow_id" in item) for item in sets] == [False, True]  # object first, then both
    assert sets[1]["default_workflow_id"] == sets[1]["default_workflow"]["id"] == "flow"
    assert h.plan(h.desired("filled.yaml", FILLED)).empty
    h.sandbox.close()


def test_a_default_the_api_never_shows_is_one_error_line(tmp_path: Path) -> None:
    """Both fields ignored (a server honouring neither): apply says so instead of leaving a
    set-default that every later plan repeats without end."""
    from reconciler.core.errors import ApplyError

    h = Harness(tmp_path)
    text = FILLED.replace("default_workflow: flow}", "}")
    h.apply(h.desired("f.yaml", text))

    def ignore_default(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "PATCH" and environ["PATH_INFO"].rstrip("/") == U:
            n = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(n) or b"{}")
            for item in body.get("apps", []):
                item.pop("default_workflow", None)
                item.pop("default_workflow_id", None)
            raw = json.dumps(body).encode()
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
        return h.sandbox(environ, start_response)

    from reconciler.api.transport import sandbox_transport

    client = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER,
                    transport=sandbox_transport(ignore_default), rate_limit=0)
    with pytest.raises(ApplyError) as err:
        h.apply(h.desired("f.yaml", FILLED.replace("default_workflow: flow}", "default_workflow: flow, reindex: false}")),
                client=client)
    assert "still not flow" in str(err.value) and "\n" not in str(err.value)
    h.sandbox.close()


def test_saved_plans_keep_the_reindex_choice_and_the_input_count() -> None:
    from reconciler.core.errors import PlanError as Err
    from reconciler.core.state import App, Kind
    from reconciler.planning.serialize import resource_from_dict, resource_to_dict

    app = App("a", default_workflow="w", reindex=False, input_count=7)
    back = resource_from_dict(Kind.APP, json.loads(json.dumps(resource_to_dict(app))))
    assert isinstance(back, App) and (back.reindex, back.input_count) == (False, 7)
    assert "reindex" not in resource_to_dict(App("a"))  # plans without them read as before
    for bad in ({"reindex": "no"}, {"input_count": True}, {"input_count": "7"}):
        with pytest.raises(Err):
            resource_from_dict(Kind.APP, {"id": "a", **bad})
