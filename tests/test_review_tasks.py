"""Review tasks, collaborators and the annotation-writer that writes into a task (issue 22, items 1
and 2): validate, plan, apply against the sandbox, converge; the done-when of the issue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from e2e import Harness

from reconciler.core.errors import ManifestError, PlanError
from reconciler.core.state import NEW_TASK, Kind
from reconciler.manifest.load import load_text
from reconciler.planning.actions import Op
from reconciler.planning.plan import make_plan

BASE = """
app:
  id: park
concepts:
  - id: walker
  - id: runner
collaborators:
  - id: alice
  - id: carol
tasks:
  - id: review-park
    name: Review park activity
    concepts: [walker, runner]
    input_source: {type: ALL_INPUTS}
    workers: [alice]
    review: {strategy: MANUAL, reviewers: [carol], sample_percentage: 100}
models:
  - id: write-pending
    type: annotation-writer
    annotation_status: PENDING
    task: review-park
"""


def ops(plan):
    return [(a.op.value, a.address) for a in plan.actions]


def raw_tasks(h: Harness) -> list[dict]:
    return h.client.list_all(h.base("park") + "/tasks", "tasks")


def writer_task_ids(h: Harness) -> list[str]:
    versions = h.client.list_all(h.base("park") + "/models/write-pending/versions", "model_versions")
    return [v["output_info"]["params"].get("task_id") for v in versions]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_a_manifest_with_a_review_task_validates():
    s = load_text(BASE, "m.yaml")
    t = s.task("review-park")
    assert t is not None and (t.name, t.concepts, t.workers, t.review_strategy, t.reviewers) == (
        "Review park activity", ("walker", "runner"), ("alice",), "MANUAL", ("carol",))
    assert s.model("write-pending").config["task"] == "review-park"
    assert s.sections == {Kind.TASK, Kind.COLLABORATOR}


def test_apply_creates_the_task_and_the_writer_carries_its_id_then_plan_is_empty(h: Harness):
    desired = h.desired("m.yaml", BASE)
    plan = h.plan(desired)
    assert ops(plan)[:1] == [("create", "app/park")]
    assert ops(plan).index(("create", "task/review-park")) < ops(plan).index(("create", "model/write-pending"))
    h.apply(desired)
    [task] = raw_tasks(h)
    assert task["name"] == "Review park activity"
    assert [c["concept"]["id"] for c in task["concepts"]] == ["walker", "runner"]
    assert task["worker"]["workers"] == [{"user": {"id": "alice"}}]
    assert task["review"]["strategy"] == 2 and task["review"]["users"] == [{"id": "carol"}]  # MANUAL
    assert writer_task_ids(h) == [task["id"]]
    assert h.plan(desired).empty
    h.clear_log()
    h.apply(desired)
    assert h.writes() == []


def test_a_review_change_updates_the_same_task_in_place_and_converges(h: Harness):
    h.apply(h.desired("m.yaml", BASE))
    [before] = raw_tasks(h)
    changed = h.desired("m.yaml", BASE.replace("reviewers: [carol], sample_percentage: 100",
                                              "reviewers: [carol, alice], sample_percentage: 50"))
    plan = h.plan(changed)
    assert ops(plan) == [("update", "task/review-park")]
    assert {c.path for c in plan.actions[0].changes} == {"review.reviewers", "review.sample_percentage"}
    h.clear_log()
    h.apply(changed)
    assert [w[0] for w in h.writes()] == ["PATCH"]  # PatchTasks, the whole task, in place
    [after] = raw_tasks(h)
    assert after["id"] == before["id"] and [u["id"] for u in after["review"]["users"]] == ["carol", "alice"]
    assert writer_task_ids(h) == [before["id"]]  # the writer is untouched
    assert h.plan(changed).empty


def test_removing_the_task_deletes_it(h: Harness):
    h.apply(h.desired("m.yaml", BASE))
    gone = BASE.split("tasks:")[0] + "tasks: []\n" + "models:" + BASE.split("models:")[1].replace("    task: review-park\n", "")
    desired = h.desired("m.yaml", gone)
    plan = h.plan(desired)
    assert ("delete", "task/review-park") in ops(plan) and ("new_version", "model/write-pending") in ops(plan)
    h.apply(desired)
    assert raw_tasks(h) == []
    assert h.plan(desired).empty


def test_a_task_with_a_new_id_makes_a_new_writer_version(h: Harness):
    h.apply(h.desired("m.yaml", BASE))
    [old] = raw_tasks(h)
    renamed = h.desired("m.yaml", BASE.replace("review-park", "review-park-2"))
    plan = h.plan(renamed)
    assert ("create", "task/review-park-2") in ops(plan) and ("delete", "task/review-park") in ops(plan)
    nv = next(a for a in plan.actions if a.address == "model/write-pending")
    assert nv.op is Op.NEW_VERSION and nv.desired.config["task_id"] == NEW_TASK + "review-park-2"
    h.apply(renamed)
    [new] = raw_tasks(h)
    assert new["id"] != old["id"] and writer_task_ids(h)[0] == new["id"]
    assert h.plan(renamed).empty


def test_a_task_recreated_out_of_band_gets_the_writer_a_new_version(h: Harness):
    desired = h.desired("m.yaml", BASE)
    h.apply(desired)
    [old] = raw_tasks(h)
    h.client.delete(h.base("park") + "/tasks", {"ids": [old["id"]]})
    plan = h.plan(desired)
    assert ("create", "task/review-park") in ops(plan) and ("new_version", "model/write-pending") in ops(plan)
    h.apply(desired)
    [new] = raw_tasks(h)
    assert set(writer_task_ids(h)) == {old["id"], new["id"]} and h.plan(desired).empty


def test_workers_must_be_the_owner_or_collaborators():
    with pytest.raises(ManifestError) as err:
        load_text(BASE.replace("  id: park\n", "  id: park\n  user_id: sandbox\n").replace("workers: [alice]", "workers: [bob]"), "m.yaml")
    assert "m.yaml:16:15: worker 'bob' is neither the app owner nor a collaborator" in str(err.value)
    # without app.user_id the owner is known only at plan time
    desired = dataclasses.replace(load_text(BASE.replace("workers: [alice]", "workers: [bob]"), "m.yaml"), user_id="sandbox")
    with pytest.raises(PlanError, match="task review-park: bob is neither the app owner \\(sandbox\\) nor a collaborator"):
        make_plan(desired, None)
    owner_works = BASE.replace("workers: [alice]", "workers: [sandbox]")
    assert make_plan(dataclasses.replace(load_text(owner_works, "m.yaml"), user_id="sandbox"), None).actions


@pytest.mark.parametrize("edit,message", [
    (("task: review-park", "task: review-prk"), "task 'review-prk' is not a task of this manifest (did you mean 'review-park'?)"),
    (("task: review-park", "task: review-park\n    task_id: abc"), "give `task` (a task of this manifest) or `task_id`"),
    (("concepts: [walker, runner]", "concepts: [walker, jogger]"), "task concept 'jogger' is not a declared concept"),
    (("strategy: MANUAL, reviewers: [carol], sample_percentage: 100", "strategy: MANUAL"), "a MANUAL review needs reviewers"),
    (("strategy: MANUAL, reviewers: [carol], sample_percentage: 100", "strategy: NONE, sample_percentage: 5"),
     "'sample_percentage' is a setting of MANUAL review; this review is NONE"),
    (("{type: ALL_INPUTS}", "{type: DATASET}"), "input source DATASET needs 'dataset'"),
    (("{type: ALL_INPUTS}", "{type: ALL_INPUTS, id: x}"), "'id' is not used by input source ALL_INPUTS"),
    (("  - id: carol\n", "  - id: carol\n  - id: carol\n"), "duplicate collaborator 'carol'"),
    (("    workers: [alice]\n", "    workers: [alice]\n    partition: {type: EVENLY}\n"),
     "'partition' is a setting of worker_strategy PARTITIONED"),
])
def test_review_side_mistakes_are_one_line_each(edit, message):
    with pytest.raises(ManifestError) as err:
        load_text(BASE.replace(*edit), "m.yaml")
    assert message in str(err.value) and "\n" not in str(err.value).strip()


def test_collaborators_are_created_updated_and_removed(h: Harness):
    h.apply(h.desired("m.yaml", BASE))
    people = lambda: {c["user"]["id"]: c["scopes"] for c in h.client.list_all(h.base("park") + "/collaborators", "collaborators")}  # noqa: E731
    assert set(people()) == {"alice", "carol"} and len(people()["alice"]) == 7  # LABELER_SCOPES
    scoped = h.desired("m.yaml", BASE.replace("  - id: carol\n", "  - id: carol\n    scopes: [Annotations_Get, Tasks_Get]\n"))
    assert ops(h.plan(scoped)) == [("update", "collaborator/carol")]
    h.apply(scoped)
    assert people()["carol"] == ["Annotations_Get", "Tasks_Get"] and h.plan(scoped).empty
    # a manifest with the list names all of them: bob, added by hand, is removed
    h.client.post(h.base("park") + "/collaborators", {"collaborators": [{"user": {"id": "bob"}}]})
    assert ops(h.plan(scoped)) == [("delete", "collaborator/bob")]
    h.apply(scoped)
    assert set(people()) == {"alice", "carol"}
    # without the key, collaborators are left alone (not even read)
    h.client.post(h.base("park") + "/collaborators", {"collaborators": [{"user": {"id": "bob"}}]})
    bare = h.desired("m.yaml", "app:\n  id: park\nconcepts:\n  - id: walker\n  - id: runner\n")
    h.clear_log()
    assert ops(h.plan(bare)) == [("delete", "model/write-pending")]
    assert not any("/collaborators" in path or "/tasks" in path for _m, path, _s in h.log())


def test_a_task_posted_twice_after_a_lost_answer_is_found_by_its_marker_and_the_twin_deleted(h: Harness):
    from reconciler.api.transport import sandbox_transport
    from reconciler.apply.scheduler import apply_plan
    from reconciler.sandbox.faults import DroppedConnection

    dropped: list[str] = []

    def lossy(environ, start_response):
        """The first PostTasks commits, then its answer is lost (the connection drops)."""
        body = h.sandbox(environ, start_response)
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/tasks") and not dropped:
            dropped.append(environ["PATH_INFO"])
            raise DroppedConnection("answer lost")
        return body

    desired = h.desired("m.yaml", BASE)
    from e2e import SECRET_PAT

    from reconciler.api.client import Client

    client = Client("http://sandbox.local", SECRET_PAT, user_id="sandbox", transport=sandbox_transport(lossy), rate_limit=0)
    apply_plan(client, h.plan(desired), poll_s=0.01)
    assert dropped, "the fault never fired"
    assert len(raw_tasks(h)) == 1 and writer_task_ids(h) == [raw_tasks(h)[0]["id"]]
    assert h.plan(desired).empty
    # a twin made anyway (two applies racing) is deleted by the next plan
    twin = dict(raw_tasks(h)[0])
    for k in ("id", "created_at", "modified_at", "app_id", "user_id"):
        twin.pop(k, None)
    h.client.post(h.base("park") + "/tasks", {"tasks": [twin]})
    plan = h.plan(desired)
    assert [(a.op.value, a.kind.value, a.id.startswith("review-park~")) for a in plan.actions] == [("delete", "task", True)]
    h.apply(desired)
    assert len(raw_tasks(h)) == 1 and h.plan(desired).empty


def test_a_collaborator_reviews_but_cannot_change_the_app(h: Harness):
    h.apply(h.desired("m.yaml", BASE))
    carol = h.client_as("carol")
    assert carol.get(h.base("park") + "/tasks")["tasks"]
    from reconciler.core.errors import ApiError

    with pytest.raises(ApiError) as err:
        carol.post(h.base("park") + "/concepts", {"concepts": [{"id": "x"}]})
    assert err.value.http_status == 403
    bob = h.client_as("bob")  # not a collaborator
    with pytest.raises(ApiError):
        bob.get(h.base("park") + "/tasks")


def test_export_round_trip_of_the_review_side(h: Harness):
    from reconciler.planning.export import export_app

    text = BASE + """datasets:
  - id: park-eval
    description: audit sample
    version: {description: round 1, metadata: {round: 1}}
