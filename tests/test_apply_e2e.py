"""plan/apply end to end against the sandbox, counting calls in its request log (issue 4's
done-when list): examples converge, a second apply writes nothing, a threshold change is one new
version plus repoints, a revert reuses the old version, out-of-band drift is planned and undone,
removed workflows are deleted unless protected, hand-made resources are left alone."""

from __future__ import annotations

import dataclasses

import pytest
from e2e import EXAMPLES, Harness, versions_by_use

from reconciler.core.modeltypes import TRAINABLE_TYPES
from reconciler.core.state import MARKER_KEY, Model

EXAMPLE_FILES = [EXAMPLES / "auto-annotation" / "manifest.yaml", EXAMPLES / "people-synonyms" / "manifest.yaml"]


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path)


def with_model(state, model_id, **changes):
    models = tuple(dataclasses.replace(m, **changes) if m.id == model_id else m for m in state.models)
    return dataclasses.replace(state, models=models)


def thresholders(state) -> list[Model]:
    return [m for m in state.models if m.type == "concept-thresholder"]


@pytest.mark.parametrize("manifest", EXAMPLE_FILES, ids=lambda p: p.parent.name)
def test_example_converges_and_second_apply_writes_nothing(h, manifest):
    desired = h.desired(manifest)
    first = h.apply(desired)
    assert not first.empty
    assert h.writes(), "the first apply must write"
    again = h.plan(desired)
    assert again.empty, [(a.op, a.address, a.changes) for a in again.actions]
    h.clear_log()
    second = h.apply(desired)
    assert second.empty
    assert h.writes() == []
    # the app's default workflow is the manifest's
    app = h.client.get(h.base(desired.app.id))["app"]
    default = app.get("default_workflow_id") or (app.get("default_workflow") or {}).get("id")
    assert default == desired.app.default_workflow


def test_fresh_apply_write_count_is_minimal(h):
    desired = h.desired(EXAMPLE_FILES[0])
    h.apply(desired)
    writes = h.writes()
    posts = [w for w in writes if w[0] == "POST"]
    # one app, one batch of concepts, one PostModels and one PostModelVersions per model (PostModels
    # makes no version, whatever the type), one workflow, then set the default
    n_models = len(desired.models)
    assert sum(1 for w in posts if w[1].endswith("/concepts")) == 1
    assert sum(1 for w in posts if w[1].endswith("/models")) == n_models
    assert sum(1 for w in posts if w[1].endswith("/versions")) == n_models
    assert sum(1 for w in posts if w[1].endswith("/workflows")) == len(desired.workflows)
    assert all(w[2] == 200 for w in writes)


def test_threshold_change_is_one_new_version_and_repoints_then_revert_reuses(h):
    desired = h.desired(EXAMPLE_FILES[0])
    h.apply(desired)
    model = thresholders(desired)[0]
    concept, old = next(iter(model.config["thresholds"].items()))
    new = 0.5 if old != 0.5 else 0.6
    changed = with_model(desired, model.id, config={**model.config,
                                                   "thresholds": {**model.config["thresholds"], concept: new}})
    plan = h.plan(changed)
    ops = [(a.op, a.address) for a in plan.actions]
    assert ("new_version", f"model/{model.id}") in ops
    nv = next(a for a in plan.actions if a.op == "new_version")
    assert [(c.path, c.before, c.after) for c in nv.changes] == [(f"config.thresholds.{concept}", old, new)]
    users = [w.id for w in desired.workflows if any(n.model.id == model.id and not n.model.external for n in w.nodes)]
    assert sorted(a.id for a in plan.actions if a.op == "repoint") == sorted(users)
    assert len(plan.actions) == 1 + len(users)

    h.clear_log()
    h.apply(changed)
    writes = h.writes()
    assert [w[1].rsplit("/", 1)[-1] for w in writes if w[0] == "POST"] == ["versions"]
    assert h.plan(changed).empty

    # revert: the old version is reused, no third version
    revert = h.plan(desired)
    assert not [a for a in revert.actions if a.op == "new_version"]
    assert [a.op for a in revert.actions] == ["repoint"] * len(users)
    h.apply(desired)
    assert h.plan(desired).empty
    versions = h.client.list_all(f"{h.base(desired.app.id)}/models/{model.id}/versions", "model_versions")
    assert len(versions) == 2


