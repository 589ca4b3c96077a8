"""The sandbox's review side at the HTTP level, every answer parsed into clarifai-grpc's response
message (the `sandbox_app` fixture): collaborators, datasets and versions, tasks, and reviews
through PutTaskAssignments changing annotation statuses in place (issue 22, item 7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.sandbox.app import DEFAULT_USER, Sandbox

UA = f"/v2/users/{DEFAULT_USER}/apps/park"
SUCCESS, PENDING, AWAITING, DENIED = 24150, 24151, 24157, 24158


def ok(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert body["status"]["code"] == 10000, body
    return body


def as_user(client: httpx.Client, key: str) -> dict[str, str]:
    return {"Authorization": f"Key {key}"}


@pytest.fixture
def app(sandbox: Sandbox, sandbox_client: httpx.Client) -> httpx.Client:
    sandbox.add_key("key-carol", "carol")
    sandbox.add_key("key-alice", "alice")
    sandbox.add_key("key-bob", "bob")
    sandbox.known_users = frozenset()  # only the keys' users exist: "nobody" does not
    c = sandbox_client
    ok(c.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": "park"}]}))
    ok(c.post(UA + "/concepts", json={"concepts": [{"id": "walker"}, {"id": "runner"}]}))
    ok(c.post(UA + "/collaborators", json={"collaborators": [{"user": {"id": "carol"}, "scopes": ["Tasks_Get"]},
                                                              {"user": {"id": "alice"}}]}))
    return c


def task_body(**over: Any) -> dict[str, Any]:
    t = {"type": "CONCEPTS_CLASSIFICATION", "name": "Review park", "concepts": [{"concept": {"id": "walker"}}],
         "worker": {"strategy": "DYNAMIC", "workers": [{"user": {"id": "alice"}}]},
         "input_source": {"type": "ALL_INPUTS"},
         "review": {"strategy": "MANUAL", "users": [{"id": "carol"}], "manual_strategy_info": {"sample_percentage": 100}},
         "metadata": {"k": "v"}}
    return {**t, **over}


def test_collaborators_are_known_users_once_each_and_not_the_owner(app: httpx.Client):
    listed = ok(app.get(UA + "/collaborators"))
    assert {c["user"]["id"] for c in listed["collaborators"]} == {"carol", "alice"}
    assert listed["app_owner"]["id"] == DEFAULT_USER
    for who, code in (("nobody", 11101), ("carol", 40010), (DEFAULT_USER, 11102)):
        body = app.post(UA + "/collaborators", json={"collaborators": [{"user": {"id": who}}]}).json()
        assert body["status"]["code"] == code, (who, body)
    carol = next(c for c in listed["collaborators"] if c["user"]["id"] == "carol")
    ok(app.patch(UA + "/collaborators", json={"action": "overwrite", "collaborators": [{"id": carol["id"], "scopes": ["A_B"]}]}))
    ok(app.request("DELETE", UA + "/collaborators", json={"collaborator_ids": [carol["id"]]}))
    assert {c["user"]["id"] for c in ok(app.get(UA + "/collaborators"))["collaborators"]} == {"alice"}


def test_tasks_get_server_ids_are_overwritten_in_place_and_deleted(app: httpx.Client):
    made = ok(app.post(UA + "/tasks", json={"tasks": [task_body()]}))["tasks"][0]
    tid = made["id"]
    assert len(tid) == 32 and made["review"]["strategy"] == 2 and made["worker"]["strategy"] == 4
    # PatchTasks replaces the whole task: what is not sent is gone
    patched = ok(app.patch(UA + "/tasks", json={"action": "overwrite", "tasks": [
        task_body(id=tid, name="Renamed", metadata={}, review={"strategy": "NONE"})]}))["tasks"][0]
    assert (patched["id"], patched["name"], patched["review"]["strategy"], patched.get("metadata")) == (tid, "Renamed", 1, {})
    assert ok(app.get(UA + f"/tasks/{tid}"))["task"]["created_at"] == made["created_at"]
    assert [t["id"] for t in ok(app.get(UA + "/tasks"))["tasks"]] == [tid]
    ok(app.request("DELETE", UA + "/tasks", json={"ids": [tid]}))
    assert app.get(UA + f"/tasks/{tid}").json()["status"]["code"] == 11101


@pytest.mark.parametrize("change,code", [
    ({"concepts": [{"concept": {"id": "jogger"}}]}, 40003),
    ({"worker": {"strategy": "FULL", "workers": [{"user": {"id": "bob"}}]}}, 11102),
    ({"review": {"strategy": "MANUAL", "users": [{"id": "bob"}]}}, 11102),
    ({"input_source": {"type": "DATASET", "id": "nope"}}, 11101),
    ({"worker": {"strategy": "FULL", "workers": [{"model": {"id": "nope"}}]}}, 21200),
])
def test_tasks_refuse_what_the_app_does_not_have(app: httpx.Client, change: dict, code: int):
    assert app.post(UA + "/tasks", json={"tasks": [task_body(**change)]}).json()["status"]["code"] == code


def test_datasets_versions_are_snapshots_of_their_inputs(app: httpx.Client):
    ok(app.post(UA + "/datasets", json={"datasets": [{"id": "eval", "description": "d"}]}))
    assert app.post(UA + "/datasets", json={"datasets": [{"id": "eval"}]}).json()["status"]["code"] == 40010
    ok(app.post(UA + "/inputs", json={"inputs": [{"id": "i1", "data": {"image": {"url": "https://x/1.jpg"}}, "dataset_ids": ["eval"]},
                                                 {"id": "i2", "data": {"image": {"url": "https://x/2.jpg"}}}]}))
    ok(app.post(UA + "/datasets/eval/inputs", json={"dataset_inputs": [{"input": {"id": "i2"}}]}))
    assert [d["input"]["id"] for d in ok(app.get(UA + "/datasets/eval/inputs"))["dataset_inputs"]] == ["i1", "i2"]
    v = ok(app.post(UA + "/datasets/eval/versions", json={"dataset_versions": [{"description": "r1", "metadata": {"r": 1}}]}))
    vid = v["dataset_versions"][0]["id"]
    assert v["dataset_versions"][0]["status"]["code"] == 64015
    got = ok(app.get(UA + f"/datasets/eval/versions/{vid}"))["dataset_version"]
    assert (got["description"], got["metadata"], got["dataset_id"]) == ("r1", {"r": 1}, "eval")
    ok(app.patch(UA + "/datasets", json={"action": "merge", "datasets": [{"id": "eval", "metadata": {"m": 1}}]}))
    assert ok(app.get(UA + "/datasets/eval"))["dataset"]["metadata"] == {"m": 1}
    ok(app.request("DELETE", UA + "/datasets", json={"dataset_ids": ["eval"]}))
    assert ok(app.get(UA + "/inputs/i1"))["input"].get("dataset_ids") == []


def _pending_annotations(app: httpx.Client, tid: str) -> None:
    """Two inputs with a PENDING annotation each, written into the task as the owner."""
    ok(app.post(UA + "/inputs", json={"inputs": [{"id": f"i{n}", "data": {"image": {"url": f"https://x/{n}.jpg"}}} for n in (1, 2)]}))
    ok(app.post(UA + "/annotations", json={"annotations": [
        {"input_id": f"i{n}", "task_id": tid, "status": {"code": PENDING}, "data": {"concepts": [{"id": "walker", "value": 0.7}]}}
        for n in (1, 2)]}))


def statuses(app: httpx.Client, tid: str) -> dict[str, int]:
    anns = ok(app.get(UA + "/annotations", params={"task_id": tid, "list_all_annotations": "true"}))["annotations"]
    return {a["input_id"]: a["status"]["code"] for a in anns}


def test_a_reviewer_approves_and_rejects_through_the_task_and_annotations_change_in_place(app: httpx.Client):
    tid = ok(app.post(UA + "/tasks", json={"tasks": [task_body()]}))["tasks"][0]["id"]
    _pending_annotations(app, tid)
    carol = as_user(app, "key-carol")
    started = ok(app.put(UA + f"/tasks/{tid}/assignments", json={"action": "REVIEW_START",
                                                                 "review_start_config": {"workers": [{"user": {"id": "carol"}}]}},
                         headers=carol))["task_assignments"]
    assert sorted(a["input"]["id"] for a in started) == ["i1", "i2"] and {a["status"]["code"] for a in started} == {54202}
    by_input = {a["input"]["id"]: a["id"] for a in started}
    ok(app.put(UA + f"/tasks/{tid}/assignments", headers=carol, json={
        "action": "REVIEW_APPROVE", "review_approve_config": {"task_assignments": [{"id": by_input["i1"]}]}}))
    ok(app.put(UA + f"/tasks/{tid}/assignments", headers=carol, json={
        "action": "REVIEW_REJECT", "review_reject_config": {"task_assignments": [{"id": by_input["i2"]}]}}))
    assert statuses(app, tid) == {"i1": SUCCESS, "i2": DENIED}
    # request changes sends the approved one back to PENDING; ids of the annotations are kept
    ok(app.put(UA + f"/tasks/{tid}/assignments", headers=carol, json={
        "action": "REVIEW_REQUEST_CHANGES", "review_request_changes_config": {"task_assignments": [{"id": by_input["i1"]}]}}))
    assert statuses(app, tid) == {"i1": PENDING, "i2": DENIED}


def test_only_reviewers_review_and_strangers_see_nothing(app: httpx.Client):
    tid = ok(app.post(UA + "/tasks", json={"tasks": [task_body()]}))["tasks"][0]["id"]
    _pending_annotations(app, tid)
    start = {"action": "REVIEW_START", "review_start_config": {}}
    assert app.put(UA + f"/tasks/{tid}/assignments", json=start, headers=as_user(app, "key-alice")).json()["status"]["code"] == 11007
    assert app.put(UA + f"/tasks/{tid}/assignments", json=start, headers=as_user(app, "key-bob")).json()["status"]["code"] == 11007
    assert app.get(UA + "/tasks", headers=as_user(app, "key-bob")).json()["status"]["code"] == 11007
    # a collaborator reads but does not change the app
    assert app.get(UA + "/tasks", headers=as_user(app, "key-alice")).json()["status"]["code"] == 10000
    assert app.post(UA + "/concepts", json={"concepts": [{"id": "x"}]}, headers=as_user(app, "key-alice")).json()["status"]["code"] == 11007


def test_a_worker_labels_then_submits_for_review(app: httpx.Client):
    tid = ok(app.post(UA + "/tasks", json={"tasks": [task_body()]}))["tasks"][0]["id"]
    ok(app.post(UA + "/inputs", json={"inputs": [{"id": "i1", "data": {"image": {"url": "https://x/1.jpg"}}}]}))
    alice = as_user(app, "key-alice")
    [a] = ok(app.put(UA + f"/tasks/{tid}/assignments", json={"action": "LABEL_START"}, headers=alice))["task_assignments"]
    assert a["status"]["code"] == 54201 and a["input"]["id"] == "i1"
    ok(app.post(UA + "/annotations", headers=alice, json={"annotations": [
        {"input_id": "i1", "task_id": tid, "status": {"code": PENDING}, "data": {"concepts": [{"id": "walker"}]}}]}))
    [s] = ok(app.put(UA + f"/tasks/{tid}/assignments", headers=alice, json={
        "action": "LABEL_SUBMIT", "label_submit_config": {"task_assignments": [{"id": a["id"]}]}}))["task_assignments"]
    assert s["status"]["code"] == 54202  # MANUAL review: awaiting review
    anns = ok(app.get(UA + "/annotations", params={"task_id": tid, "list_all_annotations": "true"}))["annotations"]
    assert [x["status"]["code"] for x in anns if x["user_id"] == "alice"] == [AWAITING]


def test_without_a_user_list_any_user_can_be_made_a_collaborator(sandbox: Sandbox, sandbox_client: httpx.Client):
    ok(sandbox_client.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": "park"}]}))
    ok(sandbox_client.post(UA + "/collaborators", json={"collaborators": [{"user": {"id": "someone-new"}}]}))
