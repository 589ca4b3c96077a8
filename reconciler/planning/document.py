"""The `plan --json` document: the plan's machine view plus everything a policy engine needs to
judge it without the manifest at hand.

Contract: `plan_document(plan) -> dict` is `render.plan_to_dict(plan)` (the view the text and
Markdown are rendered from, `format_version` 1) with two additions, both only adding fields:
- ``desired``: the whole desired state (`serialize.state_to_dict`: every concept, relation,
  model with its configuration, workflow with its graph, metadata and `protect`);
- each action's ``desired`` and ``live`` resource (or null), as saved plans hold them.
This is what `plan --json` and `show --json` print, and what OPA / conftest policies read, as
they read `terraform show -json` (docs/plan-json.md; schemas/plan.schema.json describes it).
"""

from __future__ import annotations

from typing import Any

from reconciler.planning.actions import Plan
from reconciler.planning.render import plan_to_dict
from reconciler.planning.serialize import resource_to_dict, state_to_dict


def plan_document(plan: Plan) -> dict[str, Any]:
    """`plan_to_dict(plan)` with the desired state and each action's resources (module docstring)."""
    doc = plan_to_dict(plan)
    for entry, action in zip(doc["actions"], plan.actions):
        entry["desired"] = resource_to_dict(action.desired) if action.desired is not None else None
        entry["live"] = resource_to_dict(action.live) if action.live is not None else None
    doc["desired"] = state_to_dict(plan.desired)
    return doc
