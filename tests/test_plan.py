"""make_plan semantics: one test per rule (README, "Plans")."""

from __future__ import annotations

import dataclasses

import pytest
from plan_fixtures import CONCEPTS, USER, applied, desired_state, model, people_synonyms, vid, with_model, with_workflow

from reconciler.core.errors import PlanError
from reconciler.core.state import App, Concept, ConceptRef, ConceptRelation, Kind, ModelRef, ModelVersion, Node, State, Workflow
from reconciler.planning.diff import ABSENT, Change
from reconciler.planning.plan import make_plan


def ops(plan):
    return [(a.op, f"{a.kind.value}/{a.id}") for a in plan.actions]


def test_equal_states_give_an_empty_plan():
    d = desired_state()
    plan = make_plan(d, applied(d), live_fingerprint="fp")
    assert plan.empty
    assert plan.actions == ()
    assert plan.notes == ()
    assert plan.summary() == dict.fromkeys(
        ("create", "update", "adopt", "new_version", "repoint", "set_default", "delete"), 0)
    assert plan.live_fingerprint == "fp"


def test_empty_states_and_people_synonyms_round_trip_empty():
    d = people_synonyms()
    assert make_plan(d, applied(d)).empty


def test_missing_app_creates_everything_in_dependency_order():
    d = desired_state()
    plan = make_plan(d, None)
    assert ops(plan) == (
        [("create", "app/auto-annotation")]
        + [("create", f"concept/{c}") for c in sorted(CONCEPTS)]
        + [("create", f"model/{m}") for m in ("greater-than", "less-than", "park-classifier",
                                               "write-pending", "write-success")]
        + [("create", "workflow/auto-annotate"), ("set_default", "app/auto-annotation")])
    wf = next(a for a in plan.actions if a.kind is Kind.WORKFLOW)
    assert dict(wf.pins) == {n: f"new:{m}" for n, m in [
        ("classify", "park-classifier"), ("greater-than", "greater-than"), ("less-than", "less-than"),
        ("write-success", "write-success"), ("write-pending", "write-pending")]}
    assert plan.summary()["create"] == 12


def test_ordering_is_deterministic_whatever_the_input_order():
    d = desired_state()
    shuffled = dataclasses.replace(d, concepts=tuple(reversed(d.concepts)), models=tuple(reversed(d.models)))
    assert ops(make_plan(d, None)) == ops(make_plan(shuffled, None))


def test_threshold_change_is_a_new_version_and_a_repoint():
    live = applied(desired_state())
    plan = make_plan(desired_state(walker=0.9), live)
    assert ops(plan) == [("new_version", "model/greater-than"), ("repoint", "workflow/auto-annotate")]
    nv, rp = plan.actions
    assert nv.changes == (Change("config.thresholds.walker", 0.95, 0.9),)
    assert rp.changes == (Change("nodes.greater-than.model.version", vid("greater-than"), "new:greater-than"),)
    # every local node is pinned; only the changed one moves
    assert dict(rp.pins)["greater-than"] == "new:greater-than"
    assert dict(rp.pins)["less-than"] == vid("less-than")
    assert plan.summary()["new_version"] == 1 and plan.summary()["repoint"] == 1


def test_revert_reuses_the_old_version():
    old = applied(desired_state())
    gt_old = old.model("greater-than")
    v2 = ModelVersion(vid("greater-than", 2), {**gt_old.config, "thresholds": {**gt_old.config["thresholds"], "walker": 0.9}})
    live = with_model(old, "greater-than", config=v2.config, version_id=v2.id, versions=(v2, *gt_old.versions))
    live = with_workflow(live, "auto-annotate", nodes=tuple(
        dataclasses.replace(n, model=dataclasses.replace(n.model, version=v2.id)) if n.id == "greater-than" else n
        for n in live.workflow("auto-annotate").nodes))
    plan = make_plan(desired_state(), live)
    assert ops(plan) == [("repoint", "workflow/auto-annotate")]
    (rp,) = plan.actions
    assert rp.changes == (Change("nodes.greater-than.model.version", v2.id, vid("greater-than")),)
    assert "reused" in rp.reason