def test_out_of_band_drift_is_planned_and_undone(h):
    desired = h.desired(EXAMPLE_FILES[1])
    h.apply(desired)
    base = h.base(desired.app.id)
    wf = desired.workflows[0]
    # 1. a concept renamed
    c = desired.concepts[0]
    h.client.patch(f"{base}/concepts", {"concepts": [{"id": c.id, "name": "renamed"}], "action": "overwrite"})
    # 2. a node pinned to another version of its model
    model = thresholders(desired)[0]
    other = h.client.post(f"{base}/models/{model.id}/versions", {"model_versions": [
        {"output_info": {"data": {"concepts": [{"id": c.id, "value": 0.11}]},
                         "params": {"concept_threshold_type": "GREATER_THAN"}}}]})["model"]["model_version"]["id"]
    raw = h.client.get(f"{base}/workflows/{wf.id}")["workflow"]
    nodes = raw["nodes"]
    for n in nodes:
        if n["model"]["id"] == model.id:
            n["model"]["model_version"] = {"id": other}
    # 3. a node removed
    leaf = next(n for n in wf.nodes if not any(n.id in m.inputs for m in wf.nodes) and n.model.id != model.id)
    nodes = [n for n in nodes if n["id"] != leaf.id]
    h.client.patch(f"{base}/workflows", {"workflows": [{"id": wf.id, "nodes": nodes}], "action": "overwrite"})
    # 4. the default workflow changed
    h.client.post(f"{base}/workflows", {"workflows": [{"id": "someone-elses", "nodes": [
        {"id": "e", "model": {"id": "general-image-embedding", "user_id": "clarifai", "app_id": "main",
                              "model_version": {"id": "bb186755eda04f9cbb6fe32e816be104"}}}]}]})
    h.client.patch("/v2/users/sandbox/apps", {"apps": [{"id": desired.app.id, "default_workflow_id": "someone-elses"}],
                                               "action": "overwrite"})

    plan = h.plan(desired)
    by = {(a.op, a.address): a for a in plan.actions}
    assert ("update", f"concept/{c.id}") in by
    assert ("update", f"workflow/{wf.id}") in by
    paths = {ch.path for ch in by[("update", f"workflow/{wf.id}")].changes}
    assert any(leaf.id in p for p in paths), paths
    assert ("set_default", f"app/{desired.app.id}") in by
    assert not [a for a in plan.actions if a.op == "delete"], "an unmanaged workflow is never deleted"
    assert any("someone-elses" in n for n in plan.notes)

    h.apply(desired)
    assert h.plan(desired).empty
    assert h.client.get(f"{base}/workflows/someone-elses")["workflow"]["id"] == "someone-elses"


def test_removed_workflow_deleted_unless_protected_and_hand_made_model_untouched(h):
    desired = h.desired(EXAMPLE_FILES[0])
    extra = dataclasses.replace(desired.workflows[0], id="extra-flow")
    kept = dataclasses.replace(desired.workflows[0], id="kept-flow", protect=True)
    h.apply(dataclasses.replace(desired, workflows=desired.workflows + (extra, kept)))
    base = h.base(desired.app.id)
    h.client.post(f"{base}/models", {"models": [{"id": "hand-made", "model_type_id": "concept-synonym-mapper",
                                                 "metadata": {"owner": "alice"}}]})
    plan = h.plan(desired)
    assert [(a.op, a.address) for a in plan.actions] == [("delete", "workflow/extra-flow")]
    assert any("kept-flow" in n and "protect" in n for n in plan.notes), plan.notes
    assert any("hand-made" in n for n in plan.notes), plan.notes
    h.clear_log()
    h.apply(desired)
    assert [(w[0], w[1].rsplit("/", 1)[-1]) for w in h.writes()] == [("DELETE", "extra-flow")]
    assert h.client.get(f"{base}/models/hand-made")["model"]["metadata"] == {"owner": "alice"}
    assert h.client.get(f"{base}/workflows/kept-flow")["workflow"]["id"] == "kept-flow"
    assert h.plan(desired).empty


def test_adopt_takes_ownership_without_recreating_and_keeps_user_metadata(h):
    desired = h.desired(EXAMPLE_FILES[0])
    h.client.post("/v2/users/sandbox/apps", {"apps": [{"id": desired.app.id}]})
    base = h.base(desired.app.id)
    writer = next(m for m in desired.models if m.type == "annotation-writer")
    h.client.post(f"{base}/models", {"models": [{"id": writer.id, "model_type_id": "annotation-writer",
                                                 "metadata": {"owner": "alice"},
                                                 "output_info": {"params": {"annotation_status": 24150}}}]})
    plan = h.plan(desired)
    assert ("adopt", f"model/{writer.id}") in [(a.op, a.address) for a in plan.actions]
    h.apply(desired)
    meta = h.client.get(f"{base}/models/{writer.id}")["model"]["metadata"]
    assert meta["owner"] == "alice" and meta[MARKER_KEY]["managed"] is True
    assert h.plan(desired).empty
    # the user's key stays even when the manifest later sets its own metadata
    h.apply(with_model(desired, writer.id, metadata={"team": "vision"}))
    meta = h.client.get(f"{base}/models/{writer.id}")["model"]["metadata"]
    assert meta["owner"] == "alice" and meta["team"] == "vision"
    # and dropping the manifest's key removes only that key
    h.apply(desired)
    meta = h.client.get(f"{base}/models/{writer.id}")["model"]["metadata"]
    assert meta["owner"] == "alice" and "team" not in meta
    assert h.plan(desired).empty


