"""serialize.py: State and saved-plan round trips, lossless (bookkeeping fields included)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from plan_fixtures import applied, desired_state, people_synonyms

from reconciler.core.errors import PlanError
from reconciler.planning.plan import make_plan
from reconciler.planning.serialize import plan_from_file_dict, plan_to_file_dict, state_from_dict, state_to_dict


def _json_round(obj):
    return json.loads(json.dumps(obj))


@pytest.mark.parametrize("state", [desired_state(), applied(desired_state()), people_synonyms(),
                                   applied(people_synonyms())])
def test_state_round_trip_is_lossless(state):
    back = state_from_dict(_json_round(state_to_dict(state)))
    assert back == state
    # compare=False fields too
    assert [(m.managed, m.version_id, m.versions) for m in back.models] == \
           [(m.managed, m.version_id, m.versions) for m in state.models]
    assert [r.server_id for r in back.relations] == [r.server_id for r in state.relations]
    assert [w.managed for w in back.workflows] == [w.managed for w in state.workflows]
    assert (back.user_id, back.source) == (state.user_id, state.source)


def test_plan_file_round_trip():
    live = applied(desired_state())
    live = dataclasses.replace(live, workflows=(*live.workflows, dataclasses.replace(
        live.workflows[0], id="old", managed=True)))
    plan = make_plan(desired_state(walker=0.9), live, live_fingerprint="abc123",
                     targets=["workflow/auto-annotate", "workflow/old"])
    assert [a.op for a in plan.actions] == ["new_version", "repoint", "delete"]
    back = plan_from_file_dict(_json_round(plan_to_file_dict(plan)))
    assert back == plan
    assert back.actions[1].pins == plan.actions[1].pins
    # apply re-plans from the stored desired state and gets the same actions
    assert make_plan(back.desired, live, live_fingerprint="abc123", targets=back.targets) == plan


def test_plan_file_with_app_create_round_trips():
    plan = make_plan(desired_state(), None)
    assert plan_from_file_dict(_json_round(plan_to_file_dict(plan))) == plan


_TOP = {"kind": "reconciler-plan", "format_version": 3, "endpoint": "https://api.clarifai.com",
        "app_id": "a", "user_id": None, "live_fingerprint": "", "fingerprint": "", "targets": [],
        "desired": {"app": {"id": "a"}}, "live": None, "actions": [], "notes": []}


@pytest.mark.parametrize("bad, message", [
    ({}, "not a saved reconciler plan"),
    ({"kind": "reconciler-plan", "format_version": 99}, "format_version 99"),
    # format 1 did not record the endpoint: refused, not applied anywhere
    ({"kind": "reconciler-plan", "format_version": 1, "app_id": "a"}, "format_version 1"),
    ({"kind": "reconciler-plan", "format_version": 3, "endpoint": "x"}, "missing 'app_id'"),
    ({**_TOP, "desired": {"app": {}}}, "malformed app"),
])
def test_malformed_plan_files_are_one_line_errors(bad, message):
    with pytest.raises(PlanError, match=message):
        plan_from_file_dict(bad)