def test_reuse_picks_the_newest_matching_version_and_leaves_matching_pins_alone():
    live = applied(desired_state())
    gt = live.model("greater-than")
    v3 = ModelVersion(vid("greater-than", 3), gt.config)  # same config as v1, newer
    live = with_model(live, "greater-than", version_id=v3.id, versions=(v3, *gt.versions))
    assert make_plan(desired_state(), live).empty  # the node pinned to v1 already matches
    # a node pinned to a version that does not match moves to the newest match
    live2 = with_workflow(live, "auto-annotate", nodes=tuple(
        dataclasses.replace(n, model=dataclasses.replace(n.model, version="unknown")) if n.id == "greater-than" else n
        for n in live.workflow("auto-annotate").nodes))
    (rp,) = make_plan(desired_state(), live2).actions
    assert dict(rp.pins)["greater-than"] == v3.id


def test_failed_training_versions_are_not_reused():
    live = applied(desired_state())
    pc = live.model("park-classifier")
    failed = dataclasses.replace(pc.versions[0], status_code=21106)
    live = with_model(live, "park-classifier", versions=(failed,))
    plan = make_plan(desired_state(), live)
    assert ops(plan) == [("new_version", "model/park-classifier"), ("repoint", "workflow/auto-annotate")]
    assert "trained" in plan.actions[0].reason and "train" in plan.actions[1].reason


def test_structural_workflow_change_is_an_update_with_pins():
    d = desired_state()
    live = applied(d)
    wf = live.workflow("auto-annotate")
    live = with_workflow(live, "auto-annotate", nodes=wf.nodes[:-1])  # write-pending removed out of band
    (up,) = make_plan(d, live).actions
    assert (up.op, up.id) == ("update", "auto-annotate")
    assert [c.path for c in up.changes] == ["nodes.write-pending.model.id", "nodes.write-pending.model.version",
                                            "nodes.write-pending.inputs"]
    assert up.changes[0] == Change("nodes.write-pending.model.id", ABSENT, "write-pending")
    assert dict(up.pins)["write-pending"] == vid("write-pending")


def test_drift_concept_renamed_and_default_workflow_changed():
    d = desired_state()
    live = applied(d)
    live = dataclasses.replace(live, app=dataclasses.replace(live.app, default_workflow="other"),
                               concepts=(Concept("walker", "Walker!"), *live.concepts[1:]))
    plan = make_plan(d, live)
    assert ops(plan) == [("update", "concept/walker"), ("set_default", "app/auto-annotation")]
    assert plan.actions[0].changes == (Change("name", "Walker!", "walker"),)
    assert plan.actions[1].changes == (Change("default_workflow", "other", "auto-annotate"),)


def test_manifest_without_default_workflow_leaves_the_apps_alone():
    d = desired_state()
    d2 = dataclasses.replace(d, app=dataclasses.replace(d.app, default_workflow=None))
    assert make_plan(d2, applied(d)).empty


def test_app_and_model_metadata_updates():
    d = desired_state()
    live = applied(d)
    d2 = dataclasses.replace(d, app=dataclasses.replace(d.app, description="new", metadata={"team": "ml"}))
    d2 = with_model(d2, "less-than", metadata={"owner": "ana"}, description="low")
    plan = make_plan(d2, live)
    assert ops(plan) == [("update", "app/auto-annotation"), ("update", "model/less-than")]
    assert plan.actions[0].changes == (Change("description", "Park activity auto-annotation", "new"),
                                       Change("metadata.team", "vision", "ml"))
    assert plan.actions[1].changes == (Change("description", "", "low"), Change("metadata.owner", None, "ana"))


def test_managed_workflow_removed_from_manifest_is_deleted_after_everything_else():
    d = desired_state()
    extra = Workflow("review", nodes=(Node("gt", ModelRef("old-model", version="om-v1")),))
    live = applied(d)
    live = dataclasses.replace(live, workflows=(*live.workflows, extra),
                               models=(*live.models, dataclasses.replace(model("old-model", "concept-thresholder",
                                                                               thresholds={"walker": 0.5}), version_id="om-v1")))
    plan = make_plan(desired_state(walker=0.9), live)
    assert ops(plan) == [("new_version", "model/greater-than"), ("repoint", "workflow/auto-annotate"),
                         ("delete", "workflow/review"), ("delete", "model/old-model")]