@pytest.mark.parametrize("mode, when", [("http500", "before"), ("http500", "after"), ("drop", "after")])
def test_failed_apply_says_what_was_done_and_rerun_converges(tmp_path, mode, when):
    from reconciler.core.errors import ApplyError

    h = Harness(tmp_path)
    desired = h.desired(EXAMPLE_FILES[0])
    plan = h.plan(desired)
    h.clear_log()
    h.sandbox.faults.fail_request(6, mode=mode, when=when)
    from reconciler.apply.scheduler import apply_plan
    try:
        apply_plan(h.make_client(max_retries=0), plan, poll_s=0.01)
    except ApplyError as err:
        msg = str(err)
        assert "Run apply again" in msg and "were applied" in msg
        assert err.done and err.not_done
    else:
        # request 6 is a PostModels (or, as threads go, a PostModelVersions): when its answer is
        # lost after it committed, the executor reads the model (its versions) back and carries
        # on; when it failed before committing (nothing was made), it is sent again once (issue
        # 21; PostModelVersions: re-read, then posted again). Either way the apply may finish.
        failed = [e for e in h.sandbox.request_log if e.status >= 500 or e.dropped]
        assert when == "after" or (failed[0].method, failed[0].path.rsplit("/", 1)[-1]) in (
            ("POST", "models"), ("POST", "versions"))
    assert [e for e in h.sandbox.request_log if e.status >= 500 or e.dropped], "the fault fired"
    h.sandbox.faults.clear()
    h.apply(desired)
    assert h.plan(desired).empty
    # nothing duplicated: one version per model (PostModels makes none)
    base = h.base(desired.app.id)
    for m in desired.models:
        versions, untrained = versions_by_use(h.client, base, m.id)
        assert (len(versions), len(untrained)) == (1, 0), (m.id, len(versions), len(untrained))


def test_trainable_model_is_trained_before_a_workflow_points_at_it(tmp_path):
    h = Harness(tmp_path, training_delay_s=0.3)
    desired = h.desired(EXAMPLE_FILES[0])
    messages: list[str] = []
    h.apply(desired, progress=messages.append)
    assert any("training version" in m and "elapsed" in m for m in messages)
    assert h.plan(desired).empty


def test_training_wait_is_bounded(tmp_path):
    from reconciler.apply.scheduler import apply_plan
    from reconciler.core.errors import ApplyError

    h = Harness(tmp_path, training_delay_s=30)
    desired = h.desired(EXAMPLE_FILES[0])
    with pytest.raises(ApplyError, match="not trained after"):
        apply_plan(h.client, h.plan(desired), poll_s=0.01, train_timeout_s=0.2)
    assert not any(w[1].endswith("/workflows") for w in h.writes()), "no workflow may point at an untrained version"


def test_create_that_finds_the_resource_already_there_reads_back_and_converges(h):
    """A plan made before someone (or an interrupted run) created some of its resources: the
    batched creates meet "already exists", fall back to per-resource calls and converge."""
    desired = h.desired(EXAMPLE_FILES[1])
    plan = h.plan(desired)
    h.apply(desired)  # everything now exists
    h.clear_log()
    from reconciler.apply.scheduler import apply_plan

    apply_plan(h.client, plan, poll_s=0.01)  # the stale plan: every create meets a duplicate
    assert h.plan(desired).empty
    base = h.base(desired.app.id)
    for m in desired.models:
        versions, untrained = versions_by_use(h.client, base, m.id)
        assert (len(versions), len(untrained)) == (1, 0), (m.id, len(versions), len(untrained))
    assert len(h.client.list_all(f"{base}/workflows", "workflows")) == len(desired.workflows)


def test_relation_create_meeting_existing_ones_creates_only_the_missing(h):
    desired = h.desired(EXAMPLE_FILES[1])
    plan = h.plan(desired)
    h.apply(desired)
    base = h.base(desired.app.id)
    rel = desired.relations[0]
    live = h.client.list_all(f"{base}/concepts/{rel.subject}/relations", "concept_relations")
    mine = [x for x in live if (x.get("subject_concept") or {}).get("id") == rel.subject]
    h.client.delete(f"{base}/concepts/{rel.subject}/relations", {"ids": [mine[0]["id"]]})
    from reconciler.apply.scheduler import apply_plan

    apply_plan(h.client, plan, poll_s=0.01)  # stale plan: its relation creates partly exist
    assert h.plan(desired).empty
    rels = h.client.list_all(f"{base}/concepts/relations", "concept_relations")
    assert len({x["id"] for x in rels}) == len(desired.relations)