"""
    h.apply(h.desired("m.yaml", text))
    exported, warnings = export_app(h.client, "park", user_id="sandbox")
    assert warnings == []
    state = load_text(exported, "exported.yaml")
    assert state.model("write-pending").config["task"] == "review-park"  # named by its manifest id
    t = state.task("review-park")
    assert (t.workers, t.reviewers, t.review_params) == (("alice",), ("carol",), {"sample_percentage": 100.0})
    assert state.dataset("park-eval").version == {"description": "round 1", "metadata": {"round": 1}}
    assert h.plan(h.desired("exported.yaml", exported)).empty


def test_an_unmanaged_task_is_left_alone_and_not_exported(h: Harness):
    from reconciler.planning.export import export_app

    desired = h.desired("m.yaml", BASE)
    h.apply(desired)
    h.client.post(h.base("park") + "/tasks", {"tasks": [{"name": "made by hand", "type": "CONCEPTS_CLASSIFICATION"}]})
    plan = h.plan(desired)
    assert plan.empty and any("unmanaged" in n and "task/" in n for n in plan.notes)
    _text, warnings = export_app(h.client, "park", user_id="sandbox")
    assert any("not managed by the tool" in w for w in warnings)


def test_a_sample_percentage_the_api_drops_is_no_perpetual_difference(h: Harness):
    """The proto calls TaskReviewManualStrategyInfo.sample_percentage deprecated and unused: a
    server that does not store it must not make every plan update the task."""
    desired = h.desired("m.yaml", BASE)
    h.apply(desired)
    [task] = raw_tasks(h)
    task["review"].pop("manual_strategy_info")
    for k in ("created_at", "modified_at", "app_id", "user_id", "status"):
        task.pop(k, None)
    h.client.patch(h.base("park") + "/tasks", {"action": "overwrite", "tasks": [task]})
    assert "manual_strategy_info" not in raw_tasks(h)[0]["review"]
    assert h.plan(desired).empty


FULL = BASE.replace("""    workers: [alice]
    review: {strategy: MANUAL, reviewers: [carol], sample_percentage: 100}
