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