def test_protected_resource_is_not_deleted_but_noted():
    d = desired_state()
    live = applied(d)
    live = dataclasses.replace(live, workflows=(*live.workflows, Workflow("keep-me", protect=True)))
    plan = make_plan(d, live)
    assert plan.empty
    assert plan.notes == ("workflow/keep-me is protected (protect: true) and no longer in the manifest: not deleted",)


def test_protect_flag_change_is_an_update():
    d = desired_state()
    plan = make_plan(with_workflow(d, "auto-annotate", protect=True), applied(d))
    (up,) = plan.actions
    assert (up.op, up.changes) == ("update", (Change("protect", False, True),))
    plan = make_plan(with_model(d, "less-than", protect=True), applied(d))
    assert [(a.op, a.id, a.changes) for a in plan.actions] == [("update", "less-than", (Change("protect", False, True),))]


def test_unmanaged_resources_are_left_alone_and_counted_in_one_note():
    d = desired_state()
    live = applied(d)
    hand = dataclasses.replace(model("hand-made", "concept-thresholder", thresholds={"x": 0.1}), managed=False)
    live = dataclasses.replace(
        live, models=(*live.models, hand), workflows=(*live.workflows, Workflow("by-hand", managed=False)),
        concepts=(*live.concepts, *(Concept(f"extra{i}") for i in range(7))))
    plan = make_plan(d, live)
    assert plan.empty
    assert plan.notes == (
        "7 concept(s) in the app are not in the manifest (extra0, extra1, extra2, extra3, extra4, and 2 more); "
        "the Clarifai API cannot delete concepts; left as is",
        "2 unmanaged resource(s) left alone (not in the manifest, not marked as managed): model/hand-made, workflow/by-hand",
    )


def test_unmarked_resources_named_by_the_manifest_are_adopted():
    d = desired_state()
    live = applied(d, managed=False)
    live = with_model(live, "write-success", description="made by hand")
    plan = make_plan(d, live)
    # the app's metadata of an unmarked app is not ours: the manifest's keys are (re)written
    assert [a.op for a in plan.actions] == ["update"] + ["adopt"] * 6
    assert plan.actions[0].changes == (Change("metadata.team", ABSENT, "vision"),)
    ws = next(a for a in plan.actions if a.id == "write-success")
    assert ws.changes == (Change("description", "made by hand", "write success as me"),)
    wf = next(a for a in plan.actions if a.kind is Kind.WORKFLOW)
    assert wf.changes == () and len(wf.pins) == 5
    # adopt with a config change: adopt first, then the new version
    plan = make_plan(desired_state(walker=0.5), applied(d, managed=False))
    gt = [a.op for a in plan.actions if a.id == "greater-than"]
    assert gt == ["adopt", "new_version"]


def test_model_type_change_is_a_plan_error():
    d = desired_state()
    live = with_model(applied(d), "less-than", type="annotation-writer")
    with pytest.raises(PlanError, match="model less-than: type cannot change from annotation-writer "
                                        "to concept-thresholder; rename the model or delete it first"):
        make_plan(d, live)


def test_type_alias_is_not_a_type_change():
    d = desired_state()
    assert make_plan(d, with_model(applied(d), "less-than", type="concept-threshold")).empty


def test_writer_without_user_gets_the_owner():
    d = desired_state()
    assert "annotation_user_id" not in d.model("write-success").config
    plan = make_plan(d, None)
    assert plan.desired.model("write-success").config["annotation_user_id"] == USER
    # from the live user when the manifest has none
    anon = dataclasses.replace(d, user_id=None)
    assert make_plan(anon, applied(d)).empty


