"""Plan notes are tied to the resource they are about: `--target` keeps a note when it keeps its
resource, and drops notes about several resources or none, whatever their text says."""

from __future__ import annotations

from reconciler.core.state import App, Kind, Model, ResourceKey, State, Workflow
from reconciler.planning.actions import Note
from reconciler.planning.plan import make_plan

DESIRED = State(app=App(id="a"), models=(Model(id="m", type="concept-synonym-mapper"),))
LIVE = State(app=App(id="a"),
             models=(Model(id="m", type="concept-synonym-mapper", version_id="v1"),
                     Model(id="theirs", type="concept-synonym-mapper", managed=False)),
             workflows=(Workflow(id="keep-me", protect=True),))
PROTECTED = "workflow/keep-me is protected (protect: true) and no longer in the manifest: not deleted"


def test_notes_carry_their_resource():
    plan = make_plan(DESIRED, LIVE)
    by_text = {n.text: n.key for n in plan.notes}
    assert by_text[PROTECTED] == ResourceKey(Kind.WORKFLOW, "keep-me")
    unmanaged = next(n for n in plan.notes if "unmanaged" in n)
    assert unmanaged.key is None and "model/theirs" in unmanaged


def test_target_keeps_the_notes_of_the_resources_it_keeps():
    plan = make_plan(DESIRED, LIVE, targets=["workflow/keep-me"])
    assert plan.notes[0] == PROTECTED and isinstance(plan.notes[0], Note)
    assert not any("unmanaged" in n for n in plan.notes)


def test_target_drops_notes_about_other_resources():
    plan = make_plan(DESIRED, LIVE, targets=["model/m"])
    assert PROTECTED not in plan.notes
    assert [n.key for n in plan.notes] == [None] and plan.notes[0].startswith("plan limited to model/m")


# --- issue 20, finding 11: the default workflow dropped from the manifest with default_workflow -----

def test_the_default_workflow_is_not_planned_for_deletion_while_it_stays_the_default():
    live = State(app=App(id="a", default_workflow="wf"), workflows=(Workflow(id="wf"), Workflow(id="old")))
    plan = make_plan(State(app=App(id="a")), live)
    assert [(a.op.value, a.address) for a in plan.actions] == [("delete", "workflow/old")]
    note = next(n for n in plan.notes if "workflow/wf" in n)
    assert note == ("workflow/wf is no longer in the manifest but it is the app's default workflow: not deleted; "
                    "to delete it, name another workflow as the app's default_workflow in the manifest")
    assert note.key == ResourceKey(Kind.WORKFLOW, "wf")


def test_naming_another_default_sets_it_before_the_old_default_is_deleted():
    live = State(app=App(id="a", default_workflow="wf"), workflows=(Workflow(id="wf"),))
    plan = make_plan(State(app=App(id="a", default_workflow="new"), workflows=(Workflow(id="new"),)), live)
    assert [(a.op.value, a.address) for a in plan.actions] == [
        ("create", "workflow/new"), ("set_default", "app/a"), ("delete", "workflow/wf")]
