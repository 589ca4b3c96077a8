"""Sandbox semantics through its REST surface (in process, httpx WSGI transport). Every response
is also parsed into its proto by the `sandbox_app` fixture (see conftest)."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import pytest

from reconciler.sandbox.app import DEFAULT_KEY, Sandbox
from reconciler.sandbox.seed import MAIN_MODELS

A = "/v2/users/me/apps/app1"


def ok(resp: httpx.Response) -> dict:
    body = resp.json()
    assert resp.status_code == 200 and body["status"]["code"] == 10000, body
    return body


def err(resp: httpx.Response, http: int, code: int) -> dict:
    body = resp.json()
    assert (resp.status_code, body["status"]["code"]) == (http, code), body
    assert body["status"]["req_id"] and "Traceback" not in resp.text
    return body


@pytest.fixture
def c(sandbox_client: httpx.Client) -> httpx.Client:
    ok(sandbox_client.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}))
    return sandbox_client


def model(c: httpx.Client, mid: str, mtype: str = "concept-thresholder", output_info: dict | None = None,
          **extra) -> dict:
    """A model and its first version, as today's API makes them: PostModels (the bare model), then
    PostModelVersions with the configuration; the answer to the latter (the model and its version)."""
    ok(c.post(A + "/models", json={"models": [{"id": mid, "model_type_id": mtype, **extra}]}))
    body = {"model_versions": [{"output_info": output_info or {}}]}
    return ok(c.post(A + f"/models/{mid}/versions", json=body))["model"]


# --- apps and auth -----------------------------------------------------------------------------------


def test_apps_do_not_auto_create_and_me_is_the_keys_user(sandbox_client):
    err(sandbox_client.get(A), 404, 11101)
    ok(sandbox_client.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}))
    app = ok(sandbox_client.get("/v2/users/sandbox/apps/app1"))["app"]
    assert app["user_id"] == "sandbox" and app["created_at"].endswith("Z")
    err(sandbox_client.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}), 409, 40010)
    assert [a["id"] for a in ok(sandbox_client.get("/v2/users/me/apps"))["apps"]] == ["app1"]
    ok(sandbox_client.delete(A))
    err(sandbox_client.get(A), 404, 11101)


def test_bad_or_missing_key_is_401_and_never_echoed(sandbox_app):
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox_app), base_url="http://x") as raw:
        for headers in ({}, {"Authorization": "Key secret-pat-123"}, {"Authorization": "Bearer sandbox-key"}):
            r = raw.get("/v2/users/me/apps", headers=headers)
            err(r, 401, 11008)
            assert "secret-pat-123" not in r.text
    assert all("secret" not in repr(e) for e in sandbox_app.request_log)


def test_keys_map_to_users_and_other_users_apps_are_refused(c, sandbox):
    sandbox.add_key("k2", "alice")
    other = {"Authorization": "Key k2"}
    ok(c.post("/v2/users/me/apps", json={"apps": [{"id": "mine"}]}, headers=other))
    assert ok(c.get("/v2/users/alice/apps/mine", headers=other))["app"]["user_id"] == "alice"
    err(c.get("/v2/users/alice/apps/mine"), 403, 11007)
    err(c.post("/v2/users/alice/apps/mine/concepts", json={"concepts": [{"id": "x"}]}), 403, 11007)


def test_patch_apps_sets_an_existing_default_workflow_only(c):
    err(c.patch("/v2/users/me/apps", json={"apps": [{"id": "app1", "default_workflow_id": "nope"}],
                                          "action": "overwrite"}), 404, 22102)
    m = model(c, "t1")
    wf = {"id": "wf", "nodes": [{"id": "n", "model": {"id": "t1", "model_version": {"id": m["model_version"]["id"]}}}]}
    ok(c.post(A + "/workflows", json={"workflows": [wf]}))
    apps = ok(c.patch("/v2/users/me/apps", json={
        "user_app_id": {"user_id": "me"}, "apps": [{"id": "app1", "default_workflow_id": "wf"}],
        "action": "overwrite"}))["apps"]
    assert apps[0]["default_workflow_id"] == "wf"
    assert ok(c.get(A))["app"]["default_workflow"] == {"id": "wf", "user_id": "sandbox", "app_id": "app1"}
    err(c.delete(A + "/workflows/wf"), 400, 22104)  # the default cannot go
    app = ok(c.patch(A, json={"app": {"description": "d", "metadata": {"k": 1}}, "action": "overwrite"}))["app"]
    assert app["description"] == "d" and app["default_workflow_id"] == "wf"
    app = ok(c.patch(A, json={"app": {"metadata": {"j": 2}}, "metadata_action": {"op": "merge"}}))["app"]
    assert app["metadata"] == {"k": 1, "j": 2}
    err(c.patch(A, json={"app": {}, "action": "merge"}), 400, 11102)


# --- concepts and relations ------------------------------------------------------------------------------


def test_concepts_post_get_list_patch_and_no_delete(c):
    ok(c.post(A + "/concepts", json={"concepts": [{"id": "people", "name": "People", "value": 0.0}, {"id": "man"}]}))
    # the real answer to a duplicate concept (clarifai-python-grpc tests/client/test_concept_crud.py)
    dup = err(c.post(A + "/concepts", json={"concepts": [{"id": "man"}]}), 400, 40003)
    assert dup["status"]["description"] == "Invalid request"
    assert "duplicate" in dup["status"]["details"].lower()
    got = ok(c.get(A + "/concepts/people"))["concept"]
    assert (got["id"], got["name"], got["value"], got["app_id"]) == ("people", "People", 1.0, "app1")
    assert ok(c.get(A + "/concepts/man"))["concept"]["name"] == "man"
    err(c.get(A + "/concepts/ghost"), 404, 11101)
    # patching a concept the app does not have: 11101 "Resource does not exist" (test_concept_crud.py)
    ghost = err(c.patch(A + "/concepts", json={"concepts": [{"id": "ghost"}], "action": "overwrite"}), 404, 11101)
    assert ghost["status"]["description"] == "Resource does not exist"
    ok(c.patch(A + "/concepts", json={"concepts": [{"id": "man", "name": "Man"}], "action": "overwrite"}))
    assert ok(c.get(A + "/concepts/man"))["concept"]["name"] == "Man"
    err(c.patch(A + "/concepts", json={"concepts": [{"id": "man"}], "action": "merge"}), 400, 40003)
    # concepts cannot be deleted: the paths exist (GET), DELETE is not a method of them
    err(c.delete(A + "/concepts/man"), 400, 11103)
    err(c.request("DELETE", A + "/concepts", json={"ids": ["man"]}), 400, 11103)
    assert ok(c.get(A + "/concepts/man"))["concept"]["id"] == "man"


def test_paging_ends_with_an_empty_page(c):
    ok(c.post(A + "/concepts", json={"concepts": [{"id": f"c{i:03d}"} for i in range(130)]}))
    assert len(ok(c.get(A + "/concepts"))["concepts"]) == 128  # default per_page
    seen, page = [], 1
    while True:
        got = ok(c.get(A + "/concepts", params={"page": page, "per_page": 50}))["concepts"]
        if not got:
            break
        seen += [x["id"] for x in got]
        page += 1
    assert seen == [f"c{i:03d}" for i in range(130)] and page == 4
    assert len(ok(c.get(A + "/concepts", params={"per_page": 5000}))["concepts"]) == 130  # capped at 1000
    err(c.get(A + "/concepts", params={"page": "x"}), 400, 11102)


def test_relations_post_list_inverse_and_delete_with_body(c):
    ok(c.post(A + "/concepts", json={"concepts": [{"id": "dog"}, {"id": "animal"}, {"id": "people"}]}))
    rel = ok(c.post(A + "/concepts/dog/relations", json={"concept_relations": [
        {"object_concept": {"id": "animal"}, "predicate": "hyponym"}]}))["concept_relations"][0]
    ok(c.post(A + "/concepts/people/relations", json={"concept_relations": [
        {"object_concept": {"id": "ai_l8TKp2h5", "app_id": "main", "value": 0.0}, "predicate": "synonym"}]}))
    err(c.post(A + "/concepts/dog/relations", json={"concept_relations": [
        {"object_concept": {"id": "animal"}, "predicate": "hyponym"}]}), 409, 40010)
    err(c.post(A + "/concepts/dog/relations", json={"concept_relations": [
        {"object_concept": {"id": "animal"}, "predicate": "likes"}]}), 400, 40003)
    err(c.post(A + "/concepts/dog/relations", json={"concept_relations": [
        {"object_concept": {"id": "ghost"}, "predicate": "synonym"}]}), 404, 40003)
    whole = ok(c.get(A + "/concepts/relations"))["concept_relations"]
    assert [(r["subject_concept"]["id"], r["predicate"], r["object_concept"]["id"]) for r in whole] == \
        [("dog", "hyponym", "animal"), ("people", "synonym", "ai_l8TKp2h5")]
    inverse = ok(c.get(A + "/concepts/animal/relations"))["concept_relations"]
    assert [(r["id"], r["subject_concept"]["id"], r["predicate"], r["object_concept"]["id"]) for r in inverse] == \
        [(rel["id"], "animal", "hypernym", "dog")]
    assert ok(c.get(A + "/concepts/dog/relations", params={"predicate": "synonym"}))["concept_relations"] == []
    ok(c.request("DELETE", A + "/concepts/dog/relations", json={"ids": [rel["id"]]}))
    assert len(ok(c.get(A + "/concepts/relations"))["concept_relations"]) == 1
    err(c.request("DELETE", A + "/concepts/dog/relations", json={"ids": [rel["id"]]}), 404, 40003)


# --- models and versions -------------------------------------------------------------------------------


def test_post_models_makes_the_model_and_post_model_versions_its_trained_version(c):
    bare = ok(c.post(A + "/models", json={"models": [{"id": "gt", "model_type_id": "concept-threshold"}]}))["model"]
    assert bare["model_type_id"] == "concept-thresholder"  # the old name is an alias
    assert "model_version" not in bare and ok(c.get(A + "/models/gt/versions"))["model_versions"] == []
    m = ok(c.post(A + "/models/gt/versions", json={"model_versions": [{"output_info": {
        "data": {"concepts": [{"id": "adult", "value": 0.95}]}, "params": {"concept_threshold_type": "GREATER_THAN"}}}]}))
    v = m["model"]["model_version"]
    assert len(v["id"]) == 32 and v["status"]["code"] == 21100
    assert v["output_info"]["data"]["concepts"] == [{"id": "adult", "value": 0.949999988079071}]
    # legacy singular "model"; a configuration sent with PostModels (output_info, or inside
    # model_version) is parsed, then makes no version
    m2 = ok(c.post(A + "/models", json={"model": {"id": "w", "model_type_id": "annotation-writer", "model_version": {
        "output_info": {"params": {"annotation_status": 24151}}}}}))["model"]
    assert m2["id"] == "w" and "model_version" not in m2
    assert ok(c.get(A + "/models/w/versions"))["model_versions"] == []
    err(c.post(A + "/models", json={"models": [{"id": "gt", "model_type_id": "concept-thresholder"}]}), 409, 40010)
    err(c.post(A + "/models", json={"models": [{"id": "x", "model_type_id": "no-such-type"}]}), 400, 21202)
    err(c.post(A + "/models", json={"models": [{"id": "x", "closed_environment": True}]}), 400, 11102)
    got = ok(c.get(A + "/models/gt"))["model"]
    assert got["model_version"]["id"] == v["id"] and got["output_info"] == v["output_info"]
    assert ok(c.get(A + f"/models/gt/versions/{v['id']}/output_info"))["model"]["output_info"] == v["output_info"]
    err(c.get(A + "/models/ghost"), 404, 21200)
    types = [t["id"] for t in ok(c.get(A + "/models/types"))["model_types"]]
    assert {"concept-thresholder", "annotation-writer", "concept-synonym-mapper", "embedding-classifier"} <= set(types)
    assert ok(c.get(A + "/models/types/embedding-classifier"))["model_type"]["trainable"] is True
    err(c.get(A + "/models/types/nope"), 404, 11101)


def test_versions_are_immutable_listed_newest_first(c):
    m = model(c, "gt", output_info={"data": {"concepts": [{"id": "a", "value": 0.5}]}})
    v1 = m["model_version"]["id"]
    v2 = ok(c.post(A + "/models/gt/versions", json={"model_versions": [{"output_info": {
        "data": {"concepts": [{"id": "a", "value": 0.7}]}, "params": {"concept_threshold_type": 3}}}]}))["model"]
    assert v2["model_version"]["id"] != v1
    listed = ok(c.get(A + "/models/gt/versions"))["model_versions"]
    assert [v["id"] for v in listed] == [v2["model_version"]["id"], v1]
    assert listed[1]["output_info"]["data"]["concepts"][0]["value"] == pytest.approx(0.5)
    assert ok(c.get(A + "/models/gt"))["model"]["model_version"]["id"] == v2["model_version"]["id"]
    err(c.patch(A + "/models", json={"models": [{"id": "gt", "output_info": {"data": {"concepts": []}}}],
                                    "action": "overwrite"}), 400, 21202)
    ok(c.delete(A + f"/models/gt/versions/{v1}"))
    err(c.get(A + f"/models/gt/versions/{v1}"), 404, 21200)


@pytest.mark.unlabelled
def test_trainable_versions_go_queued_training_trained(tmp_path):
    sb = Sandbox(str(tmp_path / "t.sqlite"), training_delay_s=0.4)
    with httpx.Client(transport=httpx.WSGITransport(app=sb), base_url="http://x",
                      headers={"Authorization": f"Key {DEFAULT_KEY}"}) as c:
        ok(c.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}))
        m = ok(c.post(A + "/models", json={"models": [{"id": "clf"}]}))["model"]  # default type
        assert m["model_type_id"] == "embedding-classifier" and "model_version" not in m
        # PostModelVersions on labelled inputs trains (tests/test_training.py has the whole rule)
        ok(c.post(A + "/inputs", json={"inputs": [{"data": {"image": {"url": "https://x.example/a.jpg"},
                                                            "concepts": [{"id": "a", "value": 1}]}}]}))
        t0 = time.monotonic()
        body = {"model_versions": [{"output_info": {"data": {"concepts": [{"id": "a", "value": 1}]}}}]}
        m = ok(c.post(A + "/models/clf/versions", json=body))["model"]
        seen = [m["model_version"]["status"]["code"]]
        while time.monotonic() - t0 < 3 and seen[-1] != 21100:
            time.sleep(0.05)
            seen.append(ok(c.get(A + "/models/clf"))["model"]["model_version"]["status"]["code"])
        dedup = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
        assert dedup == [21103, 21101, 21100]
        assert "completed_at" in ok(c.get(A + "/models/clf/versions"))["model_versions"][0]
    sb.close()


def test_patch_models_metadata_merge_overwrite_remove(c):
    model(c, "gt", metadata={"owner": {"team": "a", "n": 1}, "keep": True})
    merged = ok(c.patch(A + "/models", json={"models": [{"id": "gt", "metadata": {"owner": {"n": 2}, "x": [1]}}],
                                             "action": "merge"}))["models"][0]["metadata"]
    assert merged == {"owner": {"team": "a", "n": 2}, "keep": True, "x": [1]}
    removed = ok(c.patch(A + "/models", json={"models": [{"id": "gt", "metadata": {"x": True}}],
                                              "action": "remove"}))["models"][0]["metadata"]
    assert removed == {"owner": {"team": "a", "n": 2}, "keep": True}
    over = ok(c.patch(A + "/models", json={"models": [{"id": "gt", "metadata": {"only": "this"}, "description": "d"}],
                                           "action": "overwrite"}))["models"][0]
    assert over["metadata"] == {"only": "this"} and over["description"] == "d"
    assert ok(c.get(A + "/models/gt"))["model"]["metadata"] == {"only": "this"}


def test_delete_models_refuses_models_pinned_by_workflows(c):
    m = model(c, "a")
    model(c, "b")
    ok(c.post(A + "/workflows", json={"workflows": [{"id": "wf", "nodes": [
        {"id": "n", "model": {"id": "a", "model_version": {"id": m["model_version"]["id"]}}}]}]}))
    err(c.delete(A + "/models/a"), 400, 21202)
    err(c.delete(A + f"/models/a/versions/{m['model_version']['id']}"), 400, 21202)
    ok(c.request("DELETE", A + "/models", json={"ids": ["b"]}))
    ok(c.delete(A + "/workflows/wf"))
    ok(c.delete(A + "/models/a"))
    assert ok(c.get(A + "/models"))["models"] == []


# --- workflows ----------------------------------------------------------------------------------------------


def test_workflow_graph_validation(c):
    m = model(c, "t")
    vid = m["model_version"]["id"]
    base = {"id": "wf"}

    def post(nodes):
        return c.post(A + "/workflows", json={"workflows": [{**base, "nodes": nodes}]})

    err(post([{"id": "n", "model": {"id": "ghost", "model_version": {"id": vid}}}]), 404, 21200)
    err(post([{"id": "n", "model": {"id": "t", "model_version": {"id": "0" * 32}}}]), 404, 21200)
    err(post([{"id": "n", "model": {"id": "t", "model_version": {"id": vid}}, "node_inputs": [{"node_id": "x"}]}]),
        400, 22107)
    err(post([{"id": "n", "model": {"id": "t"}}, {"id": "n", "model": {"id": "t"}}]), 400, 22107)
    err(post([{"id": "a", "model": {"id": "t"}, "node_inputs": [{"node_id": "b"}]},
              {"id": "b", "model": {"id": "t"}, "node_inputs": [{"node_id": "a"}]}]), 400, 22107)
    err(post([]), 400, 22107)
    err(post([{"id": "n", "model": {"id": "general-image-recognition", "user_id": "clarifai", "app_id": "main",
                                    "model_version": {"id": "bb186755eda04f9cbb6fe32e816be104"}}}]), 404, 21200)
    wf = ok(post([{"id": "n", "model": {"id": "t"}}]))["workflows"][0]  # no version: the latest is pinned
    assert wf["nodes"][0]["model"]["model_version"]["id"] == vid
    err(post([{"id": "n", "model": {"id": "t"}}]), 409, 40010)


def test_patch_workflows_overwrite_replaces_nodes_and_merge_merges_metadata(c):
    v1 = model(c, "t")["model_version"]["id"]
    v2 = ok(c.post(A + "/models/t/versions", json={"model_versions": [{}]}))["model"]["model_version"]["id"]
    ok(c.post(A + "/workflows", json={"workflows": [{"id": "wf", "metadata": {"a": 1}, "nodes": [
        {"id": "n1", "model": {"id": "t", "model_version": {"id": v1}}},
        {"id": "n2", "model": {"id": "t", "model_version": {"id": v1}}, "node_inputs": [{"node_id": "n1"}]}]}]}))
    old_version = ok(c.get(A + "/workflows/wf"))["workflow"]["version"]["id"]
    wf = ok(c.patch(A + "/workflows", json={"action": "overwrite", "workflows": [{"id": "wf", "nodes": [
        {"id": "only", "model": {"id": "t", "model_version": {"id": v2}}}]}]}))["workflows"][0]
    assert [(n["id"], n["model"]["model_version"]["id"]) for n in wf["nodes"]] == [("only", v2)]
    assert wf["version"]["id"] != old_version
    wf = ok(c.patch(A + "/workflows", json={"action": "merge", "workflows": [
        {"id": "wf", "metadata": {"b": {"c": 2}}}]}))["workflows"][0]
    assert wf["metadata"] == {"a": 1, "b": {"c": 2}} and [n["id"] for n in wf["nodes"]] == ["only"]
    err(c.patch(A + "/workflows", json={"action": "overwrite", "workflows": [{"id": "ghost", "nodes": []}]}),
        404, 22102)
    ok(c.request("DELETE", A + "/workflows", json={"ids": ["wf"]}))
    err(c.get(A + "/workflows/wf"), 404, 22102)


# --- inputs and annotations ---------------------------------------------------------------------------------


def test_inputs_and_annotations(c):
    inp = ok(c.post(A + "/inputs", json={"inputs": [{"id": "i1", "data": {"image": {"url": "https://x/y.jpg"}}}]}))
    assert inp["inputs"][0]["status"]["code"] == 30000
    err(c.post(A + "/inputs", json={"inputs": [{"id": "i1", "data": {"image": {"url": "https://x/z.jpg"}}}]}),
        409, 40010)
    assert ok(c.get(A + "/inputs/i1"))["input"]["data"]["image"]["url"] == "https://x/y.jpg"
    # CONN_DOES_NOT_EXIST, not INPUT_DOES_NOT_EXIST: clarifai-python-grpc tests/common.py waits for it
    err(c.get(A + "/inputs/nope"), 404, 11101)
    anns = ok(c.post(A + "/annotations", json={"annotations": [
        {"id": "a1", "input_id": "i1", "data": {"concepts": [{"id": "dog", "value": 0.95}]}},
        {"id": "a2", "input_id": "i1", "data": {"concepts": [{"id": "cat", "value": 1}]},
         "status": {"code": "ANNOTATION_PENDING"}}]}))["annotations"]
    assert anns[0]["data"]["concepts"][0]["value"] == pytest.approx(0.949999988079071, abs=0)
    assert anns[1]["status"]["code"] == 24151
    err(c.post(A + "/annotations", json={"annotations": [{"input_id": "nope"}]}), 404, 30102)
    assert [a["id"] for a in ok(c.get(A + "/annotations"))["annotations"]] == ["a1"]  # trusted only
    assert [a["id"] for a in ok(c.get(A + "/annotations", params={"list_all_annotations": "True"}))["annotations"]] \
        == ["a1", "a2"]
    assert len(ok(c.get(A + "/annotations", params={"user_ids": "sandbox"}))["annotations"]) == 2
    patched = ok(c.patch(A + "/annotations", json={"action": "merge", "annotations": [
        {"id": "a2", "data": {"concepts": [{"id": "cow", "value": 1}]}, "status": {"code": 24150}}]}))["annotations"]
    assert [x["id"] for x in patched[0]["data"]["concepts"]] == ["cat", "cow"] and patched[0]["status"]["code"] == 24150
    ok(c.delete(A + "/inputs/i1"))
    assert ok(c.get(A + "/inputs"))["inputs"] == []
    assert ok(c.get(A + "/annotations", params={"list_all_annotations": "True"}))["annotations"] == []


# --- clarifai/main ------------------------------------------------------------------------------------------


def test_clarifai_main_is_readable_and_read_only(c):
    M = "/v2/users/clarifai/apps/main"
    models = {m["id"]: (m["model_version"]["id"], m["model_type_id"]) for m in ok(c.get(M + "/models"))["models"]}
    assert models == {
        "general-image-recognition": ("aa7f35c01e0642fda5cf400f543e7c40", "visual-classifier"),
        "general-image-embedding": ("bb186755eda04f9cbb6fe32e816be104", "visual-embedder"),
        "general-clusterering": ("cc2074cff6dc4c02b6f4e1b8606dcb54", "clusterer"),
        # the General and moderation models clarifai-python-grpc's client tests name by id
        "aaa03c23b3724a16a56b629203edc62c": ("aa7f35c01e0642fda5cf400f543e7c40", "visual-classifier"),
        "d16f390eb32cad478c7ae150069bd2c6": ("aa8be956dbaa4b7a858826a84253cab9", "visual-classifier")}
    names = {x["id"]: x["name"] for x in ok(c.get(M + "/concepts"))["concepts"]}
    assert names == {"ai_l8TKp2h5": "people", "ai_dxSG2s86": "man", "ai_VPmHr5bm": "adult"}
    err(c.post(M + "/concepts", json={"concepts": [{"id": "x"}]}), 403, 11007)
    err(c.delete(M + "/models/general-image-recognition"), 403, 11007)


# --- robustness, persistence, concurrency ---------------------------------------------------------------------


def test_bad_requests_get_clarifai_shaped_errors_and_the_sandbox_keeps_serving(c):
    err(c.post(A + "/concepts", content=b"{not json"), 400, 11100)
    err(c.post(A + "/concepts", content=b"[1, 2]"), 400, 11100)
    err(c.post(A + "/concepts", content=b'{"concepts": [{"id": "x", "value": NaN}]}'), 400, 11100)
    err(c.post(A + "/concepts", content=b"\xff\xfe"), 400, 11100)
    err(c.post(A + "/concepts", json={"concepts": "people"}), 400, 11102)
    err(c.post(A + "/concepts", json={"concepts": [{"id": 5}]}), 400, 40003)
    err(c.post(A + "/concepts", json={"concepts": [{"id": "x", "name": ["no"]}]}), 400, 11102)
    err(c.post(A + "/models", json={"models": [{"id": "m", "model_type_id": "concept-thresholder",
                                                "output_info": {"data": {"concepts": [{"id": "a", "value": "hi"}]}}}]}),
        400, 11102)
    err(c.post(A + "/models", json={"models": [{"id": "m", "output_info": []}]}), 400, 11102)
    err(c.post(A + "/workflows", json={"workflows": [{"id": "w", "nodes": {"a": 1}}]}), 400, 11102)
    err(c.post(A + "/annotations", json={"annotations": [{"input_id": "i", "status": {"code": "NOPE"}}]}),
        400, 11102)
    err(c.get("/v2/nowhere"), 404, 11101)
    err(c.put(A + "/concepts", json={}), 400, 11103)
    err(c.post(A + "/concepts", content=b"x", headers={"Content-Length": str(64 * 1024 * 1024)}), 413, 40033)
    assert ok(c.get(A + "/concepts"))["concepts"] == []  # nothing half-written, still serving


def test_data_survives_a_restart_and_a_failed_request_writes_nothing(tmp_path):
    path = str(tmp_path / "p.sqlite")
    hdr = {"Authorization": f"Key {DEFAULT_KEY}"}
    sb = Sandbox(path, training_delay_s=0)
    with httpx.Client(transport=httpx.WSGITransport(app=sb), base_url="http://x", headers=hdr) as c:
        ok(c.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}))
        # the second concept is a duplicate: the whole request (one transaction) is refused
        err(c.post(A + "/concepts", json={"concepts": [{"id": "a"}, {"id": "a"}]}), 400, 40003)
        ok(c.post(A + "/concepts", json={"concepts": [{"id": "b"}]}))
    sb.close()
    sb2 = Sandbox(path, training_delay_s=0)
    with httpx.Client(transport=httpx.WSGITransport(app=sb2), base_url="http://x", headers=hdr) as c:
        assert [x["id"] for x in ok(c.get(A + "/concepts"))["concepts"]] == ["b"]
        assert len(ok(c.get("/v2/users/clarifai/apps/main/models"))["models"]) == len(MAIN_MODELS)  # seeded once
    sb2.close()


def test_concurrent_requests_from_threads(c):
    def post(i: int) -> int:
        return c.post(A + "/concepts", json={"concepts": [{"id": f"c{i}"}]}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(40)))
    assert codes == [200] * 40
    assert len(ok(c.get(A + "/concepts"))["concepts"]) == 40


def test_request_log_counts_calls(c, sandbox):
    sandbox.request_log.clear()
    c.get(A + "/concepts")
    c.post(A + "/concepts", content=b"{")
    assert [(e.method, e.path, e.status) for e in sandbox.request_log] == [
        ("GET", A + "/concepts", 200), ("POST", A + "/concepts", 400)]
    assert json.dumps([e.as_dict() for e in sandbox.request_log])  # plain data