def test_interrupted_apply_reports_progress_and_rerun_converges(h):
    """Ctrl-C in the middle of an apply (here: during the third write call): the user learns what
    was done and what was not, and a re-run converges."""
    from reconciler.apply.scheduler import apply_plan
    from reconciler.core.errors import ApplyError

    desired = h.desired(EXAMPLE_FILES[0])
    plan = h.plan(desired)

    class Interrupting:
        def __init__(self, client):
            self._client, self.writes = client, 0

        def __getattr__(self, name):
            attr = getattr(self._client, name)
            if name not in ("post", "patch", "delete"):
                return attr

            def write(*a, **kw):
                self.writes += 1
                if self.writes == 3:
                    raise KeyboardInterrupt
                return attr(*a, **kw)
            return write

    # write 1 creates the app, write 2 the five concepts, write 3 (one of the collaborators and
    # models, which are created concurrently) is interrupted; the other creations in flight may finish
    before = [f"create {a.address}" for a in plan.actions if a.kind.value in ("app", "concept") and a.op == "create"]
    total = len(plan.actions)
    assert total == 19  # the example: app, 5 concepts, 2 collaborators, 9 models, task, workflow; then the default
    with pytest.raises(ApplyError, match=rf"\(interrupted\)\. (\d+) of {total} actions were applied; (\d+) were not") as info:
        apply_plan(Interrupting(h.client), plan, poll_s=0.01)
    done, not_done = info.value.done, info.value.not_done
    assert f"{len(done)} of {len(plan.actions)} actions were applied; {len(not_done)} were not" in str(info.value)
    assert set(before) <= set(done) and not set(done) & set(not_done)
    assert sorted(done + not_done) == sorted(f"{a.op} {a.address}" for a in plan.actions)
    # the report is true: what it calls done exists, what it calls not done does not
    base = h.base(desired.app.id)
    live_models = {m["id"] for m in h.client.list_all(f"{base}/models", "models")}
    for d in done + not_done:
        op, address = d.split(" ", 1)
        kind, rid = address.split("/", 1)
        if op == "create" and kind == "model":
            assert (rid in live_models) == (d in done), d
    assert not any(d.startswith("create workflow/") for d in done)
    h.apply(desired)
    assert h.plan(desired).empty


def test_a_concept_update_sends_back_its_metadata_without_listing_the_concepts_again(h):
    desired = h.desired(EXAMPLE_FILES[0])
    h.apply(desired)
    concept = desired.concepts[0]
    base = h.base(desired.app.id)
    # the user's own metadata on a managed concept, which the manifest does not manage
    h.client.patch(f"{base}/concepts", {"concepts": [{"id": concept.id, "name": concept.name,
                                                      "metadata": {"owner": "alice"}}], "action": "overwrite"})
    changed = dataclasses.replace(desired, concepts=tuple(
        dataclasses.replace(c, description="renamed by the manifest") if c.id == concept.id else c for c in desired.concepts))
    h.clear_log()
    h.apply(changed)
    concept_lists = [e for e in h.log() if e[0] == "GET" and e[1] == f"{base}/concepts"]
    assert len(concept_lists) == 1  # the plan's read; the overwrite reuses what it returned
    live = next(c for c in h.client.list_all(f"{base}/concepts", "concepts") if c["id"] == concept.id)
    assert live.get("definition") == "renamed by the manifest" and live.get("metadata") == {"owner": "alice"}
    assert h.plan(changed).empty


@pytest.mark.parametrize("mode", ["http500", "drop"])
def test_a_model_create_that_failed_before_committing_is_sent_again(h, mode):
    """PostModels goes without transport retries (a repeat could duplicate); when its answer is a
    5xx or a dropped connection and nothing was made, apply sends it again instead of posting a
    version to a model that does not exist (found by issue 21's retry-event test)."""
    desired = h.desired("m.yaml", "app: {id: one-model}\nmodels:\n  - {id: w, type: annotation-writer, annotation_status: SUCCESS}\n")
    plan = h.plan(desired)
    h.clear_log()
    h.sandbox.faults.fail_request(2, mode=mode, when="before")  # 1: PostApps, 2: PostModels
    from reconciler.apply.scheduler import apply_plan

    apply_plan(h.client, plan, poll_s=0.01)
    assert [e.path.rsplit("/", 1)[-1] for e in h.sandbox.request_log if e.method == "POST"][:3] == ["apps", "models", "models"]
    assert h.plan(desired).empty
    versions, _ = versions_by_use(h.client, h.base("one-model"), "w")
    assert len(versions) == 1
