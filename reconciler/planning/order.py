"""Plan order and targeting: the dependency edges between actions, a topological order (creates
and updates first, deletes after, in reverse dependency order), and `--target` selection."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.core.errors import PlanError
from reconciler.core.state import App, Kind, ResourceKey, State, resource_dependencies
from reconciler.planning.actions import KIND_ORDER, Action, Note, Op

_KIND_ALIASES = {"relation": Kind.RELATION, "concept-relation": Kind.RELATION}


def parse_target(text: str) -> ResourceKey:
    """`KIND/ID` -> ResourceKey. Relation ids contain spaces and slashes: split at the first '/'."""
    kind_s, sep, rid = text.partition("/")
    kind = _KIND_ALIASES.get(kind_s) or next((k for k in Kind if k.value == kind_s), None)
    if not sep or not rid or kind is None:
        kinds = ", ".join(k.value for k in Kind)
        raise PlanError(f"bad target {text!r}: expected KIND/ID with KIND one of {kinds}")
    return ResourceKey(kind, rid)


def _limit_to_targets(
    actions: list[Action], notes: list[Note], targets: Sequence[str], desired: State, live: State | None
) -> tuple[list[Action], list[Note]]:
    """Keep the actions of the targets and of what they depend on, transitively, in the desired
    state (plus the app's creation, without which nothing else can exist), and the notes about
    the resources kept (a note about several resources or none is dropped)."""
    d_keys = desired.by_key()
    l_keys = live.by_key() if live else {}
    wanted: set[ResourceKey] = set()
    todo = [parse_target(t) for t in targets]
    for key in todo:
        if key not in d_keys and key not in l_keys:
            raise PlanError(f"unknown target {key}: not in the manifest nor in the app")
    while todo:
        key = todo.pop()
        if key in wanted:
            continue
        wanted.add(key)
        if key in d_keys:
            todo.extend(resource_dependencies(d_keys[key]) - wanted)
    kept = [a for a in actions if a.key in wanted or (a.kind is Kind.APP and a.op is Op.CREATE)]
    kept_notes = [n for n in notes if n.key in wanted]
    kept_notes.append(Note(None, f"plan limited to {', '.join(targets)} and their dependencies; other differences are not shown"))
    return kept, kept_notes


# --- ordering ---------------------------------------------------------------------------------


def _sort_key(a: Action) -> tuple[int, str, int]:
    # set_default reads best last (after the workflows), where it must come anyway when it waits
    # for one; it is never needed earlier
    kind = len(KIND_ORDER) if a.op is Op.SET_DEFAULT else KIND_ORDER[a.kind]
    return kind, a.id, a.op.rank


def action_predecessors(actions: Sequence[Action]) -> list[set[int]]:
    """For each action (by index), the indices of the actions that must finish before it starts.

    The one dependency rule, shared by `_order` and apply's concurrent scheduler:
    - everything waits for the app's creation;
    - a create/update/... waits for the non-delete actions of what its resource depends on
      (`set_default` for the workflow it names), and for the earlier ops on the same resource
      (adopt/update before its new version);
    - a delete waits for the deletes of its dependents (a workflow before the models its nodes use).
    Not listed here, because it would be O(deletes x others) edges: every delete also waits for
    every non-delete (the "barrier": deletes run last). Callers add it.
    """
    by_key: dict[ResourceKey, list[int]] = {}
    for i, a in enumerate(actions):
        by_key.setdefault(a.key, []).append(i)
    app_create = next((i for i, a in enumerate(actions) if a.kind is Kind.APP and a.op is Op.CREATE), None)
    preds: list[set[int]] = [set() for _ in actions]
    for i, a in enumerate(actions):
        if app_create is not None and i != app_create:
            preds[i].add(app_create)
        if a.op is Op.DELETE:
            for k in resource_dependencies(a.live) if a.live is not None else ():
                for j in by_key.get(k, ()):
                    if actions[j].op is Op.DELETE:
                        preds[j].add(i)
            continue
        if a.op is Op.SET_DEFAULT:
            named = a.desired.default_workflow if isinstance(a.desired, App) else None
            dep_keys = {ResourceKey(Kind.WORKFLOW, named)} if named else set()
        elif a.kind is Kind.APP:
            dep_keys = set()
        else:
            dep_keys = resource_dependencies(a.desired) if a.desired is not None else set()
        for k in dep_keys:
            preds[i] |= {j for j in by_key.get(k, ()) if actions[j].op is not Op.DELETE}
        preds[i] |= {j for j in by_key[a.key] if actions[j].op is not Op.DELETE and actions[j].op.rank < a.op.rank}
    return preds


def _order(actions: list[Action]) -> list[Action]:
    """Deterministic order in two passes (see the module docstring): first every non-delete in
    topological order, then every delete, dependents before what they use."""
    preds = action_predecessors(actions)
    keep = [i for i, a in enumerate(actions) if a.op is not Op.DELETE]
    gone = [i for i, a in enumerate(actions) if a.op is Op.DELETE]
    return [actions[i] for i in _topological(actions, keep, preds, _sort_key)] + [
        actions[i] for i in _topological(actions, gone, preds, _delete_key)
    ]


def _topological(
    actions: list[Action], members: list[int], preds: list[set[int]], key: Callable[[Action], tuple[Any, ...]]
) -> list[int]:
    """`members` (action indices) in dependency order, the smallest ready action by `key` first
    (a heap, not layer by layer: creates read as "app, all concepts, all models by id, workflows"
    rather than interleaving kinds by graph depth); ties keep plan-building order. Predecessors
    outside `members` are done already (a delete's non-delete predecessors: the first pass)."""
    inside = set(members)
    waiting = {i: preds[i] & inside for i in members}
    dependents: dict[int, list[int]] = {}
    for i in members:
        for p in waiting[i]:
            dependents.setdefault(p, []).append(i)
    heap = [(key(actions[i]), i) for i in members if not waiting[i]]
    heapq.heapify(heap)
    out: list[int] = []
    while heap:
        _, i = heapq.heappop(heap)
        out.append(i)
        for d in dependents.get(i, ()):
            waiting[d].discard(i)
            if not waiting[d]:
                heapq.heappush(heap, (key(actions[d]), d))
    if len(out) != len(members):
        raise PlanError("the plan's actions depend on each other in a cycle")
    return out


def _delete_key(a: Action) -> tuple[int, str]:
    # deletes run dependents first: workflows, then models, then relations
    return -KIND_ORDER[a.kind], a.id