def test_relations_managed_by_subject():
    d = people_synonyms()
    live = applied(d)
    stale = ConceptRelation("man", "hypernym", ConceptRef("adult"), server_id="r9")
    foreign = ConceptRelation("dog", "synonym", ConceptRef("ai_x", "clarifai", "main"), server_id="r10")
    live = dataclasses.replace(live, relations=(*live.relations[1:], stale, foreign))
    plan = make_plan(d, live)
    assert ops(plan) == [("create", "concept_relation/people synonym clarifai/main/ai_l8TKp2h5"),
                         ("delete", "concept_relation/man hypernym adult")]
    assert plan.actions[1].live.server_id == "r9"
    assert plan.notes == ("1 unmanaged resource(s) left alone (not in the manifest, not marked as managed): "
                          "concept_relation/dog synonym clarifai/main/ai_x",)


def test_targets_limit_to_resource_and_dependencies():
    live = applied(desired_state())
    d = desired_state(walker=0.9)
    d = dataclasses.replace(d, concepts=(*d.concepts, Concept("skater")))
    full = make_plan(d, live)
    assert ops(full) == [("create", "concept/skater"), ("new_version", "model/greater-than"),
                         ("repoint", "workflow/auto-annotate")]
    only = make_plan(d, live, targets=["model/greater-than"])
    assert ops(only) == [("new_version", "model/greater-than")]
    assert only.notes[-1].startswith("plan limited to model/greater-than")
    wf = make_plan(d, live, targets=["workflow/auto-annotate"])
    assert ops(wf) == [("new_version", "model/greater-than"), ("repoint", "workflow/auto-annotate")]


def test_target_of_a_resource_only_in_the_app_plans_its_delete():
    d = desired_state()
    live = applied(d)
    live = dataclasses.replace(live, workflows=(*live.workflows, Workflow("gone"), Workflow("also-gone")))
    assert ops(make_plan(d, live, targets=["workflow/gone"])) == [("delete", "workflow/gone")]


@pytest.mark.parametrize("target, message", [
    ("model/nope", "unknown target model/nope"),
    ("modle/greater-than", "bad target 'modle/greater-than'"),
    ("greater-than", "bad target 'greater-than'"),
])
def test_bad_targets_are_plan_errors(target, message):
    d = desired_state()
    with pytest.raises(PlanError, match=message):
        make_plan(d, applied(d), targets=[target])


def test_set_default_runs_after_the_new_workflow_and_before_deleting_the_old_one():
    d = desired_state()
    live = applied(d)
    old_default = Workflow("old-default")
    live = dataclasses.replace(live, app=dataclasses.replace(live.app, default_workflow="old-default"),
                               workflows=(old_default,))
    assert ops(make_plan(d, live)) == [("create", "workflow/auto-annotate"), ("set_default", "app/auto-annotation"),
                                       ("delete", "workflow/old-default")]


def test_node_using_an_undeclared_model_is_a_plan_error():
    d = desired_state()
    d = with_workflow(d, "auto-annotate", nodes=(Node("x", ModelRef("ghost")),))
    with pytest.raises(PlanError, match="node x uses model ghost"):
        make_plan(d, None)


def test_large_app_plans_quickly_enough():
    # 5,000 concepts: the planner must stay linear-ish (no O(n^2) lookups); no timing asserted
    d = State(app=App("big"), concepts=tuple(Concept(f"c{i}", f"c{i}") for i in range(5000)))
    plan = make_plan(d, None)
    assert plan.summary()["create"] == 5001
    assert make_plan(d, State(app=App("big"), concepts=d.concepts)).empty


def test_model_still_used_by_an_unmanaged_workflow_is_not_deleted():
    d = desired_state()
    live = applied(d)
    old = dataclasses.replace(model("old-model", "concept-thresholder", thresholds={"walker": 0.5}), version_id="om1")
    portal = Workflow("portal", managed=False, nodes=(Node("x", ModelRef("old-model", version="om1")),))
    live = dataclasses.replace(live, models=(*live.models, old), workflows=(*live.workflows, portal))
    plan = make_plan(d, live)
    assert plan.empty
    assert plan.notes[0] == "model/old-model is no longer in the manifest but workflow(s) portal still use it: not deleted"
    # once that workflow goes (managed, removed from the manifest), both are deleted, workflow first
    live2 = dataclasses.replace(live, workflows=(*live.workflows[:-1], dataclasses.replace(portal, managed=True)))
    assert ops(make_plan(d, live2)) == [("delete", "workflow/portal"), ("delete", "model/old-model")]