""", """    workers: [alice, carol]
    worker_strategy: PARTITIONED
    partition: {type: WEIGHTED, workers_per_input: 1, weights: {alice: 3, carol: 1}}
    review: {strategy: CONSENSUS, reviewers: [carol], approval_threshold_labelers: 2, approval_threshold_reviewers: 1}
    priority: HIGH
    sample_ms: 500
    metadata: {team: vision}
""").replace("input_source: {type: ALL_INPUTS}", "input_source: {type: DATASET, dataset: park-eval}") + """datasets:
  - id: park-eval
    version: {description: round 1}
"""


def test_every_task_field_applies_and_converges_and_the_dataset_comes_first(h: Harness):
    desired = h.desired("m.yaml", FULL)
    plan = h.plan(desired)
    assert ops(plan).index(("create", "dataset/park-eval")) < ops(plan).index(("create", "task/review-park"))
    h.apply(desired)
    [t] = raw_tasks(h)
    assert t["worker"]["partitioned_strategy_info"] == {"type": 2, "workers_per_input": 1, "weights": {"alice": 3.0, "carol": 1.0}}
    assert t["review"]["consensus_strategy_info"] == {"approval_threshold_labelers": 2, "approval_threshold_reviewers": 1}
    assert (t["priority"], t["sample_ms"], t["input_source"]) == (3, 500, {"type": 3, "id": "park-eval"})
    assert t["metadata"]["team"] == "vision"
    assert h.plan(desired).empty
    # a version definition that changes makes a new dataset version; the task is untouched
    changed = h.desired("m.yaml", FULL.replace("round 1", "round 2"))
    assert ops(h.plan(changed)) == [("new_version", "dataset/park-eval")]
    h.apply(changed)
    assert len(h.client.list_all(h.base("park") + "/datasets/park-eval/versions", "dataset_versions")) == 2
    assert h.plan(changed).empty


def test_a_saved_plan_with_the_review_side_round_trips():
    import json

    from reconciler.planning.serialize import plan_from_file_dict, plan_to_file_dict

    desired = dataclasses.replace(load_text(FULL, "m.yaml"), user_id="sandbox")
    plan = make_plan(desired, None, endpoint="https://api.clarifai.com")
    back = plan_from_file_dict(json.loads(json.dumps(plan_to_file_dict(plan))))
    assert back.actions == plan.actions and back.desired == plan.desired
    assert back.desired.sections == plan.desired.sections and back.desired.task("review-park") == desired.task("review-park")


@pytest.mark.parametrize("kind,item,where", [
    ("tasks", {"id": "t1", "worker": "alice"}, "tasks[0].worker is a string, not an object"),
    ("tasks", {"id": "t1", "review": {"users": [{"id": 7}]}}, "tasks[0].review.users[0].id is a number, not a string"),
    ("tasks", {"id": "t1", "concepts": [{"concept": {"id": "walker"}, "auto_annotation_config": {"threshold_range": {"lower": "0.9"}}}]},
     "tasks[0].concepts[0].auto_annotation_config.threshold_range.lower is a string, not a number"),
    ("collaborators", {"id": "c1", "user": {"id": ["carol"]}}, "collaborators[0].user.id is a list, not a string"),
    ("datasets", {"id": "d1", "metadata": []}, "datasets[0].metadata is a list, not an object"),
])
def test_a_review_side_answer_of_the_wrong_shape_is_one_error_naming_the_field(kind, item, where):
    from reconciler.api import liveshape
    from reconciler.core.errors import ApiError

    with pytest.raises(ApiError, match="unexpected response shape: " + where.replace("[", r"\[").replace("]", r"\]")):
        liveshape.check(kind, [item], "GET", "/v2/users/u/apps/a/" + kind)
