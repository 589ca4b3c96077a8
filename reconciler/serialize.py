"""State and Plan <-> plain JSON-able dicts (pure; no I/O).

- `state_to_dict(state)` / `state_from_dict(d)`: lossless, including the bookkeeping fields that
  do not take part in equality (`managed`, `version_id`, `versions`, `server_id`, `user_id`,
  `source`). Used for golden test cases (live states) and saved plans.
- `plan_to_file_dict(plan)` / `plan_from_file_dict(d)`: the `reconciler plan --out FILE` format.
  It holds the desired state, the live fingerprint, the app/user, the targets and the planned
  actions (with their resources). `apply PLANFILE` checks the fingerprint against the live app,
  re-plans from the stored desired state, and can verify it gets the same actions.

Malformed input raises PlanError (one line), never a KeyError traceback.
"""

from __future__ import annotations

from typing import Any

from reconciler.diff import ABSENT, Change
from reconciler.errors import PlanError
from reconciler.plan import Action, Plan
from reconciler.state import (App, Concept, ConceptRef, ConceptRelation, Kind, Model, ModelRef,
                              ModelVersion, Node, Resource, State, Workflow)

STATE_FORMAT = 1
PLAN_FILE_FORMAT = 1
PLAN_FILE_KIND = "reconciler-plan"  # what `cli._read_plan_file` looks for


# --- State ------------------------------------------------------------------------------------

def _app(a: App) -> dict[str, Any]:
    return {"id": a.id, "description": a.description, "default_workflow": a.default_workflow,
            "metadata": a.metadata}


def _concept_ref(r: ConceptRef) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "app_id": r.app_id}


def _model_ref(r: ModelRef) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "app_id": r.app_id, "version": r.version}


def resource_to_dict(res: Resource) -> dict[str, Any]:
    if isinstance(res, App):
        return _app(res)
    if isinstance(res, Concept):
        return {"id": res.id, "name": res.name, "description": res.description}
    if isinstance(res, ConceptRelation):
        return {"subject": res.subject, "predicate": res.predicate, "object": _concept_ref(res.object),
                "knowledge_graph_id": res.knowledge_graph_id, "server_id": res.server_id}
    if isinstance(res, Model):
        return {"id": res.id, "type": res.type, "description": res.description, "metadata": res.metadata,
                "protect": res.protect, "config": res.config, "managed": res.managed,
                "version_id": res.version_id,
                "versions": [{"id": v.id, "config": v.config, "status_code": v.status_code,
                              "created_at": v.created_at} for v in res.versions]}
    if isinstance(res, Workflow):
        return {"id": res.id, "description": res.description, "metadata": res.metadata,
                "protect": res.protect, "managed": res.managed,
                "nodes": [{"id": n.id, "model": _model_ref(n.model), "inputs": list(n.inputs),
                           "suppress_output": n.suppress_output} for n in res.nodes]}
    raise TypeError(f"not a resource: {res!r}")


def resource_from_dict(kind: Kind, d: dict[str, Any]) -> Resource:
    try:
        if kind is Kind.APP:
            return App(id=d["id"], description=d.get("description", ""),
                       default_workflow=d.get("default_workflow"), metadata=dict(d.get("metadata") or {}))
        if kind is Kind.CONCEPT:
            return Concept(id=d["id"], name=d.get("name", ""), description=d.get("description", ""))
        if kind is Kind.RELATION:
            o = d["object"]
            return ConceptRelation(subject=d["subject"], predicate=d["predicate"],
                                   object=ConceptRef(o["id"], o.get("user_id"), o.get("app_id")),
                                   knowledge_graph_id=d.get("knowledge_graph_id", ""),
                                   server_id=d.get("server_id"))
        if kind is Kind.MODEL:
            return Model(id=d["id"], type=d["type"], description=d.get("description", ""),
                         metadata=dict(d.get("metadata") or {}), protect=bool(d.get("protect", False)),
                         config=dict(d.get("config") or {}), managed=bool(d.get("managed", True)),
                         version_id=d.get("version_id"),
                         versions=tuple(ModelVersion(id=v["id"], config=dict(v.get("config") or {}),
                                                     status_code=int(v.get("status_code", 21100)),
                                                     created_at=v.get("created_at", ""))
                                        for v in d.get("versions") or ()))
        if kind is Kind.WORKFLOW:
            return Workflow(id=d["id"], description=d.get("description", ""),
                            metadata=dict(d.get("metadata") or {}), protect=bool(d.get("protect", False)),
                            managed=bool(d.get("managed", True)),
                            nodes=tuple(Node(id=n["id"], model=_model_ref_from(n["model"]),
                                             inputs=tuple(n.get("inputs") or ()),
                                             suppress_output=bool(n.get("suppress_output", False)))
                                        for n in d.get("nodes") or ()))
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise PlanError(f"malformed {kind.value} in saved state: {err!r}") from None
    raise TypeError(f"unknown kind {kind!r}")


def _model_ref_from(d: dict[str, Any]) -> ModelRef:
    return ModelRef(id=d["id"], user_id=d.get("user_id"), app_id=d.get("app_id"), version=d.get("version"))


def state_to_dict(state: State) -> dict[str, Any]:
    return {
        "format_version": STATE_FORMAT,
        "user_id": state.user_id,
        "source": state.source,
        "app": _app(state.app),
        "concepts": [resource_to_dict(c) for c in state.concepts],
        "relations": [resource_to_dict(r) for r in state.relations],
        "models": [resource_to_dict(m) for m in state.models],
        "workflows": [resource_to_dict(w) for w in state.workflows],
    }


def state_from_dict(d: dict[str, Any]) -> State:
    if not isinstance(d, dict) or "app" not in d:
        raise PlanError("malformed saved state: expected an object with an 'app'")
    if d.get("format_version", STATE_FORMAT) != STATE_FORMAT:
        raise PlanError(f"saved state has format_version {d.get('format_version')}; this version "
                        f"of reconciler reads {STATE_FORMAT}")
    return State(
        app=resource_from_dict(Kind.APP, d["app"]),  # type: ignore[arg-type]
        concepts=tuple(resource_from_dict(Kind.CONCEPT, c) for c in d.get("concepts") or ()),  # type: ignore[misc]
        relations=tuple(resource_from_dict(Kind.RELATION, r) for r in d.get("relations") or ()),  # type: ignore[misc]
        models=tuple(resource_from_dict(Kind.MODEL, m) for m in d.get("models") or ()),  # type: ignore[misc]
        workflows=tuple(resource_from_dict(Kind.WORKFLOW, w) for w in d.get("workflows") or ()),  # type: ignore[misc]
        user_id=d.get("user_id"),
        source=d.get("source", ""),
    )


# --- Plan -------------------------------------------------------------------------------------

def json_value(value: Any) -> Any:
    """A Change value as JSON: ABSENT (not set) is null; Change maps null back to ABSENT."""
    return None if value is ABSENT else value


def change_to_dict(c: Change) -> dict[str, Any]:
    return {"path": c.path, "before": json_value(c.before), "after": json_value(c.after)}


def action_to_dict(a: Action) -> dict[str, Any]:
    return {"op": a.op, "kind": a.kind.value, "id": a.id,
            "changes": [change_to_dict(c) for c in a.changes],
            "pins": [{"node": n, "version": v} for n, v in a.pins],
            "reuse_version": a.reuse_version, "reason": a.reason,
            "desired": resource_to_dict(a.desired) if a.desired is not None else None,
            "live": resource_to_dict(a.live) if a.live is not None else None}


def action_from_dict(d: dict[str, Any]) -> Action:
    try:
        kind = Kind(d["kind"])
        return Action(op=d["op"], kind=kind, id=d["id"],
                      changes=tuple(Change(c["path"], c.get("before"), c.get("after")) for c in d.get("changes") or ()),
                      desired=resource_from_dict(kind, d["desired"]) if d.get("desired") is not None else None,
                      live=resource_from_dict(kind, d["live"]) if d.get("live") is not None else None,
                      pins=tuple((p["node"], p["version"]) for p in d.get("pins") or ()),
                      reuse_version=d.get("reuse_version"), reason=d.get("reason", ""))
    except (KeyError, TypeError, ValueError) as err:
        raise PlanError(f"malformed action in saved plan: {err!r}") from None


def plan_to_file_dict(plan: Plan) -> dict[str, Any]:
    return {"format_version": PLAN_FILE_FORMAT, "kind": PLAN_FILE_KIND,
            "app_id": plan.app_id, "user_id": plan.user_id,
            "live_fingerprint": plan.live_fingerprint, "targets": list(plan.targets),
            "desired": state_to_dict(plan.desired),
            "actions": [action_to_dict(a) for a in plan.actions],
            "notes": list(plan.notes)}


def plan_from_file_dict(d: dict[str, Any]) -> Plan:
    if not isinstance(d, dict) or d.get("kind") != PLAN_FILE_KIND:
        raise PlanError("not a saved reconciler plan (expected a JSON file written by `reconciler plan --out`)")
    if d.get("format_version") != PLAN_FILE_FORMAT:
        raise PlanError(f"saved plan has format_version {d.get('format_version')}; this version of "
                        f"reconciler reads {PLAN_FILE_FORMAT}; make the plan again")
    try:
        return Plan(app_id=d["app_id"], user_id=d.get("user_id"),
                    actions=tuple(action_from_dict(a) for a in d.get("actions") or ()),
                    notes=tuple(d.get("notes") or ()), live_fingerprint=d.get("live_fingerprint", ""),
                    desired=state_from_dict(d["desired"]), targets=tuple(d.get("targets") or ()))
    except KeyError as err:
        raise PlanError(f"malformed saved plan: missing {err}") from None
